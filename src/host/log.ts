import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from './config.js';

/**
 * What no log line may show: the `Authorization` header of a request (bearer and customer
 * tokens), and passwords, tokens and secrets wherever an object that holds them is logged
 * (`{ http: config.http }`, `{ nats: config.nats }`, a request's headers).
 */
export const redactedPaths: readonly string[] = [
  'req.headers.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'authorization',
  '*.authorization',
  'password',
  '*.password',
  'token',
  '*.token',
  'tokens',
  '*.tokens',
  'readerTokens',
  '*.readerTokens',
  'customerTokenSecret',
  '*.customerTokenSecret',
];

/**
 * The process logger: JSON lines on stdout (or `destination`), tagged with the process
 * role, with `redactedPaths` censored. The HTTP apps log through it.
 */
export function createLogger(config: Config, role: string, destination?: DestinationStream): Logger {
  const options = { level: config.logLevel, base: { role, pid: process.pid }, redact: { paths: [...redactedPaths], censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
