// A billing-side webhook receiver for meterhook: verifies the signature over the raw body, ignores
// repeats of the same message id, and keeps only the highest revision of each aggregation.
import http from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

interface UsagePayload {
  id: string;
  type: 'aggregation.completed' | 'aggregation.updated';
  aggregationId: string;
  revision: number;
  customerId: string;
  period: string;
  data: { periodKey: string; events: Record<string, number>; eventCounts: Record<string, number> };
}

/** Legacy scheme: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>, timestamp within 5 minutes. */
export function verifyLegacy(secret: string, raw: Buffer, timestamp: string, signature: string): boolean {
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = `v1=${createHmac('sha256', secret).update(`${timestamp}.`).update(raw).digest('hex')}`;
  return expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature));
}

export function createBillingReceiver(opts: { standardSecret: string; legacySecret: string }) {
  const wh = new Webhook(opts.standardSecret); // the whsec_ form of the secret (see "What is sent")
  const seen = new Set<string>(); // message ids already applied (use a unique index in your database)
  const usage = new Map<string, UsagePayload>(); // aggregationId -> highest revision seen

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks); // verify the exact bytes received, before any JSON parsing
      let payload: UsagePayload;
      try {
        if (req.headers['webhook-signature']) {
          payload = wh.verify(raw.toString('utf8'), req.headers as Record<string, string>) as UsagePayload;
        } else if (
          verifyLegacy(opts.legacySecret, raw, String(req.headers['x-webhook-timestamp']), String(req.headers['x-webhook-signature']))
        ) {
          payload = JSON.parse(raw.toString('utf8')) as UsagePayload;
        } else throw new Error('bad signature');
      } catch {
        res.writeHead(401).end();
        return;
      }
      if (!seen.has(payload.id)) {
        seen.add(payload.id);
        const current = usage.get(payload.aggregationId);
        // Arrival order does not matter: the highest revision of an aggregation wins.
        if (!current || payload.revision > current.revision) usage.set(payload.aggregationId, payload);
      }
      res.writeHead(200).end(); // any 2xx; anything else is retried with the same id
    });
  });
  return { server, usage, seen };
}
