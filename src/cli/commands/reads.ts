// Owns the read and operations commands: trigger, usage, aggregations list, deliveries list|show|retry.

import type { Command } from 'commander';
import { DELIVERY_STATUSES, type Aggregation, type Delivery, type DeliveryStatus, type GroupTotal } from '../../client/index.js';
import {
  type ClientFlags,
  EXIT,
  UsageError,
  clientCommand,
  instantFlag,
  intFlag,
  makeClient,
  out,
  periodFlag,
  printJson,
  run,
  table,
} from './shared.js';

const num = (v: number | undefined) => (v === undefined ? '-' : String(v));

/** Exact decimal text of each total, falling back to the number for servers that do not send it. */
const exact = (totals: { events: Record<string, number>; eventsDecimal?: Record<string, string> }, k: string): string =>
  totals.eventsDecimal?.[k] ?? String(totals.events[k]);

function eventsText(a: Pick<Aggregation, 'events' | 'eventsDecimal' | 'eventCounts'>): string {
  const keys = Object.keys(a.events);
  if (keys.length === 0) return '(no events)';
  return keys.map((k) => `${k}=${exact(a, k)} (${a.eventCounts[k] ?? 0})`).join(', ');
}

/** The overflow group's name in human output: the groups first seen after their hour held maxGroupsPerHour groups. */
const OVERFLOW_LABEL = 'other (over the group limit)';

/** `\uXXXX` per UTF-16 unit of one code point (two for one beyond the BMP): JSON's escapes. */
const utf16Escapes = (c: string): string =>
  Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');

/**
 * A dimension value as human output prints it: "(none)" for null; the value as it is when plain; else quoted as JSON
 * with every control or invisible character escaped, so a value can neither pass for a marker nor move the terminal.
 */
export function dimensionText(v: string | null | undefined): string {
  if (v === null || v === undefined) return '(none)';
  if (/^[^\p{C}\s"(](?:[^\p{C}]*[^\p{C}\s])?$/u.test(v)) return v;
  return JSON.stringify(v).replace(/\p{C}/gu, utf16Escapes);
}

/** One meter's groups as an indented table: its dimensions, the exact value and the events; the overflow group last. */
export function groupsText(eventType: string, groups: GroupTotal[]): string {
  const keys = [...new Set(groups.flatMap((g) => Object.keys(g.dimensions)))];
  const cols = keys.length > 0 ? keys : ['group'];
  const rows = groups.map((g) => [
    ...(g.overflow ? [OVERFLOW_LABEL, ...cols.slice(1).map(() => '')] : cols.map((k) => dimensionText(g.dimensions[k]))),
    g.valueDecimal ?? String(g.value),
    String(g.count),
  ]);
  return [`${eventType} by ${cols.join(', ')}`, table([...cols, 'value', 'events'], rows).replace(/^/gm, '  ')].join('\n');
}

export function registerTrigger(program: Command): void {
  clientCommand(
    program
      .command('trigger')
      .summary('Finalize due periods and refresh open ones now')
      .description(
        'Aggregate now (POST /aggregations/trigger): finalize every period that is due, then compute provisional ' +
          '(final: false) documents for open periods. The server answers only when this is done.',
      ),
  ).action(
    run(async (o: ClientFlags) => {
      const r = await makeClient(o).trigger();
      if (o.json) printJson(r);
      else if (!r.customersFound) out('nothing to aggregate');
      else {
        out(`finalized ${r.finalized} period(s), ${r.provisional} provisional document(s) for ${r.customersFound} customer(s)`);
        out(
          `(${num(r.jobsCreated)} created, ${num(r.jobsUpdated)} updated, ${num(r.eventsScanned)} events scanned, ` +
            `${num(r.periodsConfigured)} periods configured)`,
        );
      }
    }),
  );
}

interface UsageFlags extends ClientFlags {
  period?: string;
  at?: string;
}

export function registerUsage(program: Command): void {
  clientCommand(
    program
      .command('usage <customerId>')
      .summary("Show a customer's real-time usage")
      .description(
        'Real-time usage of one customer for the period containing --at (GET /customers/:customerId/usage), ' +
          'computed from hourly rollups. An unknown customer has no usage; that is not an error.',
      )
      .option('-p, --period <period>', 'hourly, daily, weekly, monthly or yearly', 'monthly')
      .option('--at <time>', 'an instant inside the wanted period: ISO-8601 with offset, YYYY-MM-DD or epoch ms (default: now)'),
  ).action(
    run(async (customerId: string, o: UsageFlags) => {
      const period = periodFlag(o.period);
      const at = instantFlag(o.at);
      const u = await makeClient(o).usage(customerId, { ...(period ? { period } : {}), ...(at !== undefined ? { at } : {}) });
      if (o.json) return printJson(u);
      out(`${u.customerId}  ${u.period} ${u.periodKey}  ${u.periodStart} → ${u.periodEnd}  ${u.final ? 'final' : 'open'}`);
      const keys = Object.keys(u.events);
      if (keys.length === 0) out('  (no events)');
      else
        out(
          table(
            ['event type', 'value', 'events'],
            keys.map((k) => [k, exact(u, k), String(u.eventCounts[k] ?? 0)]),
          ).replace(/^/gm, '  '),
        );
      // Below the totals, each meter with groupBy that has data: its groups.
      for (const k of keys.filter((t) => u.groups?.[t]?.length)) out(`\n${groupsText(k, u.groups![k]!)}`.replace(/^(?=.)/gm, '  '));
    }),
  );
}

interface AggFlags extends ClientFlags {
  customer?: string;
  period?: string;
  periodKey?: string;
  final?: boolean;
  from?: string;
  to?: string;
  limit: string;
  cursor?: string;
}

function aggregationRows(items: Aggregation[]): string {
  return table(
    ['period', 'key', 'customer', 'state', 'events (count)'],
    items.map((a) => [a.period, a.periodKey, a.customerId, a.final ? `final r${a.revision}` : 'provisional', eventsText(a)]),
  );
}

export function registerAggregations(program: Command): void {
  const aggregations = program.command('aggregations').description('Aggregation documents (one per customer and period)');
  clientCommand(
    aggregations
      .command('list')
      .summary('List aggregations, newest period first')
      .description('List aggregation documents, newest period first (GET /aggregations), following pages up to --limit.')
      .option('--customer <id>', 'only this customer')
      .option('-p, --period <period>', 'only this period: hourly, daily, weekly, monthly or yearly')
      .option('--period-key <key>', 'only this period key, e.g. 202601 (monthly) or 20260112 (daily)')
      .option('--final', 'only closed periods')
      .option('--provisional', 'only open (provisional) periods')
      .option('--from <time>', 'earliest periodStart, inclusive')
      .option('--to <time>', 'latest periodStart, inclusive')
      .option('-l, --limit <n>', 'most documents to show (pages are followed)', '100')
      .option('--cursor <cursor>', 'start after this cursor (printed when more documents exist)'),
  ).action(
    run(async (o: AggFlags & { provisional?: boolean }) => {
      if (o.final && o.provisional) throw new UsageError('--final and --provisional exclude each other');
      const limit = intFlag('--limit', o.limit, 1, 1_000_000);
      const period = periodFlag(o.period);
      const client = makeClient(o);
      const items: Aggregation[] = [];
      let next: string | null = null;
      for await (const page of client
        .aggregations({
          customerId: o.customer,
          period,
          periodKey: o.periodKey,
          final: o.final ? true : o.provisional ? false : undefined,
          from: instantFlag(o.from),
          to: instantFlag(o.to),
          limit: Math.min(limit, 1000),
          cursor: o.cursor,
        })
        .pages()) {
        const room = limit - items.length;
        items.push(...page.items.slice(0, room));
        // A page cut short cannot be resumed from the server's cursor; only a whole page can.
        next = page.items.length <= room ? page.nextCursor : null;
        if (items.length >= limit || !page.nextCursor) break;
      }
      if (o.json) return printJson(items);
      if (items.length === 0) return out('no aggregations');
      out(aggregationRows(items));
      if (next) out(`\nmore: meterhook aggregations list --cursor ${next}`);
    }),
  );
}

interface DeliveryListFlags extends ClientFlags {
  status?: string;
  endpoint?: string;
  aggregation?: string;
  limit: string;
  cursor?: string;
}

function deliveryRows(items: Delivery[]): string {
  return table(
    ['id', 'status', 'endpoint', 'attempts', 'last', 'created'],
    items.map((d) => [
      d.id,
      d.status,
      d.endpointId,
      String(d.attempts),
      d.lastStatusCode !== null ? String(d.lastStatusCode) : (d.lastError ?? '-'),
      d.createdAt,
    ]),
  );
}

export function registerDeliveries(program: Command): void {
  const deliveries = program.command('deliveries').description('Webhook deliveries: list, inspect and replay');

  clientCommand(
    deliveries
      .command('list')
      .summary('List webhook deliveries, newest first')
      .description('List webhook deliveries, newest first (GET /webhooks/deliveries).')
      .option('-s, --status <status>', `only this status: ${DELIVERY_STATUSES.join(', ')}`)
      .option('--endpoint <id>', 'only this endpoint id')
      .option('--aggregation <id>', 'only deliveries of this aggregation id')
      .option('-l, --limit <n>', 'most deliveries to show (pages are followed)', '50')
      .option('--cursor <cursor>', 'start after this cursor'),
  ).action(
    run(async (o: DeliveryListFlags) => {
      if (o.status !== undefined && !(DELIVERY_STATUSES as readonly string[]).includes(o.status)) {
        throw new UsageError(`--status must be one of ${DELIVERY_STATUSES.join(', ')} (got ${JSON.stringify(o.status)})`);
      }
      const limit = intFlag('--limit', o.limit, 1, 1_000_000);
      const items = await makeClient(o)
        .deliveries.list({
          status: o.status as DeliveryStatus | undefined,
          endpointId: o.endpoint,
          aggregationId: o.aggregation,
          limit: Math.min(limit, 1000),
          cursor: o.cursor,
        })
        .all(limit);
      if (o.json) return printJson(items);
      if (items.length === 0) return out('no deliveries');
      out(deliveryRows(items));
    }),
  );

  clientCommand(
    deliveries
      .command('show <id>')
      .summary('Show one delivery with its attempts and message')
      .description('Show one delivery with every attempt and the message payload (GET /webhooks/deliveries/:id).'),
  ).action(
    run(async (id: string, o: ClientFlags) => {
      const d = await makeClient(o).deliveries.get(id);
      if (o.json) return printJson(d);
      out(`${d.id}  ${d.status}  endpoint ${d.endpointId}`);
      out(`message ${d.message.id} (${d.message.type}, aggregation ${d.aggregationId} r${d.message.revision})`);
      out(
        `created ${d.createdAt}, deadline ${d.deadlineAt}${d.deliveredAt ? `, delivered ${d.deliveredAt}` : ''}` +
          `${d.nextAttemptAt ? `, next attempt ${d.nextAttemptAt}` : ''}`,
      );
      if (d.attempts.length === 0) out('no attempts yet');
      else {
        out('');
        out(
          table(
            ['#', 'started', 'status', 'error', 'ms', 'manual'],
            d.attempts.map((a) => [
              String(a.attempt),
              a.startedAt,
              a.statusCode === null ? '-' : String(a.statusCode),
              a.errorClass ?? '',
              String(a.durationMs),
              a.manual ? 'yes' : '',
            ]),
          ),
        );
      }
      out('');
      out(JSON.stringify(d.message.payload, null, 2));
    }),
  );

  clientCommand(
    deliveries
      .command('retry <id>')
      .summary('Make one new, re-signed attempt of a delivery now')
      .description(
        'Make one new attempt of a delivery now, re-signed with a fresh timestamp (POST /webhooks/deliveries/:id/retry). ' +
          'Exits 1 when that attempt fails (the delivery then stays as it was).',
      ),
  ).action(
    run(async (id: string, o: ClientFlags) => {
      const r = await makeClient(o).deliveries.retry(id);
      const ok = r.attempt.errorClass === null;
      if (o.json) printJson(r);
      else {
        const how = r.attempt.dryRun
          ? 'dry run'
          : r.attempt.statusCode !== null
            ? `HTTP ${r.attempt.statusCode}`
            : (r.attempt.error ?? 'no answer');
        out(`${ok ? 'delivered' : 'attempt failed'}: ${id} → ${how} in ${r.attempt.durationMs} ms; delivery is now ${r.delivery.status}`);
        if (!ok && r.attempt.error) out(`  ${r.attempt.errorClass}: ${r.attempt.error}`);
      }
      return ok ? EXIT.OK : EXIT.FAILURE;
    }),
  );
}
