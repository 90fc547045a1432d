// Measures what the SQLite ingest design rests on: how fast better-sqlite3 appends B1-shaped events
// to a rowid table, and what each random-keyed B-tree costs when it is updated inside the ingest commit
// versus in large sorted slices afterwards. Database time only (no HTTP, no JSON).
// Run: node --import tsx bench/sqlite-write-costs.ts [events=1000000]
// Must never share a file with a running meterhook: it creates and deletes its own temp files.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { eventKeyHash } from '../src/store/sqlite/event-hash.js';

interface Ev {
  c: string;
  t: string;
  id: string;
  ts: number;
  v: number;
  m: string;
  seq?: number;
  h?: number;
}

const TOTAL = Number(process.argv[2] ?? 1_000_000);
const GROUP = 8_000; // 8 concurrent 1,000-event batches share one commit, as in B1
const DAY = Date.UTC(2026, 10, 24);
const TYPES = ['api.calls', 'storage.bytes', 'response.time.ms'];

function events(n: number): Ev[] {
  return Array.from({ length: n }, (_, i) => ({
    c: `cus_${String(Math.floor(Math.random() * 10_000)).padStart(4, '0')}`,
    t: TYPES[i % 3]!,
    id: randomUUID(),
    ts: DAY + Math.floor(Math.random() * 86_400_000),
    v: Math.random() * 100,
    m: '{"region":"eu-west-1","endpoint":"/v1/orders"}',
  }));
}

function open(): { db: Database.Database; done(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterhook-writecost-'));
  const db = new Database(path.join(dir, 'x.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -65536');
  db.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY, customer_id TEXT NOT NULL, event_type TEXT NOT NULL,
    event_id TEXT, ts INTEGER NOT NULL, received_at INTEGER NOT NULL, value REAL NOT NULL, metadata TEXT)`);
  db.exec(
    'CREATE TABLE rollups (customer_id TEXT, hour INTEGER, event_type TEXT, count INTEGER, sum REAL, ' +
      'PRIMARY KEY (customer_id, hour, event_type)) WITHOUT ROWID',
  );
  db.exec('CREATE TABLE event_ids (h INTEGER, seq INTEGER, PRIMARY KEY (h, seq)) WITHOUT ROWID');
  db.exec('CREATE TABLE by_customer (customer_id TEXT, ts INTEGER, seq INTEGER, PRIMARY KEY (customer_id, ts, seq)) WITHOUT ROWID');
  return {
    db,
    done: () => {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Events/s of database time for one variant: `inCommit` indexes live in the ingest commit, the rest in slices of `slice`. */
function run(label: string, o: { inCommit: string[]; sliced: string[]; slice: number }): void {
  const { db, done } = open();
  if (o.inCommit.includes('dedupe')) db.exec('CREATE UNIQUE INDEX dedupe ON events (customer_id, event_type, event_id)');
  if (o.inCommit.includes('customer_ts')) db.exec('CREATE INDEX customer_ts ON events (customer_id, ts)');
  const insert = db.prepare(
    'INSERT INTO events (customer_id, event_type, event_id, ts, received_at, value, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const upsert = db.prepare(
    'INSERT INTO rollups VALUES (?, ?, ?, 1, ?) ON CONFLICT DO UPDATE SET count = count + 1, sum = sum + excluded.sum',
  );
  const insertId = db.prepare('INSERT INTO event_ids VALUES (?, ?)');
  const insertByCustomer = db.prepare('INSERT INTO by_customer VALUES (?, ?, ?)');
  const rollup = (list: Ev[]) => {
    const sorted = [...list].sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : a.ts - b.ts));
    for (const e of sorted) upsert.run(e.c, e.ts - (e.ts % 3_600_000), e.t, e.v);
  };
  const append = db.transaction((list: Ev[]) => {
    const now = Date.now();
    for (const e of list) e.seq = Number(insert.run(e.c, e.t, e.id, e.ts, now, e.v, e.m).lastInsertRowid);
    if (o.inCommit.includes('rollup')) rollup(list);
  });
  const applySlice = db.transaction((list: Ev[]) => {
    if (o.sliced.includes('rollup')) rollup(list);
    if (o.sliced.includes('ids')) {
      for (const e of list) e.h = eventKeyHash(e.c, e.t, e.id);
      for (const e of [...list].sort((a, b) => a.h! - b.h!)) insertId.run(e.h, e.seq);
    }
    if (o.sliced.includes('customer_ts')) {
      for (const e of [...list].sort((a, b) => (a.c < b.c ? -1 : a.c > b.c ? 1 : a.ts - b.ts))) insertByCustomer.run(e.c, e.ts, e.seq);
    }
  });
  let ms = 0;
  let pending: Ev[] = [];
  for (let n = 0; n < TOTAL; n += GROUP) {
    const list = events(GROUP);
    const t0 = performance.now();
    append.immediate(list);
    pending.push(...list);
    if (o.sliced.length > 0 && pending.length >= o.slice) {
      applySlice.immediate(pending);
      pending = [];
    }
    ms += performance.now() - t0;
  }
  done();
  console.log(`| ${label} | ${Math.round(TOTAL / (ms / 1000)).toLocaleString('en-US')} |`);
}

console.log(`${TOTAL.toLocaleString('en-US')} B1-shaped events, commits of ${GROUP.toLocaleString('en-US')}; events/s of database time\n`);
console.log('| variant | events/s |\n|---|---|');
run('append only', { inCommit: [], sliced: [], slice: 0 });
run('+ unique (customer, type, id) index in the commit', { inCommit: ['dedupe'], sliced: [], slice: 0 });
run('+ (customer, ts) index in the commit', { inCommit: ['customer_ts'], sliced: [], slice: 0 });
run('+ rollup upsert in the commit', { inCommit: ['rollup'], sliced: [], slice: 0 });
for (const slice of [10_000, 50_000, 100_000]) {
  run(`rollup + id hash + (customer, ts), sorted slices of ${slice.toLocaleString('en-US')}`, {
    inCommit: [],
    sliced: ['rollup', 'ids', 'customer_ts'],
    slice,
  });
}
run('rollup + id hash, sorted slices of 100,000', { inCommit: [], sliced: ['rollup', 'ids'], slice: 100_000 });
