// Owns the one fold from committed events into hour states and dirty marks, which both stores persist
// as it gives them, in its one key order. Must never do I/O or depend on a store: adapters feed it events
// and write its output inside their own transaction.

import { HOUR_MS, periodInterval, type Period } from './periods.js';
import { addEventInto, stateOfEvent, type RollupState } from './rollup-state.js';

/** What the fold reads of an event; `seq` orders first/last among equal timestamps and dates marks. */
export interface FoldedEvent {
  customerId: string;
  eventType: string;
  ts: number;
  seq: number;
  value: number;
  /** The event's group key under its type's groupBy (dimensions.ts), or null/absent when the type has none. */
  group?: string | null;
  /** The stored form of its `unique` field's value, or null/absent when it has none. */
  unique?: string | null;
}

/** One group of one (customer, type, hour) in a fold: its state, and the first seq that brought it (for the group bound). */
export interface FoldedGroup {
  state: RollupState;
  firstSeq: number;
}

/** The groups a fold holds for one customer, type and hour. */
export interface GroupHour {
  customerId: string;
  eventType: string;
  hour: number;
  groups: Map<string, FoldedGroup>;
}

/** The unique values a fold holds for one customer, type and hour: by group key ('' for a type without groups). */
export interface UniqueHour {
  customerId: string;
  eventType: string;
  hour: number;
  periods: ReadonlySet<Period>;
  byGroup: Map<string, Set<string>>;
}

/** A dirty mark the fold raises: the period of a customer that an event touched, and the newest seq. */
export interface MarkRaise {
  period: Period;
  periodStart: number;
  customerId: string;
  changeSeq: number;
}

/** Code-unit order of two strings: the one key order every writer sorts by. */
export const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * One (customer, type, hour) of a fold: its total state and, for a type with groupBy, its groups. While every
 * event of the hour is in one group (`sole`), that group's state is the total's, so none is kept apart: most
 * hours of a slice hold one event, and a second state, map and entry per event would live until the slice's
 * commit. The groups are kept apart (`groups`) from the first event that differs.
 */
interface HourEntry {
  state: RollupState;
  groups: GroupHour | null;
  /** The one group of every event so far (null: none, or `groups` holds them). */
  sole: string | null;
  /** The first seq of the sole group. */
  soleFirstSeq: number;
}

/**
 * Events folded per (customer, event type, hour) into mergeable states, and the periods they touch.
 * Nested maps keyed by the values themselves: no key strings to build (the largest cost of a fold),
 * and one map per customer and type rather than per customer and hour. An hour's groups live in the
 * hour's own entry, so a grouped event costs no lookups beyond its hour's.
 */
export class HourFold {
  private readonly states = new Map<string, Map<string, Map<number, HourEntry>>>();
  private readonly raised = new Map<string, Map<Period, Map<number, number>>>();
  /** Nested by customer, type and hour index like the states: no key strings to build per event. */
  private readonly uniques = new Map<string, Map<string, Map<number, UniqueHour>>>();
  private events = 0;
  private grouped = 0;

  /** Events folded so far. */
  get size(): number {
    return this.events;
  }

  /** Folds one event in and marks the period of each of `periods` that holds it. */
  add(e: FoldedEvent, periods: readonly Period[]): void {
    this.events++;
    const hourIndex = Math.floor(e.ts / HOUR_MS);
    let types = this.states.get(e.customerId);
    if (!types) this.states.set(e.customerId, (types = new Map()));
    let hours = types.get(e.eventType);
    if (!hours) types.set(e.eventType, (hours = new Map()));
    const group = e.group ?? null;
    let entry = hours.get(hourIndex);
    if (!entry) {
      hours.set(hourIndex, (entry = { state: stateOfEvent(e.ts, e.seq, e.value), groups: null, sole: group, soleFirstSeq: e.seq }));
      if (group !== null) this.grouped++;
    } else {
      if (entry.sole !== null && entry.sole !== group) this.keepGroupsApart(entry, e.customerId, e.eventType, hourIndex);
      if (group === null) {
        // no group: the total only
      } else if (entry.sole === group) {
        if (e.seq < entry.soleFirstSeq) entry.soleFirstSeq = e.seq;
      } else this.addGroup(entry, e, hourIndex, group);
      addEventInto(entry.state, e.ts, e.seq, e.value);
    }
    if ((e.unique ?? null) !== null) this.addUnique(e, hourIndex, periods, group);

    let mine = this.raised.get(e.customerId);
    if (!mine) this.raised.set(e.customerId, (mine = new Map()));
    const hour = hourIndex * HOUR_MS;
    for (const p of periods) {
      let starts = mine.get(p);
      if (!starts) mine.set(p, (starts = new Map()));
      const start = p === 'hourly' ? hour : periodStartOf(p, hour);
      const seq = starts.get(start);
      if (seq === undefined || seq < e.seq) starts.set(start, e.seq);
    }
  }

  /** The hour's sole group gets a state of its own (a copy of the total's, before the event that differs). */
  private keepGroupsApart(entry: HourEntry, customerId: string, eventType: string, hourIndex: number): void {
    const groups = new Map<string, FoldedGroup>([[entry.sole!, { state: { ...entry.state }, firstSeq: entry.soleFirstSeq }]]);
    entry.groups = { customerId, eventType, hour: hourIndex * HOUR_MS, groups };
    entry.sole = null;
  }

  private addGroup(entry: HourEntry, e: FoldedEvent, hourIndex: number, group: string): void {
    let gh = entry.groups;
    if (!gh) {
      entry.groups = gh = { customerId: e.customerId, eventType: e.eventType, hour: hourIndex * HOUR_MS, groups: new Map() };
      this.grouped++;
    }
    const g = gh.groups.get(group);
    if (g) {
      addEventInto(g.state, e.ts, e.seq, e.value);
      if (e.seq < g.firstSeq) g.firstSeq = e.seq;
    } else gh.groups.set(group, { state: stateOfEvent(e.ts, e.seq, e.value), firstSeq: e.seq });
  }

  private addUnique(e: FoldedEvent, hourIndex: number, periods: readonly Period[], group: string | null): void {
    const hours = nested(this.uniques, e.customerId, e.eventType);
    let uh = hours.get(hourIndex);
    if (!uh) {
      const hour = hourIndex * HOUR_MS;
      hours.set(hourIndex, (uh = { customerId: e.customerId, eventType: e.eventType, hour, periods: new Set(), byGroup: new Map() }));
    }
    for (const p of periods) (uh.periods as Set<Period>).add(p);
    const g = group ?? '';
    let set = uh.byGroup.get(g);
    if (!set) uh.byGroup.set(g, (set = new Set()));
    set.add(e.unique!);
  }

  /** Whether the fold holds groups of this (customer, type, hour start). */
  hasGroups(customerId: string, eventType: string, hour: number): boolean {
    const entry = this.states
      .get(customerId)
      ?.get(eventType)
      ?.get(hour / HOUR_MS);
    return entry !== undefined && (entry.groups !== null || entry.sole !== null);
  }

  /** The groups of each (customer, type, hour), in the same key order as forEachHour. */
  groupHours(): GroupHour[] {
    const out: GroupHour[] = [];
    if (this.grouped === 0) return out;
    this.forEachHour((_c, _t, _h, _s, groups) => {
      if (groups) out.push(groups);
    });
    return out;
  }

  /** The unique values of each (customer, type, hour), in the same key order. */
  uniqueHours(): UniqueHour[] {
    return flatten(this.uniques).sort(byHourKey);
  }

  /**
   * Each hour state in (customer, event type, hour) order, with the hour's groups when its type has
   * groupBy. Every writer upserts in this one order, so concurrent writers lock rows alike and cannot
   * deadlock, and a B-tree on customer first is walked once from left to right. States are read-only
   * to the callback: an hour whose events are all in one group shares its state with that group.
   */
  forEachHour(fn: (customerId: string, eventType: string, hour: number, state: RollupState, groups: GroupHour | null) => void): void {
    this.forEachHourOrSole((c, t, hour, state, groups, sole, soleFirstSeq) =>
      fn(c, t, hour, state, groups ?? (sole === null ? null : soleGroupHour(c, t, hour, state, sole, soleFirstSeq))),
    );
  }

  /**
   * forEachHour without building the groups of an hour whose events are all in one group (most hours of a
   * slice): `sole` names that group, whose state is the hour's own, `soleFirstSeq` is the first seq that
   * brought it, and `groups` is null.
   */
  forEachHourOrSole(
    fn: (
      customerId: string,
      eventType: string,
      hour: number,
      state: RollupState,
      groups: GroupHour | null,
      sole: string | null,
      soleFirstSeq: number,
    ) => void,
  ): void {
    for (const c of [...this.states.keys()].sort(compareText)) {
      const types = this.states.get(c)!;
      for (const t of [...types.keys()].sort(compareText)) {
        const hours = types.get(t)!;
        for (const h of [...hours.keys()].sort((a, b) => a - b)) {
          const entry = hours.get(h)!;
          fn(c, t, h * HOUR_MS, entry.state, entry.groups, entry.groups ? null : entry.sole, entry.soleFirstSeq);
        }
      }
    }
  }

  /** The period instances the marks fall in, each once, in (period, period start) order. */
  markInstances(): Array<{ period: Period; periodStart: number }> {
    const seen = new Map<Period, Set<number>>();
    for (const mine of this.raised.values()) {
      for (const [period, starts] of mine) {
        let s = seen.get(period);
        if (!s) seen.set(period, (s = new Set()));
        for (const start of starts.keys()) s.add(start);
      }
    }
    const out: Array<{ period: Period; periodStart: number }> = [];
    for (const period of [...seen.keys()].sort(compareText))
      for (const periodStart of [...seen.get(period)!].sort((a, b) => a - b)) out.push({ period, periodStart });
    return out;
  }

  /** The marks raised, in (period, period start, customer) order; `keep` drops the ones a store knows it has. */
  marks(keep: (period: Period, customerId: string, periodStart: number) => boolean = () => true): MarkRaise[] {
    const out: MarkRaise[] = [];
    for (const [customerId, mine] of this.raised) {
      for (const [period, starts] of mine) {
        for (const [periodStart, changeSeq] of starts)
          if (keep(period, customerId, periodStart)) out.push({ period, periodStart, customerId, changeSeq });
      }
    }
    return out.sort((a, b) => compareText(a.period, b.period) || a.periodStart - b.periodStart || compareText(a.customerId, b.customerId));
  }
}

/** The groups of an hour whose events are all in one group: that group, sharing the hour's state. */
export function soleGroupHour(
  customerId: string,
  eventType: string,
  hour: number,
  state: RollupState,
  sole: string,
  firstSeq: number,
): GroupHour {
  return { customerId, eventType, hour, groups: new Map([[sole, { state, firstSeq }]]) };
}

function nested<V>(m: Map<string, Map<string, Map<number, V>>>, c: string, t: string): Map<number, V> {
  let types = m.get(c);
  if (!types) m.set(c, (types = new Map()));
  let hours = types.get(t);
  if (!hours) types.set(t, (hours = new Map()));
  return hours;
}

function flatten<V>(m: Map<string, Map<string, Map<number, V>>>): V[] {
  const out: V[] = [];
  for (const types of m.values()) for (const hours of types.values()) for (const v of hours.values()) out.push(v);
  return out;
}

/** The key of one (customer, type, hour start) in maps of hours. */
export const hourKey = (customerId: string, eventType: string, hour: number): string => `${customerId}\u0000${eventType}\u0000${hour}`;

const byHourKey = (a: { customerId: string; eventType: string; hour: number }, b: typeof a): number =>
  compareText(a.customerId, b.customerId) || compareText(a.eventType, b.eventType) || a.hour - b.hour;

/** Hours whose period starts are memoised, for memory stats. */
export function periodStartMemoSize(): number {
  let n = 0;
  for (const m of startCache.values()) n += m.size;
  return n;
}

/** The start of the period holding an hour, memoised per period: a fold asks for the same few hours many times. */
const startCache = new Map<Period, Map<number, number>>();
export function periodStartOf(period: Period, hour: number): number {
  let starts = startCache.get(period);
  if (!starts) startCache.set(period, (starts = new Map()));
  let s = starts.get(hour);
  if (s === undefined) {
    // Events are at most maxEventAge old (840 hours by default); replays of older data are bounded too.
    if (starts.size > 20_000) starts.clear();
    s = periodInterval(period, hour).start;
    starts.set(hour, s);
  }
  return s;
}
