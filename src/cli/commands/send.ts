// Owns `meterhook send`: capture one event now (POST /usage/:eventType) and show what the server did.

import type { Command } from 'commander';
import { type ClientFlags, UsageError, clientCommand, instantFlag, makeClient, out, printJson, run } from './shared.js';

interface SendFlags extends ClientFlags {
  customer: string;
  value: string;
  metadata?: string;
  timestamp?: string;
  id?: string;
}

export function parseMetadata(raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw new UsageError(`--metadata must be a JSON object (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new UsageError('--metadata must be a JSON object, e.g. \'{"region":"eu"}\'');
  return v as Record<string, unknown>;
}

export function registerSend(program: Command): void {
  clientCommand(
    program
      .command('send <eventType>')
      .summary('Capture one usage event now')
      .description(
        'Capture one usage event now (POST /usage/:eventType). Without --id a random id is assigned, so the ' +
          'automatic retries never double-count; pass your own --id to make re-running the command safe too.',
      )
      .requiredOption('-c, --customer <id>', 'customer id')
      .requiredOption('-v, --value <n>', 'numeric value (negative, 0 and fractions are fine)')
      .option('-m, --metadata <json>', 'metadata, a JSON object, e.g. \'{"region":"eu"}\'')
      .option('-t, --timestamp <time>', 'when the usage happened: ISO-8601 with offset or epoch ms (default: now, server time)')
      .option('--id <id>', 'idempotency id (1-128 characters); a repeat with the same content is a harmless duplicate'),
  ).action(
    run(async (eventType: string, o: SendFlags) => {
      const value = Number(o.value);
      if (o.value.trim() === '' || !Number.isFinite(value))
        throw new UsageError(`--value must be a number (got ${JSON.stringify(o.value)})`);
      const metadata = parseMetadata(o.metadata);
      const client = makeClient(o);
      const r = await client.capture(eventType, {
        customerId: o.customer,
        value,
        ...(metadata ? { metadata } : {}),
        ...(o.timestamp !== undefined ? { timestamp: instantFlag(o.timestamp)! } : {}),
        ...(o.id !== undefined ? { id: o.id } : {}),
      });
      if (o.json) printJson(r);
      else if (r.duplicate)
        out(`duplicate: ${eventType} for ${r.customerId} with id ${r.id} was already captured (${r.eventId}); not counted again`);
      else out(`captured ${eventType} for ${r.customerId}: value ${value} at ${r.timestamp} (id ${r.id}, ${r.eventId})`);
    }),
  );
}
