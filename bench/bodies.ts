// Owns the request bodies of B1 and B2: realistic events (several types, many customers, a two-key
// metadata object, timestamps over the current UTC day) with ids unique per request and per run.
// Bodies come from a pool of templates with fixed-width slots (id counter, customer, timestamp) that
// are overwritten per request, so the load generator spends microseconds per body, not the server's CPU.
// Must never repeat an id: the run nonce plus a per-factory counter plus the event's index make each one
// (and, for high-cardinality bodies, each customer id).

import { randomBytes } from 'node:crypto';

/** xorshift32: fast, seedable, good enough to spread customers and timestamps. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

export function runNonce(): string {
  return `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

export const REGIONS = ['eu-west-1', 'us-east-1', 'us-west-2', 'ap-southeast-1', 'eu-central-1'];
export const ENDPOINTS = [
  '/v1/orders',
  '/v1/invoices',
  '/v1/customers',
  '/v1/search',
  '/v1/reports',
  '/v1/files',
  '/v1/payments',
  '/v1/refunds',
  '/v1/exports',
  '/v1/webhooks',
];

/** A realistic value for an event type, by the operator it is aggregated with. */
export function valueFor(eventType: string, r: () => number): number {
  switch (eventType) {
    case 'api.calls':
      return 1 + Math.floor(r() * 5);
    case 'storage.bytes':
      return Math.floor(r() * 5_000_000_000);
    case 'response.time.ms':
      return Math.round((5 + r() * 400) * 100) / 100;
    default:
      return Math.round(r() * 10_000) / 100;
  }
}

export function metadataFor(r: () => number): { region: string; endpoint: string } {
  return { region: REGIONS[Math.floor(r() * REGIONS.length)]!, endpoint: ENDPOINTS[Math.floor(r() * ENDPOINTS.length)]! };
}

export const customerId = (n: number, width: number): string => `cus_${String(n).padStart(width, '0')}`;

const COUNTER_WIDTH = 10;
const TS_WIDTH = 24; // 2026-11-24T13:45:12.345Z

interface Template {
  buf: Buffer;
  counterAt: number[];
  customerAt: number[];
  tsAt: number[];
}

export interface BodyFactoryOptions {
  /** Events per body: 1000 for B1; 1 (a single object, not an array) for B2. */
  eventsPerBody: number;
  single: boolean;
  eventTypes: string[];
  customers: number;
  /** Every event gets a customer id never used before (the request counter and the event's index), instead of one from the pool. */
  uniqueCustomers?: boolean;
  /** Timestamps are drawn from [fromMs, toMs]; omitted for single events (the server stamps them). */
  fromMs?: number;
  toMs?: number;
  idPrefix: string;
  templates?: number;
  seed?: number;
}

/**
 * Makes a fresh body per call. Each of a pool of templates carries fixed values, types and metadata
 * per event; each call copies one template and writes a new request counter (so every id is new), a
 * random customer and a random timestamp into every event's slots.
 */
export class BodyFactory {
  private readonly templates: Template[] = [];
  /** Every customer id, back to back, each `customerWidth` bytes. */
  private readonly customerPool: Uint8Array;
  private readonly customerWidth: number;
  private readonly customerCount: number;
  /** A pool of ISO timestamps, back to back, each TS_WIDTH bytes. */
  private readonly tsPool: Uint8Array;
  private readonly tsCount: number;
  private readonly r: () => number;
  private counter = 0;
  readonly approxBytes: number;

  constructor(private readonly o: BodyFactoryOptions) {
    this.r = rng(o.seed ?? 0x5eed);
    const width = String(Math.max(1, o.customers - 1)).length;
    this.customerWidth = width + 4;
    this.customerCount = o.customers;
    this.customerPool = new Uint8Array(Buffer.from(Array.from({ length: o.customers }, (_, i) => customerId(i, width)).join(''), 'latin1'));
    const from = o.fromMs ?? 0;
    const to = o.toMs ?? 0;
    this.tsCount = o.fromMs === undefined ? 0 : 65_536;
    const stamps = Array.from({ length: this.tsCount }, () => new Date(from + Math.floor(this.r() * (to - from + 1))).toISOString());
    if (stamps.some((x) => x.length !== TS_WIDTH)) throw new Error('timestamps must be 24-character ISO strings');
    this.tsPool = new Uint8Array(Buffer.from(stamps.join(''), 'latin1'));
    const count = o.templates ?? 16;
    for (let t = 0; t < count; t++) this.templates.push(this.template(width));
    this.approxBytes = this.templates[0]!.buf.length;
  }

  private template(customerWidth: number): Template {
    const parts: string[] = [];
    const counterAt: number[] = [];
    const customerAt: number[] = [];
    const tsAt: number[] = [];
    let len = 0;
    const push = (s: string) => {
      parts.push(s);
      len += Buffer.byteLength(s, 'latin1');
    };
    const slot = (list: number[], width: number, fill: string) => {
      list.push(len);
      push(fill.repeat(width));
    };
    if (!this.o.single) push('[');
    const idxWidth = String(this.o.eventsPerBody - 1).length;
    for (let i = 0; i < this.o.eventsPerBody; i++) {
      if (i > 0) push(',');
      const type = this.o.eventTypes[Math.floor(this.r() * this.o.eventTypes.length)]!;
      const md = metadataFor(this.r);
      push('{');
      if (!this.o.single) push(`"eventType":${JSON.stringify(type)},`);
      push('"customerId":"');
      if (this.o.uniqueCustomers) {
        push('new-');
        slot(counterAt, COUNTER_WIDTH, '0');
        push(`-${String(i).padStart(idxWidth, '0')}`);
      } else slot(customerAt, customerWidth + 4, 'c');
      push(`","id":${JSON.stringify(`${this.o.idPrefix}-`).slice(0, -1)}`);
      slot(counterAt, COUNTER_WIDTH, '0');
      push(this.o.single ? '"' : `-${String(i).padStart(idxWidth, '0')}"`);
      push(`,"value":${valueFor(type, this.r)}`);
      if (this.tsCount > 0) {
        push(',"timestamp":"');
        slot(tsAt, TS_WIDTH, 't');
        push('"');
      }
      push(`,"metadata":${JSON.stringify(md)}}`);
    }
    if (!this.o.single) push(']');
    return { buf: Buffer.from(parts.join(''), 'latin1'), counterAt, customerAt, tsAt };
  }

  /** How many bodies (requests) this factory has made. */
  get made(): number {
    return this.counter;
  }

  next(): Buffer {
    const t = this.templates[this.counter % this.templates.length]!;
    const buf = Buffer.allocUnsafe(t.buf.length);
    t.buf.copy(buf);
    // Plain Uint8Array byte loops: thousands of tiny Buffer.copy/write calls per body cost far more.
    const u = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    const c = new Uint8Array(Buffer.from(String(this.counter++).padStart(COUNTER_WIDTH, '0'), 'latin1'));
    const r = this.r;
    for (const at of t.counterAt) for (let k = 0; k < COUNTER_WIDTH; k++) u[at + k] = c[k]!;
    const cp = this.customerPool;
    const cw = this.customerWidth;
    for (const at of t.customerAt) {
      const from = Math.floor(r() * this.customerCount) * cw;
      for (let k = 0; k < cw; k++) u[at + k] = cp[from + k]!;
    }
    const tp = this.tsPool;
    for (const at of t.tsAt) {
      const from = Math.floor(r() * this.tsCount) * TS_WIDTH;
      for (let k = 0; k < TS_WIDTH; k++) u[at + k] = tp[from + k]!;
    }
    return buf;
  }
}
