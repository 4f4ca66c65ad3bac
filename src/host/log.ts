import { pino, type Logger } from 'pino';
import type { Config } from '../core/config.js';

/** The process logger: JSON lines on stdout, tagged with the process role. */
export function createLogger(config: Config, role: string): Logger {
  return pino({ level: config.logLevel, base: { role, pid: process.pid } });
}
