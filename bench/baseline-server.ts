// The physical-limit baseline of performance.md: a bare node:http server that reads the request
// body, JSON.parses it and answers 201, storing nothing. Run as its own process: PORT=<n>.
// Must never do more work than that, or the ratio against meterhook stops meaning anything.

import http from 'node:http';

const port = Number(process.env.PORT ?? 0);
const ACK = JSON.stringify({ message: 'ok' });

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(ACK);
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    try {
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      // Touch the result so the parse cannot be optimised away.
      const n = Array.isArray(body) ? body.length : body === null ? 0 : 1;
      res.writeHead(201, { 'content-type': 'application/json' }).end(`{"message":"ok","count":${n}}`);
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"message":"bad json"}');
    }
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
