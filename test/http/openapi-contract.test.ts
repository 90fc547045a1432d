// /openapi.json types the whole contract: every operation has a request schema for each input it
// reads, a schema for each 2xx it answers, and the shared error body for each 4xx and 5xx, whose
// code is the closed ErrorCode list. A route added without them fails here. The drop-in vendor routes
// (tagged "drop-in: …") answer errors in their vendor's shape instead, each with its own schema.
// store-contract: sqlite — the OpenAPI document is built from the route schemas, whatever the store

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ERROR_CODES } from '../../src/domain/errors.js';
import { ENDPOINTS } from '../../src/http/routes/meta.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

interface Schema {
  type?: string;
  properties?: Record<string, Schema & { enum?: string[] }>;
  required?: string[];
  items?: Schema;
}
interface Operation {
  tags?: string[];
  parameters?: Array<{ name: string; in: string; schema?: Schema }>;
  requestBody?: { content: Record<string, { schema?: Schema }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
}
type Doc = { paths: Record<string, Record<string, Operation>> };

/** Public routes take no key, so they have no 401; every other operation must declare one. */
const PUBLIC = new Set(['get /healthz', 'get /readyz']);

describe('OpenAPI contract', () => {
  let t: TestApp;
  let doc: Doc;
  before(async () => {
    t = await buildTestApp();
    doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json() as Doc;
  });
  after(() => t.close());

  const isDropIn = (op: Operation) => (op.tags ?? []).some((t) => t.startsWith('drop-in: '));
  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ name: `${method} ${path}`, op })));

  it('documents exactly the operations in ENDPOINTS', () => {
    const documented = operations()
      .map((o) => o.name)
      .sort();
    const listed = Object.keys(ENDPOINTS)
      .map((r) => {
        const [method, path] = r.split(' ') as [string, string];
        return `${method.toLowerCase()} ${path.replace(/:(\w+)/g, '{$1}')}`;
      })
      .sort();
    assert.deepEqual(documented, listed);
  });

  it('gives every operation a schema for each 2xx, and at least one', () => {
    for (const { name, op } of operations()) {
      const ok = Object.entries(op.responses ?? {}).filter(([s]) => /^2\d\d$/.test(s));
      assert.ok(ok.length > 0, `${name}: declares a 2xx`);
      for (const [status, r] of ok) {
        // A 204, or a drop-in whose vendor answers an empty 200 (Metronome), has no body: it is described instead.
        if (!r.content && (status === '204' || isDropIn(op))) {
          assert.ok(r.description, `${name} ${status}: describes its empty answer`);
          continue;
        }
        const schemas = Object.values(r.content ?? {}).map((c) => c.schema);
        assert.ok(schemas.length > 0 && schemas.every((s) => s && Object.keys(s).length > 0), `${name} ${status}: has a schema`);
      }
    }
  });

  it('gives every operation its error answers, each with the error body and the closed code list', () => {
    for (const { name, op } of operations()) {
      const errors = Object.entries(op.responses ?? {}).filter(([s]) => /^[45]\d\d$/.test(s));
      const statuses = errors.map(([s]) => s);
      assert.ok(statuses.includes('500'), `${name}: declares 500`);
      if (!PUBLIC.has(name)) assert.ok(statuses.includes('401') && statuses.includes('429'), `${name}: declares 401 and 429`);
      if (op.parameters?.some((p) => p.in !== 'header') || op.requestBody) {
        assert.ok(statuses.includes('400'), `${name}: reads input, so declares 400`);
      }
      for (const [status, r] of errors) {
        if (isDropIn(op)) {
          const vendor = r.content?.['application/json']?.schema;
          assert.ok(vendor && Object.keys(vendor).length > 0, `${name} ${status}: has its vendor's error schema`);
          assert.ok(r.description && r.description.length > 0, `${name} ${status}: is described`);
          continue;
        }
        const schema = r.content?.['application/json']?.schema;
        assert.ok(schema?.properties?.error?.type === 'string', `${name} ${status}: an error body with an error string`);
        assert.ok(schema.required?.includes('error'), `${name} ${status}: error is required`);
        if (name === 'get /readyz' && status === '503') continue; // the readiness answer, not an error envelope
        assert.deepEqual(schema.properties.code?.enum, [...ERROR_CODES], `${name} ${status}: code is an ErrorCode`);
        assert.ok(r.description && r.description.length > 0, `${name} ${status}: is described`);
      }
    }
  });

  it('types every path and query parameter, and every request body', () => {
    for (const { name, op } of operations()) {
      for (const p of op.parameters ?? []) {
        assert.ok(p.schema && Object.keys(p.schema).length > 0, `${name}: ${p.in} ${p.name} has a schema`);
      }
      for (const [type, c] of Object.entries(op.requestBody?.content ?? {})) assert.ok(c.schema, `${name}: body ${type} has a schema`);
      const path = name.split(' ')[1]!;
      for (const m of path.matchAll(/\{(\w+)\}/g)) {
        assert.ok(
          op.parameters?.some((p) => p.in === 'path' && p.name === m[1]),
          `${name}: path parameter ${m[1]}`,
        );
      }
    }
  });
});
