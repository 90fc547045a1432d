// Owns `meterhook import`: stream an NDJSON or CSV file to the server in batches, with progress, and
// report inserted, duplicate and rejected rows (with line numbers). Must never double-count on a
// rerun: every row without an id gets a stable one derived from its text and line number.

import fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import type { BatchEvent } from '../../client/index.js';
import { formatOf, readCsv, readNdjson, type ImportFormat } from './import-parse.js';
import { type ClientFlags, EXIT, UsageError, clientCommand, exitCodeOf, intFlag, makeClient, out, printJson, run } from './shared.js';

interface ImportFlags extends ClientFlags {
  format?: string;
  batchSize: string;
  idNamespace?: string;
  progress: boolean;
}

export interface ImportSummary {
  file: string;
  format: ImportFormat;
  rows: number;
  inserted: number;
  duplicates: number;
  rejected: Array<{ line: number; id?: string; errors: string[] }>;
  /** Rows not sent because the import stopped (server unreachable, 401, 5xx after retries). */
  notSent: number;
  completed: boolean;
  error?: string;
}

class Progress {
  private lastDraw = 0;
  private drawn = false;
  constructor(
    private readonly enabled: boolean,
    private readonly tty: boolean,
    private readonly total: number | undefined,
  ) {}

  update(s: ImportSummary, bytes: number, force = false): void {
    if (!this.enabled || (force && !this.tty)) return;
    const pct = this.total ? Math.min(100, Math.floor((bytes / this.total) * 100)) : undefined;
    const counts = `${s.rows} rows  inserted ${s.inserted}  duplicates ${s.duplicates}  rejected ${s.rejected.length}`;
    if (this.tty) {
      const now = Date.now();
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      const width = 24;
      const filled = pct === undefined ? 0 : Math.round((pct / 100) * width);
      const bar = pct === undefined ? '' : `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(pct).padStart(3)}%  `;
      process.stderr.write(`\r\x1b[2K${bar}${counts}`);
      this.drawn = true;
    } else {
      process.stderr.write(`import: ${pct === undefined ? '' : `${pct}%  `}${counts}\n`);
    }
  }

  done(): void {
    if (this.enabled && this.tty && this.drawn) process.stderr.write('\n');
  }
}

export function registerImport(program: Command): void {
  clientCommand(
    program
      .command('import <file>')
      .summary('Import events from an NDJSON or CSV file (rerun-safe)')
      .description(
        'Import events from a file in batches (POST /usagebatch), then print how many rows were inserted, were ' +
          'duplicates, or were rejected (with line numbers and reasons). Use - to read stdin (with --format).\n\n' +
          'NDJSON (.ndjson, .jsonl, .json): one JSON object per line: ' +
          '{"eventType", "customerId", "value", "metadata"?, "timestamp"?, "id"?}. Blank lines are skipped.\n\n' +
          'CSV (.csv): line 1 is a header naming the columns: eventType, customerId, value (required), timestamp, ' +
          'id, metadata (a JSON object) and metadata.<key> (one metadata key, as a string). Empty cells are absent ' +
          'fields. Quoted fields may hold commas, "" and line breaks.\n\n' +
          'A row without an id gets a stable one derived from its text and line number, so running the same import ' +
          'again is safe: rows already stored count as duplicates. Exits 1 when any row was rejected.',
      )
      .option('-f, --format <format>', 'ndjson or csv (default: from the file extension)')
      .option('-b, --batch-size <n>', 'events per request (the server accepts up to its maxBatchSize)', '1000')
      .option('--id-namespace <ns>', 'mixed into derived ids; use a different one for files whose identical rows are distinct events')
      .option('--no-progress', 'do not print progress on stderr'),
    { retries: 6 },
  ).action(
    run(async (file: string, o: ImportFlags) => {
      const format = formatOf(file, o.format);
      const batchSize = intFlag('--batch-size', o.batchSize, 1, 10_000);
      const client = makeClient(o, { maxBatchSize: batchSize });
      let input: Readable;
      let total: number | undefined;
      if (file === '-') input = process.stdin;
      else {
        try {
          const st = fs.statSync(file);
          if (!st.isFile()) throw new Error('not a regular file');
          total = st.size;
          fs.accessSync(file, fs.constants.R_OK);
        } catch (e) {
          throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
        }
        input = fs.createReadStream(file);
      }

      const summary: ImportSummary = { file, format, rows: 0, inserted: 0, duplicates: 0, rejected: [], notSent: 0, completed: false };
      const progress = new Progress(o.progress, Boolean(process.stderr.isTTY), total);
      const records = format === 'csv' ? readCsv(input, o.idNamespace) : readNdjson(input, o.idNamespace);
      let batch: Array<{ line: number; event: BatchEvent }> = [];
      let bytes = 0;
      let failure: Error | undefined;

      const send = async (): Promise<void> => {
        if (batch.length === 0) return;
        const sent = batch;
        batch = [];
        const r = await client.sendBatch(sent.map((b) => b.event));
        summary.inserted += r.inserted;
        summary.duplicates += r.duplicates;
        for (const rej of r.rejected) {
          summary.rejected.push({ line: sent[rej.index]!.line, id: r.ids[rej.index], errors: rej.error.details ?? [rej.error.message] });
        }
        if (r.failed) {
          summary.notSent += r.failed.indices.length;
          failure = r.failed.error;
        }
        progress.update(summary, bytes);
      };

      try {
        for await (const rec of records) {
          bytes = rec.bytes;
          summary.rows++;
          if (rec.error !== undefined || !rec.event) {
            summary.rejected.push({ line: rec.line, errors: [rec.error ?? 'unreadable record'] });
            continue;
          }
          batch.push({ line: rec.line, event: rec.event });
          if (batch.length >= batchSize) await send();
          if (failure) break;
        }
        if (!failure) await send();
      } finally {
        progress.update(summary, bytes, true);
        progress.done();
        input.destroy();
      }
      if (failure) {
        // Rows still unread are not counted in `rows`; the rerun picks them up (and skips what was stored).
        summary.error = failure.message;
      } else summary.completed = true;
      summary.rejected.sort((a, b) => a.line - b.line);

      if (o.json) printJson(summary);
      else printSummary(summary);
      if (failure) {
        process.stderr.write(
          `meterhook: import stopped: ${failure.message}\nRerunning the same command is safe: rows already stored count as duplicates.\n`,
        );
        return exitCodeOf(failure);
      }
      return summary.rejected.length > 0 ? EXIT.FAILURE : EXIT.OK;
    }),
  );
}

function printSummary(s: ImportSummary): void {
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  out(
    `${s.completed ? 'imported' : 'stopped importing'} ${s.file} (${s.format}): ${plural(s.rows, 'row')} read, ${s.inserted} inserted, ` +
      `${plural(s.duplicates, 'duplicate')}, ${s.rejected.length} rejected${s.notSent ? `, ${s.notSent} not sent` : ''}`,
  );
  if (s.rejected.length === 0) return;
  const shown = s.rejected.slice(0, 50);
  out('rejected rows:');
  for (const r of shown) out(`  line ${r.line}: ${r.errors.join('; ')}`);
  if (s.rejected.length > shown.length) out(`  … and ${s.rejected.length - shown.length} more (--json lists them all)`);
}
