import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AnyAggregate } from '../core/aggregate.js';
import type { Config } from '../core/config.js';
import type { Context } from '@opentelemetry/api';
import type { MetricsText } from '../observe/cluster.js';
import type { Tracing } from '../observe/tracing.js';
import type { CommandEnvelope, CommandResult } from '../write/execute.js';
import { createHttpApp } from './app.js';
import { ErrorBody, IdParams } from './paging.js';
import { bearerAuth, sendError } from './replies.js';

export interface CommandAppOptions {
  readonly aggregates: readonly AnyAggregate[];
  /** Runs a command on its owner (see `CommandRouter.dispatch`), under the request's trace context when tracing is on. */
  readonly dispatch: (command: CommandEnvelope, parent?: Context) => Promise<CommandResult>;
  readonly http: Config['http'];
  readonly log: FastifyBaseLogger;
  /** True once the event store is reachable. */
  readonly isReady: () => boolean;
  /** The NATS server's version, for `/ready`. */
  readonly natsVersion?: () => string | undefined;
  /** True while the process drains for shutdown. */
  readonly isDraining: () => boolean;
  readonly now?: () => number;  /** What `/metrics` answers (see `HttpAppOptions.metrics`). */
  readonly metrics?: () => Promise<MetricsText>;
  readonly tracing?: Tracing;
}

const CommandHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' })),
  'if-match': Type.Optional(Type.String({ pattern: '^(W/)?"?[0-9]{1,15}"?$' })),
});
const Accepted = Type.Object({
  id: Type.String(),
  version: Type.Integer(),
  position: Type.Integer(),
  events: Type.Array(Type.String()),
});

/**
 * The command API: `POST /<aggregates>/<id>/<command>` for every command
 * of every aggregate, each validated by its own schema, plus `/health`, `/ready` and
 * `/docs` (OpenAPI).
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
    natsVersion: opts.natsVersion,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
  });
  app.setNotFoundHandler((request, reply) =>
    request.method === 'POST'
      ? sendError(reply, 'unknown_command', `no command at POST ${request.url.split('?')[0]}`)
      : sendError(reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`),
  );
  app.addHook('onRequest', async (request, reply) => {
    if (opts.isDraining() && !request.url.startsWith('/health')) {
      reply.header('connection', 'close');
      return sendError(reply, 'shutting_down', 'this worker is shutting down; retry shortly');
    }
  });

  await app.register(async (plugin) => {
    const commands = plugin.withTypeProvider<TypeBoxTypeProvider>();
    commands.addHook('onRequest', bearerAuth(opts.http.tokens));
    commands.addHook('preValidation', async (request) => {
      // Commands such as `open` take no body; a bodiless POST means `{}`.
      if (request.body === undefined || request.body === null) request.body = {};
    });
    for (const aggregate of opts.aggregates) {
      for (const [segment, spec] of Object.entries(aggregate.commands)) {
        commands.post(
          `/${aggregate.plural}/:id/${segment}`,
          {
            schema: {
              tags: [aggregate.plural],
              operationId: `${aggregate.name}.${spec.type}`,
              params: IdParams,
              headers: CommandHeaders,
              body: spec.schema,
              response: { 200: Accepted, '4xx': ErrorBody, '5xx': ErrorBody },
              ...(opts.http.tokens.length ? { security: [{ bearer: [] }] } : {}),
            },
          },
          async (request, reply) => {
            const ifMatch = request.headers['if-match'];
            const command: CommandEnvelope = {
              commandId: request.headers['idempotency-key'] ?? randomUUID(),
              aggregate: aggregate.name,
              id: request.params.id,
              type: spec.type,
              data: request.body,
              ...(ifMatch === undefined ? {} : { expectedVersion: Number(ifMatch.replace(/\D/g, '')) }),
              at: new Date(now()).toISOString(),
            };
            const result = await opts.dispatch(command, request.traceContext);
            switch (result.kind) {
              case 'accepted':
                reply.header('etag', `"${result.version}"`);
                return { id: result.id, version: result.version, position: result.position, events: [...result.events] };
              case 'rejected':
                return sendError(reply, 'rejected', `${spec.type} was rejected: ${result.reason}`, { reason: result.reason });
              case 'conflict':
                return sendError(reply, 'version_conflict', `${aggregate.name} ${command.id} is at version ${result.currentVersion}`, {
                  currentVersion: result.currentVersion,
                });
              default: {
                const never: never = result;
                throw new Error(`unhandled result ${JSON.stringify(never)}`);
              }
            }
          },
        );
      }
    }
  });
  return app;
}
