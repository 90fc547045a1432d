// Owns the request helpers of the read-side HTTP suites: GET/POST through inject, capture, cursor paging, JSON errors.
// Must never hold a test of its own, nor build an app: each suite builds the apps it reads from.

import assert from 'node:assert/strict';
import { TEST_KEY, type TestApp } from './app.js';

export type Json = any;

export interface Res {
  status: number;
  headers: Record<string, unknown>;
  body: Json;
}

export async function get(t: TestApp, url: string, headers: Record<string, string> = t.headers): Promise<Res> {
  const r = await t.app.inject({ method: 'GET', url, headers });
  let body: Json;
  try {
    body = r.json();
  } catch {
    assert.fail(`GET ${url} answered ${r.statusCode} with a non-JSON body: ${r.body}`);
  }
  return { status: r.statusCode, headers: r.headers, body };
}

/** A GET whose body may be JSON or not (static files): the parsed body when it is JSON, and the text. */
export async function getAny<T = Json>(
  t: TestApp,
  url: string,
  headers: Record<string, string> = { 'x-apikey': TEST_KEY },
): Promise<{ status: number; body: T; headers: Record<string, unknown>; text: string }> {
  const r = await t.app.inject({ method: 'GET', url, headers });
  let body: unknown;
  try {
    body = r.json();
  } catch {
    body = undefined;
  }
  return { status: r.statusCode, body: body as T, headers: r.headers, text: r.body };
}

export async function post(t: TestApp, url: string, payload: unknown): Promise<Res> {
  const r = await t.app.inject({ method: 'POST', url, headers: t.headers, payload: JSON.stringify(payload) });
  return { status: r.statusCode, headers: r.headers, body: r.json() };
}

export async function capture(t: TestApp, eventType: string, e: Record<string, unknown>): Promise<Json> {
  const r = await post(t, `/usage/${eventType}`, e);
  assert.equal(r.status, 201, `POST /usage/${eventType} ${JSON.stringify(e)} → ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function captureBatch(t: TestApp, events: Array<Record<string, unknown>>): Promise<void> {
  const r = await post(t, '/usagebatch', events);
  assert.equal(r.status, 201, `POST /usagebatch → ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(r.body.count, events.length);
}

export function nextCursor(r: Res): string | undefined {
  const c = r.headers['x-next-cursor'];
  return typeof c === 'string' ? c : undefined;
}

/** Walks every page of a list route and returns all documents, failing if the walk does not end. */
export async function walk(t: TestApp, base: string, between?: (page: number) => Promise<void>): Promise<Json[]> {
  const all: Json[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const sep = base.includes('?') ? '&' : '?';
    const r = await get(t, cursor === undefined ? base : `${base}${sep}cursor=${encodeURIComponent(cursor)}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(Array.isArray(r.body));
    all.push(...r.body);
    cursor = nextCursor(r);
    if (cursor === undefined) return all;
    if (between) await between(page);
  }
  assert.fail(`paging ${base} did not end after 1000 pages`);
}

export function assertJsonError(r: Res, status = 400): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status} ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body, 'object');
  assert.equal(typeof r.body.error, 'string');
  assert.ok(r.body.error.length > 0);
}

export const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
