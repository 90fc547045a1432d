// The loopback webhook receiver for B5, run as its own process: PORT=<n>, SLOW_MS=<ms>.
// POST to any path answers 200 as soon as the body is read, or after SLOW_MS when the path's last
// segment is "slow". GET /stats returns, per path, how many distinct message ids (webhook-id) arrived.
// Must never verify or store anything beyond counts: it stands in for a fast billing receiver.

import http from 'node:http';

const port = Number(process.env.PORT ?? 0);
const slowMs = Number(process.env.SLOW_MS ?? 2000);
const seen = new Map<string, Set<string>>();
const requests = new Map<string, number>();

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0]!;
  if (req.method === 'GET') {
    const paths: Record<string, { distinct: number; requests: number }> = {};
    for (const [p, ids] of seen) paths[p] = { distinct: ids.size, requests: requests.get(p) ?? 0 };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ paths }));
    return;
  }
  req.resume();
  req.on('end', () => {
    requests.set(path, (requests.get(path) ?? 0) + 1);
    let ids = seen.get(path);
    if (!ids) seen.set(path, (ids = new Set()));
    const id = req.headers['webhook-id'];
    if (typeof id === 'string') ids.add(id);
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    if (path.endsWith('/slow')) setTimeout(answer, slowMs);
    else answer();
  });
});
server.keepAliveTimeout = 72_000;
server.listen(port, '127.0.0.1');
const shutdown = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
