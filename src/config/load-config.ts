// Owns turning systemconfig.json (a file or an in-memory document) into a validated MeterhookConfig, all problems at once.
// Must never start schedules, open connections, or put a secret's value in an error message.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DurationError, parseDuration } from '../domain/durations.js';
import { isPeriod } from '../domain/periods.js';
import type { Period } from '../domain/periods.js';
import {
  checkCron,
  checkWebhookUrl,
  ConfigError,
  DEFAULTS,
  DEFAULT_VALUE_PROPERTY,
  describeValue,
  EVENT_TYPE_PATTERN,
  formatPath,
  isPlainObject,
  orderProblems,
  structuralProblems,
} from './schema.js';
import type { EventMeter } from '../domain/rules.js';
import { parseMeter } from './meter-config.js';
import type { MeterhookConfig, WebhookEndpointConfig } from './schema.js';
import { effectiveWebhookDelivery, parseEndpointOptions, parseWebhookDelivery } from './webhook-config.js';

export { ConfigError, EVENT_TYPE_PATTERN, OPERATORS } from './schema.js';
export type { MeterhookConfig, Operator, WebhookEndpointConfig } from './schema.js';

export const DEFAULT_CONFIG_FILE = 'systemconfig.json';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The `--config` value, else METERHOOK_CONFIG, else <cwd>/systemconfig.json; always absolute. */
export function resolveConfigPath(argvPath: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string {
  // An empty value (e.g. `METERHOOK_CONFIG=` in a compose file) means "not set", not "the cwd".
  const chosen = [argvPath, env.METERHOOK_CONFIG].find((p) => p !== undefined && p !== '') ?? DEFAULT_CONFIG_FILE;
  return path.resolve(cwd, chosen);
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): MeterhookConfig {
  const source = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError(source, ['file not found (pass --config <path> or set METERHOOK_CONFIG to use another file)']);
    }
    throw new ConfigError(source, [`cannot read file (${code ?? (err as Error).message})`]);
  }
  // Editors on Windows like to prepend a BOM, which JSON.parse rejects.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new ConfigError(source, [describeJsonError(text)]);
  }
  return parseConfig(doc, { env, source });
}

export function parseConfig(doc: unknown, opts: { env?: NodeJS.ProcessEnv; source?: string } = {}): MeterhookConfig {
  const env = opts.env ?? process.env;
  const source = opts.source ?? '<inline>';
  if (!isPlainObject(doc)) throw new ConfigError(source, ['(root): must be a JSON object']);

  const input = withoutEventComments(doc);
  const problems = structuralProblems(input);
  const at = (...segments: string[]): string => formatPath(segments, input);
  const fail = (segments: string[], text: string): void => void problems.push(`${at(...segments)}: ${text}`);

  // Periods: the enum is structural; duplicates would double-count every rollup, so they are an error too.
  const periods: Period[] = [];
  const rawPeriods = input.periods === undefined ? DEFAULTS.periods : input.periods;
  if (Array.isArray(rawPeriods)) {
    rawPeriods.forEach((p: unknown, i) => {
      if (!isPeriod(p)) return;
      if (!periods.includes(p)) periods.push(p);
      else fail(['periods', String(i)], `duplicate of periods[${rawPeriods.indexOf(p)}] (${JSON.stringify(p)})`);
    });
  }

  const events = Object.create(null) as Record<string, EventMeter>;
  const eventTypes: string[] = [];
  const rawEvents = input.events ?? {};
  if (isPlainObject(rawEvents)) {
    for (const [name, spec] of Object.entries(rawEvents)) {
      if (!EVENT_TYPE_PATTERN.test(name)) {
        fail(
          ['events', name],
          'invalid event type name: use 1 to 128 characters from A-Z a-z 0-9 . _ : -, starting with a letter or digit',
        );
        continue;
      }
      if (isPlainObject(spec) && typeof spec.op === 'string') {
        events[name] = parseMeter(spec, (path, text) => fail(['events', name, ...path], text));
        eventTypes.push(name);
      }
    }
  }
  const valueProperties = parseValueProperties(rawEvents, events, fail);

  const webhooks: WebhookEndpointConfig[] = [];
  const rawWebhooks = input.webhooks ?? [];
  if (Array.isArray(rawWebhooks)) {
    rawWebhooks.forEach((entry: unknown, i) => {
      if (!isPlainObject(entry)) return;
      const where = ['webhooks', String(i)];
      const url = typeof entry.url === 'string' ? entry.url : undefined;
      const urlProblem = url === undefined ? undefined : checkWebhookUrl(url);
      if (urlProblem !== undefined) fail([...where, 'url'], urlProblem);
      const secret = typeof entry.secret === 'string' && entry.secret !== '' ? resolveSecret(entry.secret, env) : undefined;
      if (secret?.problem !== undefined) fail([...where, 'secret'], secret.problem);
      const previousSecrets: string[] = [];
      if (entry.previousSecrets !== undefined) {
        if (!Array.isArray(entry.previousSecrets)) fail([...where, 'previousSecrets'], 'must be an array of secrets or "env:NAME"');
        else {
          entry.previousSecrets.forEach((ps: unknown, j) => {
            const r =
              typeof ps === 'string' && ps !== ''
                ? resolveSecret(ps, env)
                : { fromEnv: false, value: undefined as string | undefined, problem: 'must be a non-empty string or "env:NAME"' };
            if (r.problem !== undefined) fail([...where, 'previousSecrets', String(j)], r.problem);
            else if (r.value !== undefined) previousSecrets.push(r.value);
          });
        }
      }
      if (url === undefined || urlProblem !== undefined || secret?.value === undefined) return;
      const options = parseEndpointOptions(entry, where, url, fail);
      if (webhooks.some((w) => w.id === options.id)) {
        fail([...where, entry.id === undefined ? 'url' : 'id'], `duplicate endpoint (id ${options.id}); each endpoint must be listed once`);
      }
      webhooks.push({
        url,
        secret: secret.value,
        enabled: typeof entry.enabled === 'boolean' ? entry.enabled : true,
        secretSource: secret.fromEnv ? 'env' : 'inline',
        raw: structuredClone(entry),
        previousSecrets,
        ...options,
      });
    });
  }

  const schedule = typeof input.schedule === 'string' ? input.schedule : DEFAULTS.schedule;
  if (typeof input.schedule === 'string') {
    const cronProblem = checkCron(schedule);
    if (cronProblem !== undefined) fail(['schedule'], cronProblem);
  }

  const duration = (key: 'gracePeriod' | 'maxEventAge' | 'maxFutureSkew'): { text: string; ms: number } => {
    const given = input[key];
    if (typeof given !== 'string') return { text: DEFAULTS[key], ms: parseDuration(DEFAULTS[key]) };
    try {
      return { text: given, ms: parseDuration(given) };
    } catch (err) {
      if (!(err instanceof DurationError)) throw err;
      fail([key], err.message);
      return { text: given, ms: 0 };
    }
  };
  const gracePeriod = duration('gracePeriod');
  const maxEventAge = duration('maxEventAge');
  const maxFutureSkew = duration('maxFutureSkew');
  const maxBatchSize = typeof input.maxBatchSize === 'number' ? input.maxBatchSize : DEFAULTS.maxBatchSize;
  const maxGroupsPerHour = typeof input.maxGroupsPerHour === 'number' ? input.maxGroupsPerHour : DEFAULTS.maxGroupsPerHour;
  const webhookDelivery = parseWebhookDelivery(input.webhookDelivery, fail);
  const retention = parseRetention(input.retention, fail);
  const corsAllowedOrigins = parseCors(input.cors, fail);

  if (problems.length > 0) throw new ConfigError(source, orderProblems(problems));

  const effective: Record<string, unknown> = structuredClone(doc);
  Object.assign(effective, {
    periods: [...periods],
    events: structuredClone(doc.events ?? {}),
    webhooks: webhooks.map((w) => ({ id: w.id, ...structuredClone(w.raw), enabled: w.enabled })),
    webhookDelivery: effectiveWebhookDelivery(input.webhookDelivery),
    schedule,
    gracePeriod: gracePeriod.text,
    maxEventAge: maxEventAge.text,
    maxFutureSkew: maxFutureSkew.text,
    maxBatchSize,
    maxGroupsPerHour,
  });

  return {
    periods,
    events,
    eventTypes,
    valueProperties,
    webhooks,
    schedule,
    gracePeriodMs: gracePeriod.ms,
    maxEventAgeMs: maxEventAge.ms,
    maxFutureSkewMs: maxFutureSkew.ms,
    maxBatchSize,
    maxGroupsPerHour,
    webhookDelivery,
    retentionEventsMs: retention.events,
    retentionAuditMs: retention.audit,
    corsAllowedOrigins,
    effective,
    source,
  };
}

/**
 * `events[type].valueProperty`: which property of a vendor's event (Stripe payload, OpenMeter data, Lago,
 * Orb and Metronome properties) carries the value, default "value". A count type reads no value, so one set
 * there would be silently unused: it is refused instead.
 */
function parseValueProperties(
  rawEvents: unknown,
  events: Record<string, EventMeter>,
  fail: (segments: string[], text: string) => void,
): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const [name, { op }] of Object.entries(events)) {
    const given = (rawEvents as Record<string, Record<string, unknown>>)[name]!.valueProperty;
    if (given !== undefined && (op === 'count' || op === 'unique')) {
      const what = op === 'count' ? 'a count type counts events' : 'a unique type counts the values of its field';
      fail(['events', name, 'valueProperty'], `${what} and reads no value; remove valueProperty`);
    }
    out[name] = typeof given === 'string' && given !== '' ? given : DEFAULT_VALUE_PROPERTY;
  }
  return out;
}

const DEFAULT_AUDIT_RETENTION = '90d';

/**
 * `retention: { "events": "400d", "audit": "90d" }`; each at least a day, so a typo like "40m" cannot wipe recent usage
 * or the record of admin actions. Events are kept forever unless told; audit records for 90 days.
 */
function parseRetention(raw: unknown, fail: (segments: string[], text: string) => void): { events: number | null; audit: number } {
  const audit = parseDuration(DEFAULT_AUDIT_RETENTION);
  if (raw === undefined) return { events: null, audit };
  if (!isPlainObject(raw)) {
    fail(['retention'], 'must be an object such as { "events": "400d" }');
    return { events: null, audit };
  }
  const one = (key: 'events' | 'audit'): number | null => {
    const given = raw[key];
    if (given === undefined) return null;
    if (typeof given !== 'string') {
      fail(['retention', key], 'must be a duration string such as "400d"');
      return null;
    }
    try {
      const ms = parseDuration(given);
      if (ms < 86_400_000) fail(['retention', key], `must be at least 1d (got "${given}")`);
      return ms;
    } catch (err) {
      if (!(err instanceof DurationError)) throw err;
      fail(['retention', key], err.message);
      return null;
    }
  };
  return { events: one('events'), audit: one('audit') ?? audit };
}

const ORIGIN = /^https?:\/\/[^/?#\s]+$/;

/** `cors: { "allowedOrigins": ["https://portal.example.com"] }`: exact origins (scheme, host, port), no paths. */
function parseCors(raw: unknown, fail: (segments: string[], text: string) => void): string[] {
  if (raw === undefined) return [];
  if (!isPlainObject(raw)) {
    fail(['cors'], 'must be an object such as { "allowedOrigins": ["https://portal.example.com"] }');
    return [];
  }
  const list = raw.allowedOrigins;
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    fail(['cors', 'allowedOrigins'], 'must be an array of origins such as "https://portal.example.com"');
    return [];
  }
  const out: string[] = [];
  list.forEach((o, i) => {
    if (typeof o === 'string' && ORIGIN.test(o) && URL.canParse(o) && new URL(o).origin === o) out.push(o);
    else fail(['cors', 'allowedOrigins', String(i)], `must be an origin: scheme, host and port only, such as "https://portal.example.com"`);
  });
  return out;
}

/**
 * Keys in `events` that start with "_" and hold a non-object (e.g. "_comment": "...") are comments. They can never be
 * valid type names, and "unknown keys are ignored" has to hold inside `events` too. An object under such a key is still
 * treated as an attempted event type, so a typo'd name is reported rather than silently dropped.
 */
function withoutEventComments(doc: Record<string, unknown>): Record<string, unknown> {
  if (!isPlainObject(doc.events)) return doc;
  const events = Object.create(null) as Record<string, unknown>;
  for (const [name, spec] of Object.entries(doc.events)) {
    if (!(name.startsWith('_') && !isPlainObject(spec))) events[name] = spec;
  }
  return { ...doc, events };
}

function resolveSecret(written: string, env: NodeJS.ProcessEnv): { value?: string; fromEnv: boolean; problem?: string } {
  if (!written.startsWith('env:')) return { value: written, fromEnv: false };
  const name = written.slice('env:'.length);
  if (!ENV_NAME.test(name)) {
    return {
      fromEnv: true,
      problem: `"env:" must be followed by an environment variable name such as WEBHOOK_SECRET (got ${describeValue(written)})`,
    };
  }
  const value = env[name];
  if (value === undefined || value === '') {
    return { fromEnv: true, problem: `environment variable ${name} is not set or empty (referenced as "env:${name}")` };
  }
  return { value, fromEnv: true };
}

/**
 * A position-bearing description of why `text` is not JSON. V8's own message is not used: on Node 20 it often has no
 * position and it quotes the surrounding source, which may be an inline webhook secret.
 */
function describeJsonError(text: string): string {
  const offset = jsonErrorOffset(text);
  if (offset === undefined) return 'malformed JSON';
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  const found = offset >= text.length ? 'unexpected end of file' : `unexpected character ${JSON.stringify(text[offset])}`;
  return `malformed JSON at line ${line}, column ${column} (position ${offset}): ${found}`;
}

const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const SCALAR = new RegExp(`${STRING.source}|-?(?:0|[1-9]\\d*)(?:\\.\\d+)?(?:[eE][+-]?\\d+)?|true|false|null`, 'y');

/** Offset of the first token a strict JSON grammar rejects; only called after JSON.parse has already failed. */
function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const eat = (re: RegExp): void => {
    re.lastIndex = i;
    if (!re.test(text)) throw i;
    i = re.lastIndex;
  };
  const ws = (): void => eat(/[ \t\n\r]*/y);
  const value = (): void => {
    ws();
    const open = text[i];
    if (open !== '{' && open !== '[') {
      eat(SCALAR);
      return;
    }
    i++;
    ws();
    if (text[i] === (open === '{' ? '}' : ']')) {
      i++;
      return;
    }
    for (;;) {
      if (open === '{') {
        eat(STRING);
        ws();
        eat(/:/y);
      }
      value();
      ws();
      if (text[i] !== ',') {
        eat(open === '{' ? /\}/y : /\]/y);
        return;
      }
      i++;
      ws();
    }
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (thrown) {
    return typeof thrown === 'number' ? thrown : undefined;
  }
}
