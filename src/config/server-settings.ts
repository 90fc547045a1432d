// Owns process-level settings that come from environment variables (port, host, data dir, API keys, log level, DB URL,
// connection and authentication limits). Must never read process.env directly (callers pass it in) and never include
// an API key's value in an error.

import net from 'node:net';
import path from 'node:path';
import { DurationError, formatDuration, parseDuration } from '../domain/durations.js';
import { ConfigError } from './schema.js';

/** Bounds on what one connection can hold: no stalled client keeps a socket, or the process, for long. */
export interface HttpLimits {
  /** Time to receive a request's headers (METERHOOK_HEADERS_TIMEOUT). */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (METERHOOK_REQUEST_TIMEOUT). */
  requestTimeoutMs: number;
  /** Open connections per process; more are closed at once (METERHOOK_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Open connections per client address (an IPv6 /64 counts as one); 0 means no per-address bound. */
  maxConnectionsPerAddress: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 1024,
  maxConnectionsPerAddress: 256,
};

/** Failed authentications one address may make: a bucket of `failures`, refilled over `windowMs`. */
export interface AuthThrottleSettings {
  /** 0 turns the throttle off (METERHOOK_AUTH_FAILURE_LIMIT). */
  failures: number;
  /** METERHOOK_AUTH_FAILURE_WINDOW. */
  windowMs: number;
}

export const DEFAULT_AUTH_THROTTLE: AuthThrottleSettings = { failures: 10, windowMs: 60_000 };

/** Fastify's trustProxy: false, true, a hop count, or the proxies' addresses and CIDR ranges. */
export type TrustProxy = boolean | number | string[];

export interface ServerSettings {
  port: number;
  host: string;
  dataDir: string;
  apiKeys: string[];
  logLevel: string;
  databaseUrl: string | undefined;
  /** PostgreSQL connections per process (METERHOOK_PG_POOL_SIZE). */
  pgPoolSize: number;
  dryRun: boolean;
  http: HttpLimits;
  authThrottle: AuthThrottleSettings;
  /** The default per-key rate limit (METERHOOK_KEY_RATE_LIMIT / METERHOOK_KEY_RATE_BURST); null: off. */
  keyRateLimit: { requestsPerSecond: number; burst: number } | null;
  /** Which proxies' X-Forwarded-For names the client (METERHOOK_TRUST_PROXY); default none. */
  trustProxy: TrustProxy;
}

/**
 * Every environment variable the server reads (beyond `env:NAME` references in the config file). Harnesses
 * that start servers clear these from the inherited environment, so a developer's shell cannot change a run.
 */
export const SERVER_ENV = [
  'PORT',
  'HOST',
  'METERHOOK_DATA_DIR',
  'METERHOOK_API_KEYS',
  'METERHOOK_CONFIG',
  'METERHOOK_SQLITE_SYNCHRONOUS',
  'METERHOOK_PG_POOL_SIZE',
  'LOG_LEVEL',
  'DATABASE_URL',
  'DRY_RUN',
  'METERHOOK_HEADERS_TIMEOUT',
  'METERHOOK_REQUEST_TIMEOUT',
  'METERHOOK_MAX_CONNECTIONS',
  'METERHOOK_MAX_CONNECTIONS_PER_ADDRESS',
  'METERHOOK_AUTH_FAILURE_LIMIT',
  'METERHOOK_AUTH_FAILURE_WINDOW',
  'METERHOOK_TRUST_PROXY',
  'METERHOOK_KEY_RATE_LIMIT',
  'METERHOOK_KEY_RATE_BURST',
] as const;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Reads settings; every invalid variable is reported in a single ConfigError whose source is "environment". */
export function readServerSettings(env: NodeJS.ProcessEnv, cwd: string): ServerSettings {
  const problems: string[] = [];
  // Compose files and systemd units often write `PORT=` to mean "unset", so empty counts as absent.
  const get = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };

  let port = 3000;
  const rawPort = get('PORT');
  if (rawPort !== undefined) {
    // Number() would accept "0x50", "1e3" and "3000.0"; only plain decimal digits are a port.
    const parsed = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : Number.NaN;
    if (parsed >= 0 && parsed <= 65_535) port = parsed;
    else problems.push(`PORT: must be an integer from 0 to 65535 (got ${JSON.stringify(rawPort)})`);
  }

  let logLevel = 'info';
  const rawLevel = get('LOG_LEVEL');
  if (rawLevel !== undefined) {
    const level = rawLevel.toLowerCase();
    if ((LOG_LEVELS as readonly string[]).includes(level)) logLevel = level;
    else problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(rawLevel)})`);
  }

  let pgPoolSize = 10;
  const rawPool = get('METERHOOK_PG_POOL_SIZE');
  if (rawPool !== undefined) {
    const parsed = /^\d{1,3}$/.test(rawPool) ? Number(rawPool) : Number.NaN;
    if (parsed >= 1 && parsed <= 500) pgPoolSize = parsed;
    else problems.push(`METERHOOK_PG_POOL_SIZE: must be an integer from 1 to 500 (got ${JSON.stringify(rawPool)})`);
  }

  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const parsed = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
    if (parsed >= min && parsed <= max) return parsed;
    problems.push(`${name}: must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
    return fallback;
  };
  const duration = (name: string, fallback: number, minMs: number, maxMs: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    try {
      const ms = parseDuration(raw);
      if (ms >= minMs && ms <= maxMs) return ms;
      problems.push(`${name}: must be between ${formatDuration(minMs)} and ${formatDuration(maxMs)} (got ${JSON.stringify(raw)})`);
    } catch (err) {
      problems.push(`${name}: ${err instanceof DurationError ? err.message : String(err)}`);
    }
    return fallback;
  };
  const d = DEFAULT_HTTP_LIMITS;
  const http: HttpLimits = {
    headersTimeoutMs: duration('METERHOOK_HEADERS_TIMEOUT', d.headersTimeoutMs, 100, 600_000),
    requestTimeoutMs: duration('METERHOOK_REQUEST_TIMEOUT', d.requestTimeoutMs, 100, 3_600_000),
    maxConnections: integer('METERHOOK_MAX_CONNECTIONS', d.maxConnections, 1, 1_000_000),
    maxConnectionsPerAddress: integer('METERHOOK_MAX_CONNECTIONS_PER_ADDRESS', d.maxConnectionsPerAddress, 0, 1_000_000),
  };
  if (http.headersTimeoutMs > http.requestTimeoutMs) {
    problems.push('METERHOOK_HEADERS_TIMEOUT: must not be longer than METERHOOK_REQUEST_TIMEOUT (the headers are part of the request)');
  }
  const authThrottle: AuthThrottleSettings = {
    failures: integer('METERHOOK_AUTH_FAILURE_LIMIT', DEFAULT_AUTH_THROTTLE.failures, 0, 100_000),
    windowMs: duration('METERHOOK_AUTH_FAILURE_WINDOW', DEFAULT_AUTH_THROTTLE.windowMs, 1_000, 86_400_000),
  };
  const trustProxy = parseTrustProxy(get('METERHOOK_TRUST_PROXY'), problems);
  const rps = integer('METERHOOK_KEY_RATE_LIMIT', 0, 0, 1_000_000);
  const burst = integer('METERHOOK_KEY_RATE_BURST', Math.max(1, rps), 1, 1_000_000);
  const keyRateLimit = rps > 0 ? { requestsPerSecond: rps, burst } : null;

  if (problems.length > 0) throw new ConfigError('environment', problems);

  return {
    port,
    host: get('HOST') ?? '0.0.0.0',
    dataDir: path.resolve(cwd, get('METERHOOK_DATA_DIR') ?? 'data'),
    apiKeys: (env.METERHOOK_API_KEYS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter((k) => k !== ''),
    logLevel,
    databaseUrl: get('DATABASE_URL'),
    pgPoolSize,
    dryRun: /^(?:true|1)$/i.test(get('DRY_RUN') ?? ''),
    http,
    authThrottle,
    keyRateLimit,
    trustProxy,
  };
}

/** `true`/`false`, a hop count, or a comma-separated list of proxy addresses and CIDR ranges. */
function parseTrustProxy(raw: string | undefined, problems: string[]): TrustProxy {
  if (raw === undefined || /^(?:false|0)$/i.test(raw)) return false;
  if (/^true$/i.test(raw)) return true;
  if (/^\d{1,2}$/.test(raw)) return Number(raw);
  const list = raw
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  const bad = list.filter((a) => {
    const [ip, bits, ...rest] = a.split('/');
    const family = net.isIP(ip ?? '');
    if (family === 0 || rest.length > 0) return true;
    return bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
  });
  if (list.length === 0 || bad.length > 0) {
    problems.push(
      'METERHOOK_TRUST_PROXY: must be true, false, a hop count or a comma-separated list of addresses and CIDR ranges ' +
        `(got ${JSON.stringify(raw)})`,
    );
    return false;
  }
  return list;
}
