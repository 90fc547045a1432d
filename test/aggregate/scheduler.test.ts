import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Scheduler } from '../../src/aggregate/scheduler.js';
import { marksPerChunk } from '../../src/aggregate/chunking.js';

const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Scheduler', () => {
  it('runs once at start to catch up, then on the cron schedule, and nothing after stop()', async () => {
    let runs = 0;
    const s = new Scheduler({ schedule: '* * * * * *', logger: silent, run: async () => void runs++ });
    s.start();
    assert.equal(runs, 1, 'the catch-up run starts synchronously with start()');
    await sleep(2_300);
    await s.stop();
    assert.ok(runs >= 2 && runs <= 4, `expected the per-second schedule to fire 1–3 times, got ${runs - 1}`);
    const after = runs;
    await sleep(1_200);
    assert.equal(runs, after, 'no run after stop()');
    assert.equal(s.nextRun(), null);
  });

  it('does not start a second run while one is in flight; overlapping ticks join it', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = new Scheduler({
      schedule: '0 0 1 1 *',
      logger: silent,
      catchUpOnStart: false,
      run: async () => {
        runs++;
        active++;
        maxActive = Math.max(maxActive, active);
        await gate;
        active--;
      },
    });
    const a = s.tick();
    const b = s.tick();
    assert.equal(a, b, 'the second tick returns the in-flight run');
    release();
    await Promise.all([a, b]);
    assert.equal(runs, 1);
    assert.equal(maxActive, 1);
    await s.tick();
    assert.equal(runs, 2, 'a tick after completion starts a new run');
    await s.stop();
  });

  it('a failing run is logged and does not stop later ticks', async () => {
    let calls = 0;
    const errors: unknown[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line)) });
    const s = new Scheduler({
      schedule: '0 0 1 1 *',
      logger,
      catchUpOnStart: false,
      run: async () => {
        calls++;
        if (calls === 1) throw new Error('store down');
      },
    });
    await s.tick();
    await s.tick();
    assert.equal(calls, 2);
    assert.equal(errors.length, 1);
    assert.match(JSON.stringify(errors[0]), /store down/);
    await s.stop();
  });
});

describe('marksPerChunk', () => {
  it('bounds the rollup hours one transaction reads, with at least one mark per chunk', () => {
    assert.equal(marksPerChunk('hourly'), 500);
    assert.equal(marksPerChunk('daily'), 500);
    assert.equal(marksPerChunk('weekly'), Math.floor(20_000 / 168));
    assert.equal(marksPerChunk('monthly'), Math.floor(20_000 / 744));
    assert.equal(marksPerChunk('yearly'), Math.floor(20_000 / 8_784));
    assert.ok(marksPerChunk('yearly') >= 1);
  });
});
