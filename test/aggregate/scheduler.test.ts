// The finalization scheduler's timing (catch-up, cron times, no overlap, stop) on a manual clock, and chunk sizes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { MAX_WAIT_MS, Scheduler, type SchedulerOptions } from '../../src/aggregate/scheduler.js';
import { marksPerChunk } from '../../src/aggregate/chunking.js';
import { ManualClock } from '../../src/domain/clock.js';
import { ManualTimers, yieldToEventLoop } from '../helpers/manual-timers.js';

const silent = pino({ level: 'silent' });

type ManualOptions = Omit<SchedulerOptions, 'logger' | 'clock' | 'timers'> & Partial<Pick<SchedulerOptions, 'logger'>>;

/** A scheduler on a manual clock at `at`, whose timers fire only as the test advances them. */
function manualScheduler(at: string, opts: ManualOptions) {
  const clock = new ManualClock(Date.parse(at));
  const timers = new ManualTimers(clock);
  const scheduler = new Scheduler({ logger: silent, ...opts, clock, timers });
  return { clock, timers, scheduler };
}

/** A run that counts its calls and concurrency and, while `hold` is set, waits until released. */
function gatedRun() {
  const state = { runs: 0, active: 0, maxActive: 0, finished: 0 };
  let release: () => void = () => undefined;
  let gate: Promise<void> | null = null;
  return {
    state,
    hold() {
      gate = new Promise<void>((r) => (release = r));
    },
    release() {
      gate = null;
      release();
    },
    run: async () => {
      state.runs++;
      state.active++;
      state.maxActive = Math.max(state.maxActive, state.active);
      await gate;
      state.active--;
      state.finished++;
    },
  };
}

describe('Scheduler', () => {
  it('runs once at start to catch up, then at each cron time, and nothing after stop()', async () => {
    let runs = 0;
    const { timers, scheduler: s } = manualScheduler('2026-03-01T00:00:00.250Z', {
      schedule: '* * * * * *',
      run: async () => void runs++,
    });
    s.start();
    assert.equal(runs, 1, 'the catch-up run starts synchronously with start()');
    assert.equal(s.nextRun()?.toISOString(), '2026-03-01T00:00:01.000Z');
    await timers.advance(749);
    assert.equal(runs, 1, 'nothing runs before the first cron time');
    await timers.advance(1);
    assert.equal(runs, 2, 'the run starts exactly at the cron time');
    await timers.advance(2_000);
    assert.equal(runs, 4, 'one run per second of the per-second schedule');
    assert.equal(s.nextRun()?.toISOString(), '2026-03-01T00:00:04.000Z');
    await s.stop();
    assert.equal(timers.size, 0, 'stop() leaves no timer armed');
    assert.equal(s.nextRun(), null);
    await timers.advance(10_000);
    assert.equal(runs, 4, 'no run after stop()');
  });

  it('start() twice arms one timer; started again after stop(), it runs on schedule again', async () => {
    let runs = 0;
    const { timers, scheduler: s } = manualScheduler('2026-03-01T00:00:00.000Z', {
      schedule: '* * * * * *',
      catchUpOnStart: false,
      run: async () => void runs++,
    });
    s.start();
    s.start();
    assert.equal(timers.size, 1);
    assert.equal(runs, 0, 'catchUpOnStart: false skips the catch-up run');
    await timers.advance(1_000);
    assert.equal(runs, 1);
    await s.stop();
    s.start();
    await timers.advance(1_000);
    assert.equal(runs, 2);
    await s.stop();
  });

  it('does not start a second run while one is in flight; cron times that pass meanwhile join it', async () => {
    const g = gatedRun();
    const { timers, scheduler: s } = manualScheduler('2026-03-01T00:00:00.000Z', {
      schedule: '* * * * * *',
      catchUpOnStart: false,
      run: g.run,
    });
    s.start();
    g.hold();
    await timers.advance(1_000);
    assert.equal(g.state.runs, 1, 'the first cron time starts a run');
    await timers.advance(3_000);
    assert.equal(g.state.runs, 1, 'three more cron times pass while it runs, and start nothing');
    assert.equal(g.state.maxActive, 1);
    g.release();
    await yieldToEventLoop();
    assert.equal(g.state.finished, 1);
    await timers.advance(1_000);
    assert.equal(g.state.runs, 2, 'the next cron time after it finished starts a new run');
    assert.equal(g.state.maxActive, 1);
    await s.stop();
  });

  it('a direct tick joins the run in flight', async () => {
    const g = gatedRun();
    const { scheduler: s } = manualScheduler('2026-03-01T00:00:00.000Z', {
      schedule: '0 0 1 1 *',
      catchUpOnStart: false,
      run: g.run,
    });
    g.hold();
    const a = s.tick();
    const b = s.tick();
    assert.equal(a, b, 'the second tick returns the in-flight run');
    g.release();
    await Promise.all([a, b]);
    assert.equal(g.state.runs, 1);
    assert.equal(g.state.maxActive, 1);
    await s.tick();
    assert.equal(g.state.runs, 2, 'a tick after completion starts a new run');
    await s.stop();
  });

  it('stop() waits for the run in flight, and starts no other', async () => {
    const g = gatedRun();
    g.hold();
    const { timers, scheduler: s } = manualScheduler('2026-03-01T00:00:00.000Z', { schedule: '* * * * * *', run: g.run });
    s.start();
    assert.equal(g.state.runs, 1);
    let stopped = false;
    const stopping = s.stop().then(() => (stopped = true));
    await timers.advance(5_000);
    assert.equal(stopped, false, 'stop() has not resolved while the run is held');
    g.release();
    await stopping;
    assert.equal(g.state.finished, 1, 'stop() resolved only after the run finished');
    assert.equal(g.state.runs, 1);
  });

  it('cron times missed while the host slept are caught up by one run; the next time counts from the wake', async () => {
    let runs = 0;
    const {
      clock,
      timers,
      scheduler: s,
    } = manualScheduler('2026-03-01T00:10:00.000Z', {
      schedule: '0 * * * *',
      catchUpOnStart: false,
      run: async () => void runs++,
    });
    s.start();
    clock.advance(5 * 3_600_000); // suspended: the clock moves past five hourly times, no timer fires
    await timers.advance(0);
    assert.equal(runs, 1, 'the overdue timer fires once and one run catches up');
    assert.equal(s.nextRun()?.toISOString(), '2026-03-01T06:00:00.000Z');
    await s.stop();
  });

  it('waits in steps of at most 30 s (a slept host or a changed clock is noticed within one), and runs on time', async () => {
    let runs = 0;
    const { timers, scheduler: s } = manualScheduler('2026-03-01T00:10:00.000Z', {
      schedule: '0 * * * *',
      catchUpOnStart: false,
      run: async () => void runs++,
    });
    s.start();
    assert.deepEqual(timers.delays(), [MAX_WAIT_MS]);
    await timers.advance(50 * 60_000 - 1);
    assert.equal(runs, 0, 'nothing runs before 01:00');
    assert.deepEqual(timers.delays(), [1], 'the last wait ends exactly at the cron time');
    await timers.advance(1);
    assert.equal(runs, 1, 'the run starts at 01:00:00.000 exactly, after many capped waits');
    assert.deepEqual(timers.delays(), [MAX_WAIT_MS]);
    await timers.advance(3_600_000);
    assert.equal(runs, 2, 'and at 02:00');
    await s.stop();
  });

  it('a failing run is logged and does not stop later ticks', async () => {
    let calls = 0;
    const errors: unknown[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(JSON.parse(line)) });
    const { timers, scheduler: s } = manualScheduler('2026-03-01T00:00:00.000Z', {
      schedule: '* * * * * *',
      logger,
      catchUpOnStart: false,
      run: async () => {
        calls++;
        if (calls === 1) throw new Error('store down');
      },
    });
    s.start();
    await timers.advance(2_000);
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
