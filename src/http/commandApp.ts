import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { AnyAggregate } from '../core/aggregate.js';
import type { Context } from '@opentelemetry/api';
import type { MetricsText } from '../observe/cluster.js';
import type { Tracing } from '../observe/tracing.js';
import type { CommandEnvelope, CommandResult } from '../write/execute.js';
import { createHttpApp, type HttpServerSettings } from './app.js';
import { commandRoutes } from './commandRoutes.js';
import { sendError } from './replies.js';

export interface CommandAppOptions {
  readonly aggregates: readonly AnyAggregate[];
  /** Runs a command on its owner (see `CommandRouter.dispatch`), under the request's trace context when tracing is on. */
  readonly dispatch: (command: CommandEnvelope, parent?: Context) => Promise<CommandResult>;
  readonly http: HttpServerSettings & { readonly tokens: readonly string[] };
  readonly log: FastifyBaseLogger;
  /** True once the event store is reachable. */
  readonly isReady: () => boolean;
  /** See `HttpAppOptions.notReady`. */
  readonly notReady?: () => string | undefined;
  /** The NATS server's version, for `/ready`. */
  readonly natsVersion?: () => string | undefined;
  /** True while the process drains for shutdown. */
  readonly isDraining: () => boolean;
  readonly now?: () => number;
  /** What `/metrics` answers (see `HttpAppOptions.metrics`). */
  readonly metrics?: () => Promise<MetricsText>;
  readonly tracing?: Tracing;
}

/**
 * The command API: converge's command routes (`commandRoutes`) as a server of its own,
 * plus `/health`, `/ready`, `/metrics` and `/docs` (OpenAPI).
 */
export async function buildCommandApp(opts: CommandAppOptions): Promise<FastifyInstance> {
  const now = opts.now ?? Date.now;
  const app = await createHttpApp({
    title: 'converge command API',
    log: opts.log,
    http: opts.http,
    validationCode: 'invalid_command',
    coerceTypes: false,
    isReady: opts.isReady,
    ...(opts.notReady ? { notReady: opts.notReady } : {}),
    natsVersion: opts.natsVersion,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
  });
  app.setNotFoundHandler((request, reply) =>
    request.method === 'GET' || request.method === 'HEAD'
      ? sendError(reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`)
      : sendError(reply, 'unknown_command', `no command at ${request.method} ${request.url.split('?')[0]}`),
  );
  app.addHook('onRequest', async (request, reply) => {
    if (opts.isDraining() && !request.url.startsWith('/health')) {
      reply.header('connection', 'close');
      return sendError(reply, 'shutting_down', 'this worker is shutting down; retry shortly');
    }
  });
  await app.register(commandRoutes({ aggregates: opts.aggregates, dispatch: opts.dispatch, tokens: opts.http.tokens, now }));
  return app;
}
