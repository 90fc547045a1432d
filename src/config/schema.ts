// Owns what a valid systemconfig.json is: operators, loaded-config types, ConfigError, the TypeBox structure
// and its wording, and the URL/cron rules.
// Must never do I/O, read the environment, or echo a webhook secret in an error message.

import Type from 'typebox';
import { Settings } from 'typebox/system';
import Value from 'typebox/value';
import { Cron } from 'croner';
import { PERIODS } from '../domain/periods.js';
import type { Period } from '../domain/periods.js';
import { OPERATORS } from '../domain/operators.js';
import { DEFAULT_MAX_GROUPS_PER_HOUR, MAX_GROUPS_PER_HOUR_LIMIT } from '../domain/dimensions.js';
import type { EventMeter } from '../domain/rules.js';
import type { MessageType, WebhookDeliveryConfig } from './webhook-config.js';

export { OPERATORS, type Operator } from '../domain/operators.js';

export interface WebhookEndpointConfig {
  url: string;
  /** Resolved: an `env:NAME` reference has already been replaced by the variable's value. */
  secret: string;
  enabled: boolean;
  /** For display only, so a UI can say where the secret came from without showing it. */
  secretSource: 'inline' | 'env';
  /** The entry as written (secret as written, e.g. "env:NAME"), including keys this version does not interpret. */
  raw: Record<string, unknown>;
  /** Older secrets still signed with during a rotation (resolved), after `secret`. */
  previousSecrets: string[];
  id: string;
  events: MessageType[];
  /** null: every configured period. */
  periods: Period[] | null;
  legacyHeaders: boolean;
  timeoutMs: number;
}

export interface MeterhookConfig {
  periods: Period[];
  /** Null-prototype, so 'constructor' or '__proto__' are never types unless configured. */
  events: Record<string, EventMeter>;
  /** Configured types, in file order. */
  eventTypes: string[];
  /** Most distinct groups per customer, event type and hour; later new groups of the hour fold into the overflow group. */
  maxGroupsPerHour: number;
  /** Per configured type, the property that carries the value in a vendor's event (`events[type].valueProperty`, default "value"). */
  valueProperties: Record<string, string>;
  webhooks: WebhookEndpointConfig[];
  schedule: string;
  gracePeriodMs: number;
  maxEventAgeMs: number;
  maxFutureSkewMs: number;
  maxBatchSize: number;
  webhookDelivery: WebhookDeliveryConfig;
  /** retention.events: raw events older than this are deleted (rollups and aggregations are kept); null keeps all. */
  retentionEventsMs: number | null;
  /** retention.audit: audit records older than this are deleted (default 90 days). */
  retentionAuditMs: number;
  /** cors.allowedOrigins: browser origins that may call the read routes and GET /session (default none). */
  corsAllowedOrigins: string[];
  /**
   * The effective document in file format with defaults filled in (durations as the strings given or defaulted).
   * Secrets NOT redacted here.
   */
  effective: Record<string, unknown>;
  /** Absolute path the config came from, or '<inline>' */
  source: string;
}

export const DEFAULTS = {
  periods: ['hourly', 'daily', 'weekly', 'monthly'] as readonly Period[],
  schedule: '*/15 * * * *',
  gracePeriod: '5m',
  maxEventAge: '35d',
  maxFutureSkew: '5m',
  maxBatchSize: 1000,
  maxGroupsPerHour: DEFAULT_MAX_GROUPS_PER_HOUR,
} as const;

export const MAX_BATCH_SIZE_LIMIT = 10_000;
export const EVENT_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** `events[type].valueProperty`: the vendor-event property read as the value (drop-in ingest); count types read none. */
export const DEFAULT_VALUE_PROPERTY = 'value';
const VALUE_PROPERTY_MAX = 128;
const VALUE_PROPERTY_EXPECTED = `must be a property name: a string of 1 to ${VALUE_PROPERTY_MAX} characters such as "tokens"`;

/** Every problem found in one config, reported together so a user fixes them in one pass. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: string[];
  readonly source: string;

  constructor(source: string, problems: string[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`invalid configuration in ${source} (${count}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.source = source;
    this.problems = problems;
  }
}

// Each node carries `expected`, the wording shown for any structural failure at that spot, so the message lives next
// to the rule instead of in a keyword-by-keyword translation table; `sensitive` nodes never echo the offending value.
// Enums rather than unions of literals: a union reports one error per member for a single bad value.
const list = (xs: readonly string[]): string => xs.join(', ');
const durationNode = Type.Optional(Type.String({ expected: 'must be a duration string such as "5m"' }));

const WebhookNode = Type.Object(
  {
    url: Type.String({ expected: 'must be an http(s) URL' }),
    secret: Type.String({ minLength: 1, expected: 'must be a non-empty string or "env:NAME"', sensitive: true }),
    enabled: Type.Optional(Type.Boolean({ expected: 'must be true or false' })),
  },
  { expected: 'must be an object with "url" and "secret"' },
);

export const ConfigDocument = Type.Object(
  {
    periods: Type.Optional(
      Type.Array(Type.Enum([...PERIODS], { expected: `must be one of ${list(PERIODS)}` }), {
        expected: `must be an array of periods (${list(PERIODS)})`,
      }),
    ),
    events: Type.Optional(
      Type.Record(
        Type.String(),
        Type.Object(
          {
            op: Type.Enum([...OPERATORS], { expected: `must be one of ${list(OPERATORS)}` }),
            // Checked in load-config.ts, which names the rule each bad value breaks.
            groupBy: Type.Optional(Type.Unknown()),
            field: Type.Optional(Type.Unknown()),
            valueProperty: Type.Optional(Type.String({ minLength: 1, maxLength: VALUE_PROPERTY_MAX, expected: VALUE_PROPERTY_EXPECTED })),
          },
          { expected: `must be an object such as { "op": "sum" }` },
        ),
        { expected: 'must be an object mapping event type names to { "op": ... }' },
      ),
    ),
    webhooks: Type.Optional(Type.Array(WebhookNode, { expected: 'must be an array of webhook endpoints' })),
    schedule: Type.Optional(Type.String({ expected: 'must be a cron expression string such as "*/15 * * * *"' })),
    gracePeriod: durationNode,
    maxEventAge: durationNode,
    maxFutureSkew: durationNode,
    maxBatchSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_BATCH_SIZE_LIMIT, expected: `must be an integer from 1 to ${MAX_BATCH_SIZE_LIMIT}` }),
    ),
    maxGroupsPerHour: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_GROUPS_PER_HOUR_LIMIT,
        expected: `must be an integer from 1 to ${MAX_GROUPS_PER_HOUR_LIMIT}`,
      }),
    ),
  },
  { expected: 'must be a JSON object' },
);

export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** RFC 6901 pointer (optionally "#"-prefixed, as TypeBox's schemaPath is) to its unescaped segments. */
function decodePointer(pointer: string): string[] {
  const segments = pointer.replace(/^#/, '').split('/').slice(1);
  return segments.map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** JS-ish path such as events["api.calls"].op or webhooks[0].url; walks `doc` to tell array indexes from keys. */
export function formatPath(segments: readonly string[], doc: unknown): string {
  if (segments.length === 0) return '(root)';
  let out = '';
  let node: unknown = doc;
  segments.forEach((seg, depth) => {
    // Event type names always get brackets: they routinely contain dots, and a uniform look is easier to grep.
    const underEvents = depth === 1 && segments[0] === 'events';
    if (Array.isArray(node) && /^\d+$/.test(seg)) out += `[${seg}]`;
    else if (!underEvents && IDENTIFIER.test(seg)) out += depth === 0 ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
    node = valueAt(node, [seg]);
  });
  return out;
}

/** Short description of an offending value for "(got …)"; long strings are cut so a pasted blob does not flood the log. */
export function describeValue(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  return String(v);
}

function valueAt(doc: unknown, segments: readonly string[]): unknown {
  let node = doc;
  for (const seg of segments) {
    if (!isPlainObject(node) && !Array.isArray(node)) return undefined;
    node = Object.hasOwn(node, seg) ? (node as Record<string, unknown>)[seg] : undefined;
  }
  return node;
}

interface Annotated {
  expected?: unknown;
  sensitive?: unknown;
}

function schemaAt(schemaPath: string): Annotated | undefined {
  const found = valueAt(ConfigDocument, decodePointer(schemaPath));
  return isPlainObject(found) ? (found as Annotated) : undefined;
}

function expectation(node: Annotated | undefined): string {
  return typeof node?.expected === 'string' ? node.expected : 'is not allowed here';
}

/** Structural problems (types, enums, required keys) in the wording of ConfigError: one per offending path. */
export function structuralProblems(doc: unknown): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const add = (segments: string[], text: string): void => {
    const key = segments.join('\u0000');
    if (seen.has(key)) return;
    seen.add(key);
    problems.push(`${formatPath(segments, doc)}: ${text}`);
  };

  const errors = withErrorBudget(() => Value.Errors(ConfigDocument, doc));
  for (const error of errors) {
    const segments = decodePointer(error.instancePath);
    const node = schemaAt(error.schemaPath);
    if (error.keyword === 'required') {
      const properties = (node as { properties?: Record<string, Annotated> } | undefined)?.properties ?? {};
      for (const key of error.params.requiredProperties) {
        add([...segments, key], `is required and ${expectation(properties[key])}`);
      }
      continue;
    }
    const suffix = segments.length === 0 || node?.sensitive === true ? '' : ` (got ${describeValue(valueAt(doc, segments))})`;
    add(segments, `${expectation(node)}${suffix}`);
  }
  if (errors.length >= MAX_STRUCTURAL_ERRORS)
    problems.push(`further problems not listed (stopped after ${MAX_STRUCTURAL_ERRORS}); fix these first`);
  return problems;
}

// TypeBox stops collecting at a process-wide maxErrors (default 8), which would hide most of a broken config. Raise it
// only for this synchronous call and restore it, so other validators in the process keep their own budget.
const MAX_STRUCTURAL_ERRORS = 1000;
function withErrorBudget<T>(run: () => T): T {
  const previous = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: MAX_STRUCTURAL_ERRORS });
  try {
    return run();
  } finally {
    Settings.Set({ maxErrors: previous });
  }
}

const SECTION_ORDER = [
  'periods',
  'events',
  'webhooks',
  'webhookDelivery',
  'retention',
  'cors',
  'schedule',
  'gracePeriod',
  'maxEventAge',
  'maxFutureSkew',
  'maxBatchSize',
  'maxGroupsPerHour',
];

/** Structural and semantic checks run separately; present their findings by file section, then array position. */
export function orderProblems(problems: string[]): string[] {
  const rank = (p: string): [number, number] => {
    const section = SECTION_ORDER.findIndex((s) => p.startsWith(s) && /^[[.:]/.test(p.slice(s.length)));
    const index = /^\w+\[(\d+)\]/.exec(p)?.[1];
    return [section === -1 ? SECTION_ORDER.length : section, index === undefined ? -1 : Number(index)];
  };
  return [...problems].sort((a, b) => {
    const [sa, ia] = rank(a);
    const [sb, ib] = rank(b);
    return sa - sb || ia - ib;
  });
}

// Semantic rules TypeBox cannot express; each returns the problem text, or undefined when the value is fine.

/** undefined when fine. Credentials are never echoed: a URL with userinfo is exactly where a password would be. */
export function checkWebhookUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `must be an http(s) URL (got ${describeValue(url)})`;
  }
  if (parsed.username !== '' || parsed.password !== '') {
    return 'must not contain a username or password (put the shared secret in "secret")';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `must be an http(s) URL (got ${describeValue(url)})`;
  return undefined;
}

export function checkCron(expr: string): string | undefined {
  const hint = `use 5 or 6 space-separated fields, e.g. "${DEFAULTS.schedule}"`;
  const fields = expr.trim().split(/\s+/).length;
  // croner also accepts nicknames like "@hourly"; the documented format is fields only, so hold to it.
  if (fields !== 5 && fields !== 6) return `invalid cron expression ${describeValue(expr)}: ${hint}`;
  try {
    new Cron(expr, { paused: true }).stop();
    return undefined;
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern:\s*/, '');
    return `invalid cron expression ${describeValue(expr)} (${reason}): ${hint}`;
  }
}
