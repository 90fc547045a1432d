// Owns reading an import file (NDJSON or CSV) into events, one record at a time, each with the line
// it starts on, and the stable id a record without one gets. Must never drop a record silently: a
// record that cannot be read becomes a rejection with its line number and the reason.

import { createHash } from 'node:crypto';
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

/**
 * Why a record is refused when its bytes are not UTF-8. A decoder would put U+FFFD in their place,
 * so two different ids (or a lone UTF-16 surrogate written as CESU-8/WTF-8 bytes) would become one.
 */
export const NOT_UTF8 = 'not valid UTF-8 (for example an encoded lone UTF-16 surrogate); save the file as UTF-8';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

interface Line {
  text: string;
  /** Bytes of the input consumed up to the end of this line. */
  bytes: number;
  /** The line's bytes are not UTF-8; `text` then holds them decoded with U+FFFD, for record boundaries only. */
  notUtf8: boolean;
}

function decodeLine(b: Buffer): { text: string; notUtf8: boolean } {
  try {
    return { text: utf8.decode(b), notUtf8: false };
  } catch {
    return { text: b.toString('utf8'), notUtf8: true };
  }
}

/** Lines ending in \n, \r\n or \r, each decoded strictly as UTF-8 on its own, so a bad byte names its line. */
async function* lines(input: Readable): AsyncGenerator<Line> {
  let buf: Buffer = Buffer.alloc(0);
  let consumed = 0;
  let first = true;
  const emit = (end: number, next: number): Line => {
    let { text, notUtf8 } = decodeLine(buf.subarray(0, end));
    if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    first = false;
    consumed += next;
    buf = buf.subarray(next);
    return { text, bytes: consumed, notUtf8 };
  };
  for await (const chunk of input) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    buf = buf.length === 0 ? data : Buffer.concat([buf, data]);
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c === 0x0a) {
        yield emit(i, i + 1);
        i = -1;
      } else if (c === 0x0d) {
        // A \r at the end of what has arrived may be the first half of \r\n: wait for the next chunk.
        if (i + 1 === buf.length) break;
        yield emit(i, buf[i + 1] === 0x0a ? i + 2 : i + 1);
        i = -1;
      }
    }
  }
  if (buf.length > 0) {
    const cr = buf[buf.length - 1] === 0x0d;
    yield emit(cr ? buf.length - 1 : buf.length, buf.length);
  }
}

/** NDJSON: one JSON object per line, `{eventType, customerId, value, metadata?, timestamp?, id?}`; blank lines are skipped. */
export async function* readNdjson(input: Readable, namespace = ''): AsyncGenerator<ImportRecord> {
  let line = 0;
  for await (const { text, bytes, notUtf8 } of lines(input)) {
    line++;
    if (notUtf8) {
      yield { line, bytes, error: NOT_UTF8 };
      continue;
    }
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

function csvEvent(
  layout: CsvLayout,
  cells: string[],
  text: string,
  line: number,
  namespace: string,
): { event?: BatchEvent; error?: string } {
  if (cells.length !== layout.names.length) return { error: `expected ${layout.names.length} fields, found ${cells.length}` };
  const ev: Record<string, unknown> = {};
  const metadata: Record<string, unknown> = {};
  let hasMetadata = false;
  for (let i = 0; i < cells.length; i++) {
    const name = layout.names[i]!;
    const cell = cells[i]!;
    if (cell === '') continue; // an empty cell is an absent field
    if (name === 'value')
      ev.value = NUMBER.test(cell.trim()) ? Number(cell) : cell; // a non-number is refused by the server
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
  let pending: { text: string; line: number; notUtf8: boolean } | undefined;
  let bytes = 0;
  for await (const l of lines(input)) {
    line++;
    bytes = l.bytes;
    const text = pending ? `${pending.text}\n${l.text}` : l.text;
    const start = pending ? pending.line : line;
    // A record spanning lines is refused whole when any of them is not UTF-8.
    const notUtf8 = l.notUtf8 || (pending?.notUtf8 ?? false);
    if (!pending && text.trim() === '' && !notUtf8) continue;
    const cells = splitCsv(text);
    if (cells === null) {
      pending = { text, line: start, notUtf8 };
      continue;
    }
    pending = undefined;
    if (!layout) {
      if (notUtf8) throw new UsageError(`CSV header (line ${start}) is ${NOT_UTF8}`);
      layout = csvLayout(cells);
      continue;
    }
    if (notUtf8) yield { line: start, bytes, error: NOT_UTF8 };
    else yield { line: start, bytes, ...csvEvent(layout, cells, text, start, namespace) };
  }
  if (pending) yield { line: pending.line, bytes, error: 'unterminated quoted field (a " is never closed)' };
  if (!layout) throw new UsageError('CSV file is empty: line 1 must be a header such as eventType,customerId,value,timestamp,id');
}
