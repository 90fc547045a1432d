// A scripted HTTP server for client unit tests: a real node:http server on 127.0.0.1:<random port>
// that records every request (method, path, headers, parsed JSON body, arrival time) and answers as
// the test's handler says. Nothing here talks to anything but loopback.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  at: number;
}

export interface FakeAnswer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Destroy the socket without answering (a network error for the client). */
  destroy?: boolean;
}

export type FakeHandler = (req: FakeRequest, n: number) => FakeAnswer;

export interface FakeServer {
  url: string;
  requests: FakeRequest[];
  setHandler(h: FakeHandler): void;
  close(): Promise<void>;
}

export async function startFakeServer(handler: FakeHandler = () => ({ status: 200, body: {} })): Promise<FakeServer> {
  let h = handler;
  const requests: FakeRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text === '' ? undefined : text;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        // keep text
      }
      const rec: FakeRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, at: Date.now() };
      requests.push(rec);
      const a = h(rec, requests.length);
      if (a.destroy) {
        req.socket.destroy();
        return;
      }
      res.writeHead(a.status, { 'content-type': 'application/json', ...(a.headers ?? {}) });
      res.end(a.body === undefined ? '' : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setHandler: (n) => (h = n),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The answer meterhook gives to a stored batch. */
export function batchOk(req: FakeRequest): FakeAnswer {
  const n = Array.isArray(req.body) ? req.body.length : 0;
  return { status: 201, body: { message: 'Events captured', count: n, inserted: n, duplicates: 0 } };
}

export function idsOf(req: FakeRequest): string[] {
  return (req.body as Array<{ id: string }>).map((e) => e.id);
}
