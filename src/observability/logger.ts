// Owns the process logger: pino JSON lines (pretty only on an interactive terminal), with request
// credentials and secrets redacted. Must never let a secret reach a log line.

import { pino, type DestinationStream, type Logger } from 'pino';

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-apikey"]',
  'headers.authorization',
  'headers["x-apikey"]',
  '*.secret',
  '*.secrets',
  '*.previousSecrets',
  'secret',
];

export function createLogger(level: string, o: { pretty?: boolean; destination?: DestinationStream } = {}): Logger {
  const pretty = o.destination === undefined && (o.pretty ?? process.stdout.isTTY === true);
  const options = {
    level,
    base: { service: 'meterhook' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } } : {}),
  };
  return o.destination ? pino(options, o.destination) : pino(options);
}
