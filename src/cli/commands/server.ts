// Owns the commands that run or administer a local server: serve, keys create|list|revoke, config
// check and webhook-receiver. Server modules are imported lazily, inside the actions, so the client
// commands start fast and never load the server. Must never print a secret except a newly created
// API key, exactly once.

import type { Command } from 'commander';

function fail(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`meterhook: ${msg}\n`);
  process.exit(err instanceof Error && (err.name === 'ConfigError' || err.name === 'UsageError') ? 2 : 1);
}

export function registerServerCommands(program: Command): void {
  program
    .command('serve')
    .description('Start the HTTP server, the scheduler and (when configured) webhook delivery')
    .option('-c, --config <file>', 'configuration file (default: $METERHOOK_CONFIG or ./systemconfig.json)')
    .action(async (o: { config?: string }) => {
      try {
        const [{ loadConfigFile, resolveConfigPath }, { ConfigError }, { readServerSettings }, { startServer }] = await Promise.all([
          import('../../config/load-config.js'),
          import('../../config/schema.js'),
          import('../../config/server-settings.js'),
          import('../../main.js'),
        ]);
        const settings = readServerSettings(process.env, process.cwd());
        const config = loadConfigFile(resolveConfigPath(o.config, process.env, process.cwd()), process.env);
        const sync = process.env.METERHOOK_SQLITE_SYNCHRONOUS?.toUpperCase();
        if (sync !== undefined && sync !== 'NORMAL' && sync !== 'FULL') {
          throw new ConfigError('environment', [`METERHOOK_SQLITE_SYNCHRONOUS: must be normal or full (got ${JSON.stringify(sync)})`]);
        }
        const server = await startServer({ settings, config, sqliteSynchronous: sync });
        let signals = 0;
        const shutdown = (sig: string) => {
          if (++signals > 1) process.exit(130);
          server.ctx.logger.info({ signal: sig }, 'shutting down');
          server.stop().then(
            () => process.exit(0),
            (e: unknown) => fail(e),
          );
        };
        process.on('SIGINT', () => shutdown('SIGINT'));
        process.on('SIGTERM', () => shutdown('SIGTERM'));
      } catch (err) {
        fail(err);
      }
    });

  const openLocalStore = async () => {
    const [{ readServerSettings }, { openStore }] = await Promise.all([import('../../config/server-settings.js'), import('../../main.js')]);
    return openStore(readServerSettings(process.env, process.cwd()));
  };

  const keys = program.command('keys').description('Manage API keys in the local store (METERHOOK_DATA_DIR or DATABASE_URL)');
  keys
    .command('create')
    .description('Create an API key; it is printed once and only its hash is stored')
    .option('-n, --name <name>', 'a label for the key', 'cli')
    .option('-s, --scope <scopes>', 'what the key may do, comma-separated: ingest, read, admin', 'admin')
    .option('--customer <customerId>', 'confine the key to one customer (ingest and read only)')
    .option('--expires <instant>', 'ISO-8601 instant after which the key answers 401')
    .option('--rate-limit <rps>', "the key's own rate limit, requests per second")
    .option('--burst <n>', 'requests the key may send at once (with --rate-limit; default the rate)')
    .option('--json', 'machine-readable output')
    .action(async (o: CreateKeyOptions) => {
      const [{ createApiKey }, { systemClock }] = await Promise.all([import('../../auth/api-keys.js'), import('../../domain/clock.js')]);
      const { scopes, restrictions } = await keyCreateArgs(o, Date.now());
      const store = await openLocalStore();
      try {
        const { key, record } = await createApiKey(store, systemClock, o.name, scopes, restrictions);
        const { id, prefix, name } = record;
        const shown = { key, id, prefix, name, scopes: record.scopes, customerId: record.customerId ?? null };
        const more = { expiresAt: record.expiresAt ? new Date(record.expiresAt).toISOString() : null, rateLimit: record.rateLimit ?? null };
        if (o.json) process.stdout.write(`${JSON.stringify({ ...shown, ...more })}\n`);
        else {
          const customer = record.customerId ? `, customer ${record.customerId}` : '';
          process.stdout.write(`${key}\n(id ${id}, scopes ${record.scopes.join(',')}${customer}; shown once, store it safely)\n`);
        }
      } finally {
        await store.close();
      }
    });
  keys
    .command('list')
    .description('List API keys (prefixes only)')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => {
      const store = await openLocalStore();
      try {
        const rows = (await store.listApiKeys()).map(({ hash: _h, ...k }) => k);
        if (o.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
        else
          for (const k of rows)
            process.stdout.write(
              `${k.id}  ${k.prefix}…  ${k.name}  ${k.scopes.join(',')}${k.customerId ? `  customer=${k.customerId}` : ''}  ` +
                `${k.revokedAt ? 'revoked' : 'active'}\n`,
            );
      } finally {
        await store.close();
      }
    });
  keys
    .command('revoke <idOrPrefix>')
    .description('Revoke a key by id or prefix; running servers stop accepting it within a few seconds')
    .action(async (idOrPrefix: string) => {
      const store = await openLocalStore();
      try {
        if (!(await store.revokeApiKey(idOrPrefix, Date.now()))) fail(new Error(`no active key matches ${idOrPrefix}`));
        process.stdout.write(`revoked ${idOrPrefix}\n`);
      } finally {
        await store.close();
      }
    });

  program
    .command('config')
    .description('Configuration tools')
    .command('check <file>')
    .description('Validate a configuration file and print every problem')
    .action(async (file: string) => {
      try {
        const { loadConfigFile } = await import('../../config/load-config.js');
        const cfg = loadConfigFile(file, process.env);
        process.stdout.write(`${file}: ok (${cfg.eventTypes.length} event types, periods ${cfg.periods.join(', ')})\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('webhook-receiver')
    .description('Run a local receiver that verifies both signature schemes and prints each delivery')
    .option('-p, --port <port>', 'port to listen on', '4000')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('-s, --secret <secret>', 'the endpoint secret (default: $METERHOOK_WEBHOOK_SECRET)')
    .option('--status <code>', 'HTTP status to answer valid deliveries with (e.g. 500 to watch retries)', '200')
    .option('--json', 'print each delivery as a JSON line')
    .action(async (o: { port: string; host: string; secret?: string; status: string; json?: boolean }) => {
      const secret = o.secret ?? process.env.METERHOOK_WEBHOOK_SECRET;
      if (!secret) fail(new Error('give the endpoint secret with --secret or METERHOOK_WEBHOOK_SECRET'));
      const status = Number(o.status);
      if (!Number.isInteger(status) || status < 200 || status > 599)
        fail(new Error(`--status must be an HTTP status code (got ${o.status})`));
      const { createReceiver, describeDelivery } = await import('../../webhooks/receiver.js');
      const server = createReceiver({
        secret,
        status,
        onDelivery: (d) => process.stdout.write(`${o.json ? JSON.stringify(d) : `✓ ${describeDelivery(d)}`}\n`),
        onRejected: (reason) => process.stdout.write(`${o.json ? JSON.stringify({ rejected: reason }) : `✗ rejected: ${reason}`}\n`),
      });
      server.on('error', (e) => fail(e));
      server.listen(Number(o.port), o.host, () => {
        const a = server.address();
        const port = typeof a === 'object' && a ? a.port : o.port;
        process.stdout.write(`webhook-receiver listening on http://${o.host}:${port}/ (answering ${status})\n`);
      });
      const close = () => server.close(() => process.exit(0));
      process.on('SIGINT', close);
      process.on('SIGTERM', close);
    });
}

interface CreateKeyOptions {
  name: string;
  scope: string;
  customer?: string;
  expires?: string;
  rateLimit?: string;
  burst?: string;
  json?: boolean;
}

/** The scopes and restrictions `keys create` was given, or a usage error naming what is wrong. */
async function keyCreateArgs(o: CreateKeyOptions, now: number) {
  const [{ parseScopes, SCOPES }, { customerIdProblem }] = await Promise.all([
    import('../../domain/scopes.js'),
    import('../../domain/event-rules.js'),
  ]);
  const usage = (message: string): never => fail(Object.assign(new Error(message), { name: 'UsageError' }));
  const { scopes, unknown } = parseScopes(o.scope);
  if (unknown.length > 0 || scopes.length === 0)
    usage(`--scope must name one or more of ${SCOPES.join(', ')} (got ${JSON.stringify(o.scope)})`);
  if (o.customer !== undefined) {
    const problem = customerIdProblem(o.customer);
    if (problem) usage(`--customer: ${problem}`);
    if (scopes.includes('admin')) usage('--customer: a customer key may not have the admin scope (use --scope ingest,read)');
  }
  let expiresAt: number | null = null;
  if (o.expires !== undefined) {
    expiresAt = /^\d{4}-\d{2}-\d{2}T/.test(o.expires) ? Date.parse(o.expires) : Number.NaN;
    if (!Number.isFinite(expiresAt) || expiresAt <= now)
      usage(`--expires must be a future ISO-8601 instant (got ${JSON.stringify(o.expires)})`);
  }
  let rateLimit: { requestsPerSecond: number; burst: number } | null = null;
  if (o.rateLimit !== undefined) {
    const rps = Number(o.rateLimit);
    const burst = o.burst === undefined ? Math.max(1, Math.ceil(rps)) : Number(o.burst);
    if (!(rps > 0) || !Number.isInteger(burst) || burst < 1) usage('--rate-limit must be a positive number and --burst a positive integer');
    rateLimit = { requestsPerSecond: rps, burst };
  } else if (o.burst !== undefined) usage('--burst needs --rate-limit');
  return { scopes, restrictions: { customerId: o.customer ?? null, expiresAt, rateLimit } };
}
