// Spawns REAL `meterhook serve` processes (node + tsx + src/cli/index.ts) for end-to-end tests, on
// 127.0.0.1 with an ephemeral port, and tracks every child so `after` hooks can always reap them.
// Every wait here has a timeout: a hung server fails the test instead of hanging the suite.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_ENV } from '../../src/config/server-settings.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI_ENTRY = path.join(REPO_ROOT, 'src', 'cli', 'index.ts');
export const REFERENCE_CONFIG_FILE = path.join(REPO_ROOT, 'systemconfig.json');

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** Environment variables that would leak from the developer's shell into a test server and change its behaviour. */
const SCRUBBED_ENV = [...SERVER_ENV, 'TZ'];

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  /** Base URL parsed from the server's own "meterhook listening" log line, e.g. http://127.0.0.1:41425. */
  url: string;
  /** The API key to use: the one passed in METERHOOK_API_KEYS, else the one announced on first start (if any). */
  key: string | undefined;
  /** The key printed by the first-start notice, if this start printed one. */
  announcedKey: string | undefined;
  proc: ChildProcess;
  dataDir: string;
  configFile: string;
  stdout(): string;
  stderr(): string;
  /** Sends a signal and resolves when the process has exited (SIGKILL after a timeout). */
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** Graceful stop (SIGTERM), escalating to SIGKILL if the process does not exit in time. */
  stop(): Promise<ExitInfo>;
  exited(): Promise<ExitInfo>;
}

export interface StartOptions {
  /** A config file path, or a config document (written to a temp file). Default: the repo's systemconfig.json. */
  config?: string | Record<string, unknown>;
  /** Reuse a data dir (restart); default: a fresh temp dir. */
  dataDir?: string;
  /** The API key put in METERHOOK_API_KEYS; null means "configure no key" (first-start path). Default: a random mh_ key. */
  apiKey?: string | null;
  /** Extra environment, applied last; undefined values delete a variable. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function makeTempDir(prefix = 'meterhook-e2e-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of SCRUBBED_ENV) delete env[name];
  return env;
}

function buildEnv(dataDir: string, apiKey: string | null, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env = baseEnv();
  env.PORT = '0';
  env.HOST = '127.0.0.1';
  env.METERHOOK_DATA_DIR = dataDir;
  env.LOG_LEVEL = 'info';
  if (apiKey !== null) env.METERHOOK_API_KEYS = apiKey;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

function configPath(config: StartOptions['config'], dir: string): string {
  if (config === undefined) return REFERENCE_CONFIG_FILE;
  if (typeof config === 'string') return path.resolve(config);
  const file = path.join(dir, `config-${randomBytes(4).toString('hex')}.json`);
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

function spawnCli(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', CLI_ENTRY, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

function exitPromise(proc: ChildProcess): Promise<ExitInfo> {
  if (proc.exitCode !== null || proc.signalCode !== null) {
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  }
  return new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Resolves with the exit, or with null if the process is still running after `ms`. */
async function exitWithin(proc: ChildProcess, ms: number): Promise<ExitInfo | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
  try {
    return await Promise.race([exitPromise(proc), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function signalAndWait(proc: ChildProcess, signal: NodeJS.Signals): Promise<ExitInfo> {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
  const done = await exitWithin(proc, STOP_TIMEOUT_MS);
  if (done) return done;
  proc.kill('SIGKILL');
  const killed = await exitWithin(proc, STOP_TIMEOUT_MS);
  if (!killed) throw new Error(`process ${proc.pid} did not exit even after SIGKILL`);
  return killed;
}

const KEY_IN_NOTICE = /^\s{4}(mh_[A-Za-z0-9_-]+)\s*$/m;

/** Finds the "meterhook listening" JSON log line in stdout and returns its url. */
export function listeningUrl(stdout: string): string | undefined {
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as { msg?: unknown; url?: unknown };
      if (rec.msg === 'meterhook listening' && typeof rec.url === 'string') return rec.url;
    } catch {
      // not a log line
    }
  }
  return undefined;
}

export async function startServerProcess(opts: StartOptions = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? makeTempDir();
  const configFile = configPath(opts.config, dataDir);
  const apiKey = opts.apiKey === undefined ? `mh_e2e_${randomBytes(12).toString('hex')}` : opts.apiKey;
  const proc = spawnCli(['serve', '--config', configFile], buildEnv(dataDir, apiKey, opts.env));

  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (c: string) => (out += c));
  proc.stderr!.on('data', (c: string) => (err += c));

  const timeoutMs = opts.timeoutMs ?? START_TIMEOUT_MS;
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const u = listeningUrl(out);
      if (u) finish(() => resolve(u));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      finish(() =>
        reject(new Error(`meterhook exited before listening (code ${code}, signal ${signal})\nstdout:\n${out}\nstderr:\n${err}`)),
      );
    const timer = setTimeout(() => {
      finish(() => {
        proc.kill('SIGKILL');
        reject(new Error(`meterhook did not log "meterhook listening" within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
      });
    }, timeoutMs);
    function finish(f: () => void) {
      clearTimeout(timer);
      proc.stdout!.off('data', check);
      proc.off('exit', onExit);
      f();
    }
    proc.stdout!.on('data', check);
    proc.once('exit', onExit);
  });

  const announcedKey = KEY_IN_NOTICE.exec(out)?.[1];
  return {
    url,
    key: apiKey ?? announcedKey,
    announcedKey,
    proc,
    dataDir,
    configFile,
    stdout: () => out,
    stderr: () => err,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => signalAndWait(proc, signal),
    stop: () => signalAndWait(proc, 'SIGTERM'),
    exited: () => exitPromise(proc),
  };
}

/** Runs `meterhook <args>` to completion (killing it after the timeout) and returns its exit and output. */
export async function runCli(
  args: string[],
  opts: { dataDir?: string; apiKey?: string | null; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<ExitInfo & { stdout: string; stderr: string; timedOut: boolean }> {
  const dataDir = opts.dataDir ?? makeTempDir();
  const proc = spawnCli(args, buildEnv(dataDir, opts.apiKey === undefined ? null : opts.apiKey, opts.env));
  let stdout = '';
  let stderr = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stdout!.on('data', (c: string) => (stdout += c));
  proc.stderr!.on('data', (c: string) => (stderr += c));
  // 'exit' can fire before the pipes are drained; 'close' means every byte has been read.
  const closed = new Promise<void>((r) => proc.once('close', () => r()));
  const done = await exitWithin(proc, opts.timeoutMs ?? START_TIMEOUT_MS);
  if (done) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, 2_000)))]);
    clearTimeout(timer);
    return { ...done, stdout, stderr, timedOut: false };
  }
  const killed = await signalAndWait(proc, 'SIGKILL');
  return { ...killed, stdout, stderr, timedOut: true };
}

/** SIGKILLs every process this helper spawned that is still running, and removes the temp dirs it made. */
export async function cleanupServerProcesses(): Promise<void> {
  await Promise.all(
    [...live].map(async (p) => {
      try {
        await signalAndWait(p, 'SIGKILL');
      } catch {
        // already reported by the test that owned it
      }
    }),
  );
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  /** The parsed JSON body, or the raw text when it is not JSON. */
  body: T;
  text: string;
}

/** A fetch wrapper for tests: JSON in, JSON out, with a timeout on every request. */
export async function http<T = any>(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  const res = await fetch(url, {
    method: opts.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Sleeps, for pacing requests (never used to wait for a condition; use a bounded poll for that). */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
