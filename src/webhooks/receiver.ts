// Owns the small receiver behind `meterhook webhook-receiver`: verifies both signature schemes over
// the raw body, dedupes on webhook-id, prints each delivery. Must never answer 2xx to a bad signature.

import http from 'node:http';
import { verifyWebhook } from './verify.js';

export interface ReceivedDelivery {
  id: string;
  duplicate: boolean;
  scheme: string;
  payload: Record<string, unknown>;
}

export interface ReceiverOptions {
  secret: string;
  /** Status to answer for valid deliveries (to try meterhook's retries, answer 500). */
  status?: number;
  toleranceSeconds?: number;
  onDelivery: (d: ReceivedDelivery) => void;
  onRejected: (reason: string) => void;
  maxBodyBytes?: number;
}

export function createReceiver(o: ReceiverOptions): http.Server {
  const seen = new Set<string>();
  return http.createServer((req, res) => {
    const reply = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST') return reply(405, { error: 'POST webhooks here' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > (o.maxBodyBytes ?? 1024 * 1024)) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const v = verifyWebhook(o.secret, raw, req.headers, Date.now(), o.toleranceSeconds);
      if (!v.ok) {
        o.onRejected(v.reason ?? 'invalid signature');
        return reply(401, { error: v.reason });
      }
      let payload: Record<string, unknown>;
      try {
        payload = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      } catch {
        o.onRejected('body is not JSON');
        return reply(400, { error: 'body is not JSON' });
      }
      const id = v.msgId ?? String(payload.id ?? '');
      const duplicate = seen.has(id);
      seen.add(id);
      o.onDelivery({ id, duplicate, scheme: v.scheme ?? '', payload });
      reply(o.status ?? 200, { received: true, duplicate });
    });
  });
}

/** One line per delivery, for people watching a terminal. */
export function describeDelivery(d: ReceivedDelivery): string {
  const p = d.payload as {
    type?: string;
    customerId?: string;
    period?: string;
    revision?: number;
    data?: { periodKey?: string; events?: unknown };
  };
  const dup = d.duplicate ? ' (duplicate, already seen)' : '';
  return (
    `${d.id} ${p.type} ${p.customerId} ${p.period} ${p.data?.periodKey} rev ${p.revision} ` +
    `${JSON.stringify(p.data?.events)} [${d.scheme}]${dup}`
  );
}
