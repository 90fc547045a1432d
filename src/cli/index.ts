#!/usr/bin/env node
// The `meterhook` command: serve, and local administration of keys and configuration; and client
// commands that talk to a running server over HTTP (send, import, trigger, usage, aggregations,
// deliveries, audit). Must never print a secret except a newly created API key, exactly once.
// Exit codes: 0 ok, 1 failure (HTTP error, rejected rows, failed attempt), 2 usage or configuration
// error, 3 server unreachable.

import { Command, CommanderError } from 'commander';
import { VERSION } from '../config/version.js';
import { registerImport } from './commands/import.js';
import { registerAggregations, registerDeliveries, registerTrigger, registerUsage } from './commands/reads.js';
import { registerAudit } from './commands/audit.js';
import { registerSend } from './commands/send.js';
import { registerServerCommands } from './commands/server.js';
import { EXIT, failWith } from './commands/shared.js';

const program = new Command();
program
  .name('meterhook')
  .description(
    'Self-hosted usage metering service.\n\n' +
      'Client commands reach a running server at --url / $METERHOOK_URL (default http://localhost:3000) with ' +
      'the key in $METERHOOK_API_KEY (or --api-key). Every client command takes --json.\n\n' +
      'Exit codes: 0 ok, 1 failure (HTTP error, rejected rows, failed attempt), 2 usage or configuration error, ' +
      '3 server unreachable.',
  )
  .version(VERSION)
  // Usage errors (unknown command or option, missing argument) exit 2 instead of commander's 1.
  .exitOverride()
  .showHelpAfterError('(add --help for usage)');

registerServerCommands(program);
registerSend(program);
registerImport(program);
registerTrigger(program);
registerAggregations(program);
registerUsage(program);
registerDeliveries(program);
registerAudit(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
  failWith(err);
});
