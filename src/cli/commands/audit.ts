// Owns `meterhook audit`: the admin actions on record (GET /audit), newest first, as a table or JSON.
// Must never print anything a record does not hold: records carry no key, body or secret.

import type { Command } from 'commander';
import type { AuditAction, AuditEntry } from '../../client/index.js';
import { AUDIT_ACTIONS } from '../../domain/audit.js';
import { type ClientFlags, UsageError, clientCommand, instantFlag, intFlag, makeClient, out, printJson, run, table } from './shared.js';

/** The domain's list of recorded actions, so the flag's choices cannot drift from what is recorded. */
const ACTIONS: readonly AuditAction[] = AUDIT_ACTIONS;

interface AuditFlags extends ClientFlags {
  action?: string;
  key?: string;
  from?: string;
  to?: string;
  limit: string;
  cursor?: string;
}

function auditRows(items: AuditEntry[]): string {
  return table(
    ['at', 'action', 'key', 'route', 'target', 'status'],
    items.map((r) => [
      r.at,
      r.action,
      r.keyId,
      `${r.method} ${r.route}`,
      Object.entries(r.target)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || '-',
      r.errorCode ? `${r.status} ${r.errorCode}` : String(r.status),
    ]),
  );
}

export function registerAudit(program: Command): void {
  clientCommand(
    program
      .command('audit')
      .summary('List admin actions on record, newest first')
      .description('List admin actions on record, newest first (GET /audit; admin keys).')
      .option('-a, --action <action>', `only this action: ${ACTIONS.join(', ')}`)
      .option('-k, --key <id>', 'only actions of this key id ("env" for keys from METERHOOK_API_KEYS)')
      .option('--from <t>', 'earliest time, inclusive')
      .option('--to <t>', 'latest time, inclusive')
      .option('-l, --limit <n>', 'most records to show (pages are followed)', '50')
      .option('--cursor <cursor>', 'start after this cursor'),
  ).action(
    run(async (o: AuditFlags) => {
      if (o.action !== undefined && !(ACTIONS as readonly string[]).includes(o.action)) {
        throw new UsageError(`--action must be one of ${ACTIONS.join(', ')} (got ${JSON.stringify(o.action)})`);
      }
      const limit = intFlag('--limit', o.limit, 1, 1_000_000);
      const items = await makeClient(o)
        .audit({
          action: o.action as AuditAction | undefined,
          keyId: o.key,
          from: instantFlag(o.from),
          to: instantFlag(o.to),
          limit: Math.min(limit, 1000),
          cursor: o.cursor,
        })
        .all(limit);
      if (o.json) return printJson(items);
      if (items.length === 0) return out('no audit records');
      out(auditRows(items));
    }),
  );
}
