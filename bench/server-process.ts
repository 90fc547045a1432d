// Owns the child processes a benchmark drives: meterhook `serve` (compiled dist/ when fresh, else
// src/ through tsx), the bare node:http baseline and the webhook receiver; their ports, readiness,
// resource sampling (/proc/<pid>) and shutdown. Must never leave a child running after stop().

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_ENV } from '../src/config/server-settings.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH_DIR = path.join(REPO_ROOT, 'bench');
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 20_000;
/** Linux USER_HZ; /proc/<pid>/stat reports CPU time in these ticks. */
const CLOCK_TICKS = 100;

/** Environment that would leak from the developer's shell into a server and change its behaviour. */
const SCRUBBED_ENV = [...SERVER_ENV, 'NODE_OPTIONS'];

export interface Runner {
  kind: 'dist' | 'tsx';
  /** Node arguments before the server's own arguments. */
  args: string[];
  description: string;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    if (fs.statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The src files whose compiled dist/ counterpart is missing or older than the source. */
export function staleDistFiles(): string[] {
  const src = path.join(REPO_ROOT, 'src');
  return walk(src).filter((f) => {
    const js = path.join(REPO_ROOT, 'dist', path.relative(src, f)).replace(/\.ts$/, '.js');
    try {
      return fs.statSync(js).mtimeMs < fs.statSync(f).mtimeMs;
    } catch {
      return true;
    }
  });
}

/** Compiles src/ into dist/ with the project's own build config; returns tsc's exit status and output. */
export function buildDist(): { ok: boolean; output: string } {
  const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

/**
 * Compiled JS gives realistic numbers (no loader hooks); src through tsx is the fallback when dist/
 * is stale and building is off or failed to produce fresh output.
 */
export function chooseRunner(build: boolean, log: (m: string) => void): Runner {
  let stale = staleDistFiles();
  if (stale.length > 0 && build) {
    log(`dist/ is stale (${stale.length} source files newer than their output); running tsc -p tsconfig.build.json`);
    const r = buildDist();
    if (!r.ok) log(`tsc reported problems (the JS it emitted is still used if fresh):\n${r.output.split('\n').slice(0, 10).join('\n')}`);
    stale = staleDistFiles();
  }
  if (stale.length === 0) {
    return {
      kind: 'dist',
      args: [path.join(REPO_ROOT, 'dist', 'cli', 'index.js')],
      description: `node ${startScriptNodeFlags().join(' ')} dist/cli/index.js serve (compiled; the flags of npm start)`,
    };
  }
  return {
    kind: 'tsx',
    args: ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'cli', 'index.ts')],
    description:
      `node ${startScriptNodeFlags().join(' ')} --import tsx src/cli/index.ts serve ` +
      `(dist/ stale: ${stale.length} files${build ? ', build did not refresh it' : ''})`,
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface ProcStats {
  peakRssBytes: number;
  /** Kernel high-water mark (VmHWM) at the last sample. */
  hwmBytes: number;
  samples: number;
}

/** Samples a process's /proc/<pid> every 100 ms: RSS (VmRSS, VmHWM) and CPU time. */
export class ProcMonitor {
  private timer: NodeJS.Timeout | null = null;
  private peak = 0;
  private hwm = 0;
  private n = 0;

  constructor(readonly pid: number) {}

  start(intervalMs = 100): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
    return this;
  }

  sample(): void {
    try {
      const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
      if (rss) this.peak = Math.max(this.peak, Number(rss[1]) * 1024);
      if (hwm) this.hwm = Math.max(this.hwm, Number(hwm[1]) * 1024);
      this.n++;
    } catch {
      // the process has exited, or this is not Linux
    }
  }

  /** User + system CPU seconds the process has used so far (NaN when /proc is unavailable). */
  cpuSeconds(): number {
    try {
      const stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may contain spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    } catch {
      return Number.NaN;
    }
  }

  stop(): ProcStats {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return { peakRssBytes: Math.max(this.peak, this.hwm), hwmBytes: this.hwm, samples: this.n };
  }
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  url: string;
  port: number;
  monitor: ProcMonitor;
  output(): string;
  /** SIGTERM, then SIGKILL after a timeout; returns the RSS figures. */
  stop(): Promise<ProcStats & { exitCode: number | null; signal: NodeJS.Signals | null }>;
}

function exitOf(proc: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
}

async function waitExit(proc: ChildProcess, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)));
  try {
    return await Promise.race([exitOf(proc), t]);
  } finally {
    clearTimeout(timer);
  }
}

const live = new Set<ChildProcess>();
/** Kills every child still running (used when the harness itself fails). */
export function killAllChildren(): void {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}

async function waitReady(url: string, proc: ChildProcess, out: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`process exited before it was ready (code ${proc.exitCode}, signal ${proc.signalCode})\n${out().slice(-3000)}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status < 500) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`process not ready at ${url} within ${timeoutMs} ms\n${out().slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function spawnChild(o: {
  name: string;
  nodeArgs: string[];
  env: Record<string, string>;
  port: number;
  readyPath: string;
  timeoutMs?: number;
}): Promise<Child> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of SCRUBBED_ENV) delete env[k];
  Object.assign(env, o.env);
  const proc = spawn(process.execPath, o.nodeArgs, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  let out = '';
  const keep = (c: string) => {
    out += c;
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout!.setEncoding('utf8').on('data', keep);
  proc.stderr!.setEncoding('utf8').on('data', keep);
  const url = `http://127.0.0.1:${o.port}`;
  const monitor = new ProcMonitor(proc.pid!).start();
  try {
    await waitReady(`${url}${o.readyPath}`, proc, () => out, o.timeoutMs ?? START_TIMEOUT_MS);
  } catch (err) {
    monitor.stop();
    proc.kill('SIGKILL');
    throw new Error(`${o.name}: ${(err as Error).message}`);
  }
  return {
    name: o.name,
    proc,
    pid: proc.pid!,
    url,
    port: o.port,
    monitor,
    output: () => out,
    async stop() {
      monitor.sample();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      let exit = await waitExit(proc, STOP_TIMEOUT_MS);
      if (!exit) {
        proc.kill('SIGKILL');
        exit = await waitExit(proc, STOP_TIMEOUT_MS);
      }
      const stats = monitor.stop();
      return { ...stats, exitCode: exit?.code ?? null, signal: exit?.signal ?? null };
    },
  };
}

export interface MeterhookServerOptions {
  runner: Runner;
  dataDir: string;
  configFile: string;
  apiKey: string;
  /** Directory for --cpu-prof output; undefined: no profiling. */
  cpuProfDir?: string;
  env?: Record<string, string>;
}

/** The Node flags `npm start` gives the server (the heap limit), so the benchmark runs what users run. */
export function startScriptNodeFlags(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const m = /^node((?:\s+--\S+)*)\s+dist\/cli\/index\.js serve$/.exec(pkg.scripts.start ?? '');
  if (!m) throw new Error(`package.json "start" is not "node [--flags] dist/cli/index.js serve": ${pkg.scripts.start}`);
  return m[1]!.trim().split(/\s+/).filter(Boolean);
}

/** Environment every meterhook server of this run gets (set once from the command line, e.g. --key-rate-limit). */
export const RUN_SERVER_ENV: Record<string, string> = {};

export async function startMeterhook(o: MeterhookServerOptions): Promise<Child> {
  const port = await freePort();
  const prof = o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [];
  return spawnChild({
    name: 'meterhook',
    nodeArgs: [...startScriptNodeFlags(), ...prof, ...o.runner.args, 'serve', '--config', o.configFile],
    env: {
      PORT: String(port),
      HOST: '127.0.0.1',
      METERHOOK_DATA_DIR: o.dataDir,
      METERHOOK_API_KEYS: o.apiKey,
      LOG_LEVEL: 'warn',
      ...RUN_SERVER_ENV,
      ...(o.env ?? {}),
    },
    port,
    readyPath: '/healthz',
  });
}

/** The bare node:http server: reads the body, JSON.parses it, answers 201. */
export async function startBaseline(): Promise<Child> {
  const port = await freePort();
  return spawnChild({
    name: 'baseline',
    nodeArgs: ['--import', 'tsx', path.join(BENCH_DIR, 'baseline-server.ts')],
    env: { PORT: String(port) },
    port,
    readyPath: '/healthz',
  });
}

/** The loopback webhook receiver: /fast answers 200 at once, /slow after 2 s. */
export async function startReceiver(slowMs: number): Promise<Child> {
  const port = await freePort();
  return spawnChild({
    name: 'receiver',
    nodeArgs: ['--import', 'tsx', path.join(BENCH_DIR, 'receiver.ts')],
    env: { PORT: String(port), SLOW_MS: String(slowMs) },
    port,
    readyPath: '/stats',
  });
}

export interface SystemCpuSample {
  at: number;
  busy: number;
  iowait: number;
}

/** Machine-wide CPU ticks from /proc/stat, to tell how much other processes competed during a run. */
export function systemCpu(): SystemCpuSample | undefined {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    return { at: performance.now(), busy: user + nice + system + irq + softirq + steal, iowait };
  } catch {
    return undefined;
  }
}

/** Cores busy machine-wide (and in iowait) between two samples. */
export function coresBusy(a: SystemCpuSample | undefined, b: SystemCpuSample | undefined): { busy: number; iowait: number } | undefined {
  if (!a || !b) return undefined;
  const s = (b.at - a.at) / 1000;
  return {
    busy: Math.round(((b.busy - a.busy) / CLOCK_TICKS / s) * 100) / 100,
    iowait: Math.round(((b.iowait - a.iowait) / CLOCK_TICKS / s) * 100) / 100,
  };
}
