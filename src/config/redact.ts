// Owns making a loaded config safe to show (CLI output, logs, admin endpoints) by masking webhook secrets.
// Must never return or log a resolved secret, and never mutate the config it is given.

import type { MeterhookConfig } from './schema.js';

const KNOWN_PREFIXES = ['whsec_'];
const SHOWN_TAIL = 4;
// Below this many secret characters, even the last 4 are too large a share of the secret to reveal.
const MIN_LENGTH_TO_SHOW_TAIL = 9;

/** "whsec_…abcd" for whsec_ secrets, "…abcd" otherwise, and just "…" when the secret is too short to hint at. */
export function redactSecret(secret: string): string {
  if (secret.length < MIN_LENGTH_TO_SHOW_TAIL) return '…';
  const prefix = KNOWN_PREFIXES.find((p) => secret.startsWith(p)) ?? '';
  // The prefix is public knowledge; only the part after it counts towards "long enough to show a tail".
  const body = secret.slice(prefix.length);
  if (body.length < MIN_LENGTH_TO_SHOW_TAIL) return `${prefix}…`;
  return `${prefix}…${body.slice(-SHOWN_TAIL)}`;
}

/**
 * A deep copy of cfg.effective with every webhook secret masked; "env:NAME" references stay as written since they are
 * not secrets. As a backstop, any string anywhere that contains a resolved secret (say, pasted into a "_comment") is
 * masked too.
 */
export function redactedConfig(cfg: MeterhookConfig): Record<string, unknown> {
  const copy = structuredClone(cfg.effective);
  const entries = copy.webhooks;
  if (Array.isArray(entries)) {
    for (const entry of entries as unknown[]) {
      if (typeof entry !== 'object' || entry === null) continue;
      const record = entry as Record<string, unknown>;
      if (typeof record.secret === 'string' && !record.secret.startsWith('env:')) {
        record.secret = redactSecret(record.secret);
      }
      if (Array.isArray(record.previousSecrets)) {
        record.previousSecrets = record.previousSecrets.map((ps: unknown) =>
          typeof ps === 'string' && !ps.startsWith('env:') ? redactSecret(ps) : ps,
        );
      }
    }
  }
  // Longest first, so a secret that contains another is masked whole rather than leaving a partially masked remainder.
  const secrets = [...new Set(cfg.webhooks.flatMap((w) => [w.secret, ...w.previousSecrets]))]
    .filter((s) => s !== '')
    .sort((a, b) => b.length - a.length);
  return scrub(copy, secrets) as Record<string, unknown>;
}

function scrub(node: unknown, secrets: readonly string[]): unknown {
  if (typeof node === 'string') {
    return secrets.reduce((s, secret) => (s.includes(secret) ? s.split(secret).join(redactSecret(secret)) : s), node);
  }
  if (Array.isArray(node)) return node.map((item) => scrub(item, secrets));
  if (typeof node === 'object' && node !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(node)) {
      // defineProperty, because assigning to "__proto__" would set the prototype instead of copying the key.
      Object.defineProperty(out, key, { value: scrub(value, secrets), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return node;
}
