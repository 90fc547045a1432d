// Owns CPU profiles: summarizing a V8 .cpuprofile (from `node --cpu-prof` or the inspector) into the
// functions with the most self time, and profiling a piece of in-process work.
// Must never change what it measures beyond the sampling profiler's own overhead.

import fs from 'node:fs';
import path from 'node:path';
import { Session } from 'node:inspector/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotFunction {
  function: string;
  where: string;
  selfMs: number;
  selfPct: number;
}

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const clean = url.replace(/^file:\/\//, '');
  const nm = clean.lastIndexOf('node_modules/');
  if (nm >= 0) return clean.slice(nm + 'node_modules/'.length);
  const src = clean.search(/\/(src|dist|bench)\//);
  return src >= 0 ? clean.slice(src + 1) : path.basename(clean);
}

export function summarizeProfile(profile: CpuProfile, top = 15): { totalMs: number; hot: HotFunction[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    profile.samples.forEach((id, i) => {
      self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas![i] ?? 0) / 1000);
    });
  } else {
    const total = (profile.endTime - profile.startTime) / 1000;
    const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    for (const n of profile.nodes) self.set(n.id, ((n.hitCount ?? 0) / hits) * total);
  }
  const agg = new Map<string, HotFunction>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    totalMs += ms;
    const fn = n.callFrame.functionName || '(anonymous)';
    const where = `${shortUrl(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    const key = `${fn}@${where}`;
    const cur = agg.get(key) ?? { function: fn, where, selfMs: 0, selfPct: 0 };
    cur.selfMs += ms;
    agg.set(key, cur);
  }
  const hot = [...agg.values()]
    .filter((h) => h.function !== '(idle)')
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, top)
    .map((h) => ({ ...h, selfMs: Math.round(h.selfMs), selfPct: Math.round((h.selfMs / Math.max(1, totalMs)) * 1000) / 10 }));
  return { totalMs: Math.round(totalMs), hot };
}

/** Summarizes the newest .cpuprofile in a directory (written by a child started with --cpu-prof). */
export function summarizeProfileDir(dir: string, top = 15): ({ file: string } & ReturnType<typeof summarizeProfile>) | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f));
  if (files.length === 0) return undefined;
  files.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  const file = files[0]!;
  return { file, ...summarizeProfile(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, top) };
}

/** Runs `work` under the in-process V8 sampling profiler; the profile is saved to `saveAs` when given. */
export async function profileInProcess<T>(
  work: () => Promise<T>,
  saveAs?: string,
): Promise<{ result: T; profile: ReturnType<typeof summarizeProfile> }> {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 1000 });
    await session.post('Profiler.start');
    const result = await work();
    const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
    if (saveAs) fs.writeFileSync(saveAs, JSON.stringify(profile));
    return { result, profile: summarizeProfile(profile) };
  } finally {
    session.disconnect();
  }
}

export function formatHot(hot: HotFunction[]): string {
  return hot
    .map((h) => `    ${String(h.selfPct).padStart(5)}%  ${String(h.selfMs).padStart(7)} ms  ${h.function}  (${h.where})`)
    .join('\n');
}
