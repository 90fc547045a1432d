// Owns load generation: autocannon runs (with a fresh body per request) and a sequential,
// keep-alive GET loop timed with hrtime for sub-millisecond latencies. Also measures the load
// generator's own CPU, since on a 2-core machine it competes with the server it is loading.
// Must never count a non-2xx response as work done.

import http from 'node:http';
import autocannon, { type AutocannonResult } from 'autocannon';
import { summarize } from './report.js';

export interface CannonOptions {
  url: string;
  method: 'GET' | 'POST';
  path: string | (() => string);
  headers: Record<string, string>;
  connections: number;
  durationS: number;
  /** A fresh body per request (autocannon's setupRequest); omitted for GETs. */
  body?: () => Buffer;
}

export interface CannonFigures {
  durationS: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  reqPerS: number;
  /** autocannon records latency in whole milliseconds (HDR histogram, lowest value 1). */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** CPU the load generator (this process) used, in cores (1.0 = one core busy the whole time). */
  loaderCpuCores: number;
  raw: AutocannonResult;
}

export async function cannon(o: CannonOptions): Promise<CannonFigures> {
  const makePath = typeof o.path === 'function' ? o.path : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    duration: o.durationS,
    timeout: 30,
    headers: o.headers,
    requests: [
      {
        method: o.method,
        path: typeof o.path === 'string' ? o.path : o.path(),
        setupRequest: (req) => {
          const next = { ...req };
          if (o.body) next.body = o.body();
          if (makePath) next.path = makePath();
          return next;
        },
      },
    ],
  });
  const raw = await instance;
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(raw.statusCodeStats ?? {})) statusCodes[code] = s.count;
  return {
    durationS: raw.duration,
    ok2xx: raw['2xx'],
    non2xx: raw.non2xx,
    errors: raw.errors,
    timeouts: raw.timeouts,
    statusCodes,
    reqPerS: raw['2xx'] / raw.duration,
    latencyMs: { p50: raw.latency.p50, p90: raw.latency.p90, p99: raw.latency.p99, max: raw.latency.max, mean: raw.latency.mean },
    loaderCpuCores: (cpu.user + cpu.system) / 1e6 / wallS,
    raw,
  };
}

export interface SequentialFigures {
  count: number;
  statusCodes: Record<string, number>;
  latencyMs: ReturnType<typeof summarize>;
  reqPerS: number;
}

/** Sends GETs one after another over one keep-alive connection and times each with hrtime. */
export async function sequentialGets(o: {
  baseUrl: string;
  path: () => string;
  headers: Record<string, string>;
  count: number;
  onBody?: (status: number, body: string) => void;
}): Promise<SequentialFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(o.baseUrl);
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  const t0 = process.hrtime.bigint();
  try {
    for (let i = 0; i < o.count; i++) {
      const start = process.hrtime.bigint();
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(
          { host: url.hostname, port: url.port, path: o.path(), method: 'GET', headers: o.headers, agent },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
            res.on('error', reject);
          },
        );
        req.setTimeout(30_000, () => req.destroy(new Error('request timed out')));
        req.on('error', reject);
        req.end();
      });
      latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
      statusCodes[status] = (statusCodes[status] ?? 0) + 1;
      o.onBody?.(status, body);
    }
  } finally {
    agent.destroy();
  }
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  return { count: latencies.length, statusCodes, latencyMs: summarize(latencies), reqPerS: latencies.length / wallS };
}

/** A small JSON POST/GET helper with a timeout, for setup steps (not timed). */
export async function httpJson<T = unknown>(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: unknown; timeoutMs?: number } = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method: o.method ?? (o.body === undefined ? 'GET' : 'POST'),
    headers: { ...(o.body === undefined ? {} : { 'content-type': 'application/json' }), ...(o.headers ?? {}) },
    body: o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body),
    signal: AbortSignal.timeout(o.timeoutMs ?? 120_000),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body: body as T };
}
