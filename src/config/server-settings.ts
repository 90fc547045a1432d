// Owns process-level settings that come from environment variables (port, host, data dir, API keys, log level, DB URL).
// Must never read process.env directly (callers pass it in) and never include an API key's value in an error.

import path from 'node:path';
import { ConfigError } from './schema.js';

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
  };
}
