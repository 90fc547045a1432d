// Runs the README's shell examples the way a new user does: in a throwaway copy of this checkout
// (its node_modules linked in, since the README's `npm install` needs the network), `npm start` as
// the README says, then the example blocks with bash and curl. With a clock offset, the server, npm
// and the shell all run under libfaketime (the `faketime` command), so `date` and Date.now() agree.
// Must never write into this checkout (its dist/ and data/ stay untouched) nor leave a process behind.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, listeningUrl } from './server-process.js';
import { SERVER_ENV } from '../../src/config/server-settings.js';

/** What a new user's checkout holds that `npm start` reads; node_modules is linked, not installed. */
const CHECKOUT_FILES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'tsconfig.client.json',
  'systemconfig.json',
  'src',
];
/** Variables from the developer's shell that would change how the server starts. */
const SCRUBBED_ENV = [...SERVER_ENV, 'NODE_OPTIONS', 'KEY', 'TZ', 'FAKETIME', 'LD_PRELOAD'];
const KEY_IN_NOTICE = /^\s{4}(mh_[A-Za-z0-9_-]+)\s*$/m;

/** The text of a `## heading` section, up to the next `## `. */
export function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = markdown.indexOf('\n## ', start + 4);
  return markdown.slice(start, end < 0 ? undefined : end);
}

/** ```sh blocks, with the indentation of their fence removed (blocks inside list items are indented). */
export function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^( *)```sh\n([\s\S]*?)^\1```/gm)].map((m) =>
    m[2]!
      .split('\n')
      .map((l) => (l.startsWith(m[1]!) ? l.slice(m[1]!.length) : l))
      .join('\n'),
  );
}

/** The curl commands of a script in order, each with the `# {…}` answer the README shows after it, if any. */
export function curlCommands(script: string): Array<{ command: string; expected?: string }> {
  const out: Array<{ command: string; expected?: string }> = [];
  for (const line of script.split('\n')) {
    const t = line.trim();
    if (/^curl\s/.test(t)) out.push({ command: t });
    else if (/^# [[{]/.test(t) && out.length > 0 && out[out.length - 1]!.expected === undefined) out[out.length - 1]!.expected = t.slice(2);
  }
  return out;
}

/** A pattern for an answer shown in the README: `…` stands for any value. */
export function answerPattern(shown: string): RegExp {
  return new RegExp(
    `^${shown
      .split('…')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^"]*')}$`,
  );
}

/** The `faketime` command, or a reason it cannot be used. */
export function fakeClockAvailable(): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync('faketime', ['-f', '+1d', 'true'], { encoding: 'utf8' });
  if (r.error) return { ok: false, reason: `faketime is not installed (Debian/Ubuntu: apt-get install faketime): ${r.error.message}` };
  return r.status === 0 ? { ok: true } : { ok: false, reason: `faketime failed: ${r.stderr}` };
}

/** argv prefixed with `faketime -f <offset>` when a clock offset is given (e.g. "+365d"). */
function withClock(argv: string[], offset: string | undefined): [string, string[]] {
  return offset ? ['faketime', ['-f', offset, ...argv]] : [argv[0]!, argv.slice(1)];
}

function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of SCRUBBED_ENV) delete env[k];
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface ReadmeServer {
  dir: string;
  port: number;
  url: string;
  /** The key the first start printed. */
  key: string;
  stdout(): string;
  /** Runs a script with bash (under the same clock), curl answers marked so they can be told apart. */
  shell(script: string, env?: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/** A throwaway checkout, `npm start` in it (the build included), waiting until it listens. */
export async function startLikeReadme(o: { clockOffset?: string; timeoutMs?: number }): Promise<ReadmeServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-readme-checkout-'));
  for (const f of CHECKOUT_FILES) fs.cpSync(path.join(REPO_ROOT, f), path.join(dir, f), { recursive: true });
  fs.symlinkSync(fs.realpathSync(path.join(REPO_ROOT, 'node_modules')), path.join(dir, 'node_modules'), 'dir');
  const port = await freePort();
  // PORT and HOST as the README documents them: a fixed 3000 could be taken on a shared machine.
  const env = baseEnv({ PORT: String(port), HOST: '127.0.0.1' });
  const [cmd, args] = withClock(['npm', 'start'], o.clockOffset);
  const proc: ChildProcess = spawn(cmd, args, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const killGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid!, sig);
    } catch {
      // already gone
    }
  };
  const stop = async () => {
    killGroup('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, 15_000)))]);
    clearTimeout(timer);
    killGroup('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (o.timeoutMs ?? 180_000);
  while (!(listeningUrl(out) && KEY_IN_NOTICE.test(out))) {
    if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `npm start did not print its key and listen (exit ${proc.exitCode}, signal ${proc.signalCode})\nstdout:\n${out}\nstderr:\n${err}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const key = KEY_IN_NOTICE.exec(out)![1]!;
  return {
    dir,
    port,
    url: `http://127.0.0.1:${port}`,
    key,
    stdout: () => out,
    async shell(script, extra = {}) {
      // Each curl answer ends with a line "@@ <status>", so the output splits into one answer per call.
      const prelude = `set -euo pipefail\ncurl() { command curl --show-error -w '\\n@@ %{http_code}\\n' "$@"; }\n`;
      const [c, a] = withClock(['bash', '-c', prelude + script], o.clockOffset);
      const child = spawn(c, a, { cwd: dir, env: baseEnv(extra), stdio: ['ignore', 'pipe', 'pipe'] });
      let so = '';
      let se = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (so += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (se += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const status = await new Promise<number | null>((r) => child.once('close', (code) => r(code)));
      clearTimeout(timer);
      return { status, stdout: so, stderr: se };
    },
    stop,
  };
}

/** Splits the output of `shell` into the answers of its curl calls. */
export function curlAnswers(stdout: string): Array<{ status: number; body: string }> {
  const parts = stdout.split(/\n@@ (\d{3})\n/);
  const answers: Array<{ status: number; body: string }> = [];
  for (let i = 0; i + 1 < parts.length; i += 2) answers.push({ body: parts[i]!.trim(), status: Number(parts[i + 1]) });
  return answers;
}

/** What Date.now() says in a Node process under the given clock offset. */
export function nodeNowUnder(offset: string): number {
  const r = spawnSync('faketime', ['-f', offset, process.execPath, '-e', 'process.stdout.write(String(Date.now()))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

/** What `date -u +%s` says in a shell under the given clock offset, in ms. */
export function shellNowUnder(offset: string): number {
  const r = spawnSync('faketime', ['-f', offset, 'bash', '-c', 'date -u +%s'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) * 1000;
}
