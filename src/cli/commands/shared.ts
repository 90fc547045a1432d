// Owns what every client command shares: the connection options (--url, --api-key, --json, …), the
// client they build, output helpers, and the mapping from failures to documented exit codes.
// Must never print the API key, and never import server code (client commands talk HTTP only).

import { type Command, CommanderError, Option } from 'commander';
import { MeterhookClient, MeterhookConnectionError, MeterhookError, PERIODS, type Period } from '../../client/index.js';

/** Exit codes of every `meterhook` command (documented in the README). */
export const EXIT = {
  OK: 0,
  /** The command ran and failed: an HTTP error from the server, rejected rows, a failed webhook attempt. */
  FAILURE: 1,
  /** Bad flags or arguments, a missing API key, an unreadable input file, an invalid configuration. */
  USAGE: 2,
  /** The server could not be reached (refused, DNS, timeout) even after retries. */
  UNREACHABLE: 3,
} as const;

/** A mistake in how the command was called: exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface ClientFlags {
  url: string;
  apiKey?: string;
  json?: boolean;
  timeout: string;
  retries: string;
}

export const DEFAULT_URL = 'http://localhost:3000';

/** Adds the connection and output options every client command takes. */
export function clientCommand(cmd: Command, defaults: { retries?: number } = {}): Command {
  return cmd
    .addOption(new Option('--url <url>', 'meterhook server URL').env('METERHOOK_URL').default(DEFAULT_URL))
    .addOption(new Option('--api-key <key>', 'API key (prefer the environment variable: flags show up in ps)').env('METERHOOK_API_KEY'))
    .option('--json', 'print machine-readable JSON on stdout (errors too)')
    .option('--timeout <ms>', 'timeout of one HTTP attempt, in milliseconds', '30000')
    .option('--retries <n>', 'retries after a 5xx, 429 or network error (backoff with jitter)', String(defaults.retries ?? 2));
}

export function intFlag(name: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

export function periodFlag(raw: string | undefined): Period | undefined {
  if (raw === undefined) return undefined;
  if (!(PERIODS as readonly string[]).includes(raw))
    throw new UsageError(`--period must be one of ${PERIODS.join(', ')} (got ${JSON.stringify(raw)})`);
  return raw as Period;
}

/** `--timestamp` / `--at`: epoch milliseconds when all digits, else the text (the server parses it). */
export function instantFlag(raw: string | undefined): string | number | undefined {
  if (raw === undefined) return undefined;
  return /^\d+$/.test(raw) ? Number(raw) : raw;
}

export function makeClient(flags: ClientFlags, extra: { maxBatchSize?: number } = {}): MeterhookClient {
  if (!flags.apiKey) throw new UsageError('no API key: set METERHOOK_API_KEY or pass --api-key');
  let url: URL;
  try {
    url = new URL(flags.url);
  } catch {
    throw new UsageError(`--url must be a URL such as http://localhost:3000 (got ${JSON.stringify(flags.url)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be http or https (got ${url.protocol})`);
  return new MeterhookClient({
    url,
    apiKey: flags.apiKey,
    timeoutMs: intFlag('--timeout', flags.timeout, 1),
    maxRetries: intFlag('--retries', flags.retries, 0, 100),
    retryBaseDelayMs: 200,
    retryMaxDelayMs: 5_000,
    maxRetryAfterMs: 30_000,
    ...extra,
  });
}

export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** A left-aligned text table (no borders), for human output. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  if (err instanceof UsageError) return EXIT.USAGE;
  if (err instanceof MeterhookConnectionError) return EXIT.UNREACHABLE;
  if (err instanceof Error && err.name === 'ConfigError') return EXIT.USAGE;
  return EXIT.FAILURE;
}

/** Reports a failure (stderr; and a JSON object on stdout with --json) and exits with its code. */
export function failWith(err: unknown, json = false): never {
  const code = exitCodeOf(err);
  const msg = err instanceof Error ? err.message : String(err);
  let hint = '';
  if (err instanceof MeterhookConnectionError) hint = ' (is the server running? set --url or METERHOOK_URL)';
  if (err instanceof MeterhookError && err.status === 401) hint = ' (check METERHOOK_API_KEY / --api-key)';
  const reqId = err instanceof MeterhookError && err.requestId ? ` [request ${err.requestId}]` : '';
  process.stderr.write(`meterhook: ${msg}${hint}${reqId}\n`);
  if (json) {
    const body: Record<string, unknown> = { error: msg, exitCode: code };
    if (err instanceof MeterhookError) Object.assign(body, { status: err.status, code: err.code, body: err.body });
    if (err instanceof MeterhookConnectionError) Object.assign(body, { code: err.code });
    printJson(body);
  }
  process.exit(code);
}

/** Wraps a client command's action: failures become the documented exit codes. */
// biome-ignore lint/suspicious/noConfusingVoidType: actions that print and return nothing exit 0
export function run<A extends unknown[]>(action: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    // commander passes (...arguments, options, command): the options object is second to last.
    const opts = args[args.length - 2] as { json?: boolean } | undefined;
    try {
      const code = await action(...args);
      if (code) process.exitCode = code;
    } catch (err) {
      failWith(err, Boolean(opts?.json));
    }
  };
}
