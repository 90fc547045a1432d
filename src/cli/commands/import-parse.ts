// Owns reading an import file (NDJSON or CSV) into events, one record at a time, each with the line
// it starts on, and the stable id a record without one gets. Must never drop a record silently: a
// record that cannot be read becomes a rejection with its line number and the reason.

import { createHash } from 'node:crypto';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import type { BatchEvent } from '../../client/index.js';
import { UsageError } from './shared.js';

export type ImportFormat = 'ndjson' | 'csv';

export interface ImportRecord {
  /** 1-based line number where the record starts (the CSV header is line 1). */
  line: number;
  /** The event to send, or undefined when the record could not be read. */
  event?: BatchEvent;
  /** Why the record could not be read. */
  error?: string;
  /** Bytes of the input consumed so far (for progress). */
  bytes: number;
}

/**
 * The id of a record that has none: a hash of the record's text and its line number (and an optional
 * namespace). Re-importing the same file gives the same ids, so the server counts those rows as
 * duplicates; a row that was fixed gets a new id and is imported. Identical rows on different lines
 * stay distinct events.
 */
export function derivedId(text: string, line: number, namespace = ''): string {
  const h = createHash('sha256').update(`meterhook-import\n${namespace}\n${line}\n${text}`).digest('base64url');
  return `imp_${h.slice(0, 32)}`;
}

export function formatOf(file: string, given: string | undefined): ImportFormat {
  if (given !== undefined) {
    if (given === 'ndjson' || given === 'jsonl') return 'ndjson';
    if (given === 'csv') return 'csv';
    throw new UsageError(`--format must be ndjson or csv (got ${JSON.stringify(given)})`);
  }
  if (/\.(ndjson|jsonl|json)$/i.test(file)) return 'ndjson';
  if (/\.csv$/i.test(file)) return 'csv';
  throw new UsageError(`cannot tell the format of ${file} from its name: pass --format ndjson or --format csv`);
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function* lines(input: Readable): AsyncGenerator<{ text: string; bytes: number }> {
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  let bytes = 0;
  let first = true;
  for await (let text of rl) {
    bytes += Buffer.byteLength(text) + 1;
    if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    first = false;
    yield { text, bytes };
  }
}

/** NDJSON: one JSON object per line, `{eventType, customerId, value, metadata?, timestamp?, id?}`; blank lines are skipped. */
export async function* readNdjson(input: Readable, namespace = ''): AsyncGenerator<ImportRecord> {
  let line = 0;
  for await (const { text, bytes } of lines(input)) {
    line++;
    if (text.trim() === '') continue;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      yield { line, bytes, error: `invalid JSON: ${(e as Error).message}` };
      continue;
    }
    if (!isObject(doc)) {
      yield { line, bytes, error: 'a line must be a JSON object' };
      continue;
    }
    const event: Record<string, unknown> = {};
    for (const k of ['eventType', 'customerId', 'value', 'metadata', 'timestamp'] as const) if (doc[k] !== undefined) event[k] = doc[k];
    event.id = doc.id === undefined || doc.id === null ? derivedId(text.trim(), line, namespace) : doc.id;
    yield { line, bytes, event: event as unknown as BatchEvent };
  }
}

/** Splits one CSV record (RFC 4180 quoting, "" inside quotes); null when a quoted field is still open. */
export function splitCsv(text: string): string[] | null {
  const fields: string[] = [];
  let cur = '';
  let inQuotes = false;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cur += '"';
          i++;
        } else inQuotes = false;
      } else cur += c;
    } else if (c === '"' && cur === '' && !quoted) {
      inQuotes = true;
      quoted = true;
    } else if (c === ',') {
      fields.push(cur);
      cur = '';
      quoted = false;
    } else cur += c;
  }
  if (inQuotes) return null;
  fields.push(cur);
  return fields;
}

export const CSV_COLUMNS = ['eventType', 'customerId', 'value', 'timestamp', 'id', 'metadata'] as const;

interface CsvLayout {
  names: string[];
}

function csvLayout(header: string[]): CsvLayout {
  const names = header.map((h) => h.trim());
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new UsageError(`CSV header: column ${JSON.stringify(n)} appears twice`);
    seen.add(n);
    const known = (CSV_COLUMNS as readonly string[]).includes(n) || (n.startsWith('metadata.') && n.length > 'metadata.'.length);
    if (!known) {
      throw new UsageError(`CSV header: unknown column ${JSON.stringify(n)}; columns are ${CSV_COLUMNS.join(', ')} and metadata.<key>`);
    }
  }
  const missing = ['eventType', 'customerId', 'value'].filter((c) => !seen.has(c));
  if (missing.length > 0) throw new UsageError(`CSV header: missing column(s) ${missing.join(', ')} (line 1 must name the columns)`);
  return { names };
}

function csvEvent(layout: CsvLayout, cells: string[], text: string, line: number, namespace: string): { event?: BatchEvent; error?: string } {
  if (cells.length !== layout.names.length) return { error: `expected ${layout.names.length} fields, found ${cells.length}` };
  const ev: Record<string, unknown> = {};
  const metadata: Record<string, unknown> = {};
  let hasMetadata = false;
  for (let i = 0; i < cells.length; i++) {
    const name = layout.names[i]!;
    const cell = cells[i]!;
    if (cell === '') continue; // an empty cell is an absent field
    if (name === 'value') ev.value = NUMBER.test(cell.trim()) ? Number(cell) : cell; // a non-number is refused by the server
    else if (name === 'timestamp') ev.timestamp = /^\d+$/.test(cell) ? Number(cell) : cell;
    else if (name === 'metadata') {
      let doc: unknown;
      try {
        doc = JSON.parse(cell);
      } catch (e) {
        return { error: `metadata column must be a JSON object (${(e as Error).message})` };
      }
      if (!isObject(doc)) return { error: 'metadata column must be a JSON object' };
      Object.assign(metadata, doc);
      hasMetadata = true;
    } else if (name.startsWith('metadata.')) {
      metadata[name.slice('metadata.'.length)] = cell;
      hasMetadata = true;
    } else ev[name] = cell;
  }
  if (hasMetadata) ev.metadata = metadata;
  if (ev.id === undefined) ev.id = derivedId(text, line, namespace);
  return { event: ev as unknown as BatchEvent };
}

/**
 * CSV: line 1 is the header naming the columns: eventType, customerId, value (required), timestamp,
 * id, metadata (a JSON object) and metadata.<key> (one metadata key, as a string). Quoted fields may
 * contain commas, "" and line breaks. Empty cells are absent fields; blank lines are skipped.
 */
export async function* readCsv(input: Readable, namespace = ''): AsyncGenerator<ImportRecord> {
  let line = 0;
  let layout: CsvLayout | undefined;
  let pending: { text: string; line: number } | undefined;
  let bytes = 0;
  for await (const l of lines(input)) {
    line++;
    bytes = l.bytes;
    const text = pending ? `${pending.text}\n${l.text}` : l.text;
    const start = pending ? pending.line : line;
    if (!pending && text.trim() === '') continue;
    const cells = splitCsv(text);
    if (cells === null) {
      pending = { text, line: start };
      continue;
    }
    pending = undefined;
    if (!layout) {
      layout = csvLayout(cells);
      continue;
    }
    yield { line: start, bytes, ...csvEvent(layout, cells, text, start, namespace) };
  }
  if (pending) yield { line: pending.line, bytes, error: 'unterminated quoted field (a " is never closed)' };
  if (!layout) throw new UsageError('CSV file is empty: line 1 must be a header such as eventType,customerId,value,timestamp,id');
}
