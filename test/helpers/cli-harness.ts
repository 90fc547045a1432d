// Shared pieces of the suites that run the `meterhook` client commands as real processes against a
// real server: the server and temp dir they share, the CLI runner with that server's URL and key,
// input files, and a customer's usage in the one open period the files use. Must never hold a test.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { cleanupServerProcesses, http, makeTempDir, runCli, startServerProcess, type ServerProcess } from './server-process.js';

/**
 * The start of the current UTC hour: events carrying it fall in one known period, and that hour
 * (and its day and month) stays open for the whole run (end + 5 min grace).
 */
export const AT = new Date(Date.now() - (Date.now() % 3_600_000)).toISOString();

/** Starts one server for the file (before/after hooks), with `config` if given, and returns helpers bound to it. */
export function cliHarness(tempPrefix: string, config?: Record<string, unknown>) {
  let server: ServerProcess;
  let dir: string;
  before(async () => {
    server = await startServerProcess(config ? { config } : {});
    dir = makeTempDir(tempPrefix);
  });
  after(async () => {
    await cleanupServerProcesses();
  });
  return {
    server: () => server,
    dir: () => dir,
    cli(args: string[], env: Record<string, string | undefined> = {}) {
      return runCli(args, { env: { METERHOOK_URL: server.url, METERHOOK_API_KEY: server.key, ...env }, timeoutMs: 60_000 });
    },
    write(name: string, text: string): string {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      return file;
    },
    async usageOf(customerId: string): Promise<{ events: Record<string, number>; eventCounts: Record<string, number> }> {
      const r = await http(`${server.url}/customers/${customerId}/usage?period=monthly&at=${encodeURIComponent(AT)}`, {
        headers: { 'x-apikey': server.key! },
      });
      assert.equal(r.status, 200, r.text);
      return r.body;
    },
  };
}
