import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LogFn } from 'pino';

/**
 * A request's logger (`request.log`), made into pino's child logger, with the request's
 * id, only when the request logs something. Fastify makes one child per request, and
 * pino's child runs the process logger's redaction over its bindings: under the command
 * bench that was 1.5% of a worker's CPU, for requests that almost never log (see
 * docs/architecture.md, "HTTP").
 */
class RequestLog implements FastifyBaseLogger {
  #child: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  get real(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.#child?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: string) {
    this.real.level = level;
  }

  declare fatal: LogFn;
  declare error: LogFn;
  declare warn: LogFn;
  declare info: LogFn;
  declare debug: LogFn;
  declare trace: LogFn;
  declare silent: LogFn;

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(bindings, options);
  }
}

// On the prototype, so that a request's logger is one small object.
for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const) {
  RequestLog.prototype[level] = function (this: RequestLog, ...args: unknown[]) {
    const real = this.real;
    (real[level] as (...a: unknown[]) => void).apply(real, args);
  } as LogFn;
}

/** Fastify's `childLoggerFactory` for `RequestLog`. */
export function requestLog(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new RequestLog(parent, bindings, options);
}
