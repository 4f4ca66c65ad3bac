import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AnyAggregate } from '../core/aggregate.js';
import { EventStoreUnavailableError } from '../core/errors.js';
import type { EventStore } from '../core/eventStore.js';
import type { MetricsText } from '../observe/cluster.js';
import type { Tracing } from '../observe/tracing.js';
import type { Subscribers } from '../integration/subscribers.js';
import type { ProjectionRunner } from '../read/runner.js';
import type { ViewsStatus } from '../read/viewsStatus.js';
import type { VerifyReport } from '../read/verify.js';
import type { ViewStore } from '../read/viewStore.js';
import type { PartitionOwners } from '../write/leases.js';
import { historyQuery, sendHistory, sendState, StateQuery } from './aggregateReads.js';
import { createHttpApp, type HttpServerSettings, notFound, readyViewsRoute } from './app.js';
import { consoleRoutes } from './console/routes.js';
import { IdParams } from './paging.js';
import { statusStream } from './statusStream.js';
import { reactionRoutes } from './reactionRoutes.js';
import type { ReactionsHost } from '../react/host.js';
import { bearerAuth, sendError } from './replies.js';
import { archiveRoutes, forgetRoutes, type ArchiveAdmin, type ForgetAnswer } from './archiveRoutes.js';

export interface AdminAppOptions {
  readonly runner: ProjectionRunner;
  /** The app's aggregates, for the event browser's history and state reads. */
  readonly aggregates: readonly AnyAggregate[];
  readonly subscribers: Subscribers;
  readonly views: ViewStore;
  readonly store: EventStore;
  readonly http: HttpServerSettings & { readonly tokens: readonly string[] };
  readonly log: FastifyBaseLogger;
  readonly isReady: () => boolean;
  readonly viewsStatus: () => ViewsStatus;
  readonly readyMaxLagMs: number;
  /** How often `GET /admin/events` pushes the status (`projections.statusIntervalMs`). */
  readonly statusIntervalMs: number;
  /** Most events one history page returns (`query.maxPageSize`). */
  readonly maxPageSize: number;
  /** The NATS server's version, for `/ready`. */
  readonly natsVersion?: () => string | undefined;
  /** Compares the views with a fold of the event store (see `verifyViews`). */
  readonly verify: (opts: { sample?: number }) => Promise<VerifyReport>;
  /** What `/metrics` answers (see `HttpAppOptions.metrics`). */
  readonly metrics?: () => Promise<MetricsText>;
  readonly tracing?: Tracing;
  /** Who runs each partition: this host's workers, or the lease holders of every host. */
  readonly partitions: () => Promise<PartitionOwners>;
  /** The reactors and processes (a read replica has none). */
  readonly reactions?: ReactionsHost;
  /** The archive, when the app has anything to archive (a read replica has no archiver). */
  readonly archive?: ArchiveAdmin;
  /** Forgets a data subject, when the app declares personal data. */
  readonly forget?: (subject: string) => Promise<ForgetAnswer>;
}

const ProjectionParams = Type.Object({ name: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
const Name = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });
const SubscriberParams = Type.Object({ name: Name });
const AggregateRef = Type.Object(
  { aggregate: Type.String({ pattern: '^[a-z]{1,32}$' }), id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) },
  { additionalProperties: false },
);
const RepublishBody = Type.Union([
  Type.Object({ since: Type.String({ format: 'date-time' }) }, { additionalProperties: false }),
  Type.Object({ sincePosition: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
  Type.Object({ ids: Type.Array(AggregateRef, { minItems: 1, maxItems: 1000 }) }, { additionalProperties: false }),
]);
const VerifyBody = Type.Object({ sample: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false });
const PositionParams = Type.Object({ position: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) });
const AggregateParams = Type.Object({ aggregate: Name, id: IdParams.properties.id });
const ParkedParams = Type.Object({
  projection: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
  position: Type.Integer({ minimum: 1 }),
  eventIndex: Type.Integer({ minimum: 0 }),
});

/**
 * The projector's admin API (bearer token when tokens are configured): projection
 * status and lag (also as server-sent events), rebuilds, resuming a stopped projection,
 * parked events, the subscribing systems with their re-publishes, verifying the views
 * against the event store, and an event browser (a commit by position, an aggregate's
 * history and state). The console page at `/` is its client in a browser.
 */
export async function buildAdminApp(opts: AdminAppOptions): Promise<FastifyInstance> {
  const app = await createHttpApp({
    title: 'converge admin API',
    log: opts.log,
    http: opts.http,
    validationCode: 'invalid_request',
    coerceTypes: true,
    isReady: opts.isReady,
    natsVersion: opts.natsVersion,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
  });
  notFound(app);
  readyViewsRoute(app, () => opts.viewsStatus(), { maxLagMs: opts.readyMaxLagMs });
  await consoleRoutes(app);
  const events = statusStream(app, () => opts.viewsStatus(), opts.statusIntervalMs);
  const aggregateOf = (name: string) => opts.aggregates.find((a) => a.plural === name || a.name === name);
  await app.register(async (plugin) => {
    const admin = plugin.withTypeProvider<TypeBoxTypeProvider>();
    admin.addHook('onRequest', bearerAuth(opts.http.tokens));
    // The API docs show which routes want the token (and the page's Authorize button sends it).
    if (opts.http.tokens.length > 0) admin.addHook('onRoute', (route) => void (route.schema = { ...route.schema, security: [{ bearer: [] }] }));
    const known = (name: string) => opts.runner.status().some((s) => s.name === name);

    admin.get('/admin/projections', async () => opts.viewsStatus());
    admin.get('/admin/partitions', async () => {
      try {
        return await opts.partitions();
      } catch (err) {
        throw new EventStoreUnavailableError('the partition leases cannot be read', { cause: err });
      }
    });
    admin.get('/admin/events', events);
    admin.post('/admin/projections/:name/rebuild', { schema: { params: ProjectionParams } }, async (request, reply) => {
      if (!known(request.params.name)) return sendError(reply, 'unknown_projection', `no projection named ${request.params.name}`);
      opts.runner.rebuild(request.params.name).catch((err: unknown) => request.log.error({ err }, 'rebuild failed'));
      return reply.code(202).send({ projection: request.params.name, state: 'rebuilding' });
    });
    admin.post('/admin/projections/:name/resume', { schema: { params: ProjectionParams } }, async (request, reply) => {
      if (!known(request.params.name)) return sendError(reply, 'unknown_projection', `no projection named ${request.params.name}`);
      opts.runner.resume(request.params.name);
      return opts.runner.status().find((s) => s.name === request.params.name);
    });
    // Answers when the whole comparison is done: on a large store that takes as long as a rebuild.
    admin.post(
      '/admin/verify',
      {
        schema: { body: VerifyBody },
        // `curl -X POST` with no body at all asks for the default: every document.
        preValidation: async (request) => void (request.body ??= {}),
      },
      async (request) =>
        opts.verify(request.body.sample === undefined ? {} : { sample: request.body.sample }),
    );

    admin.get('/admin/subscribers', async () => ({ subscribers: await opts.subscribers.list() }));
    admin.post(
      '/admin/subscribers',
      {
        schema: {
          body: Type.Object(
            { name: Name, from: Type.Optional(Type.Union([Type.Literal('new'), Type.Literal('all')])) },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => reply.code(201).send(await opts.subscribers.add(request.body.name, request.body.from ?? 'new')),
    );
    admin.delete('/admin/subscribers/:name', { schema: { params: SubscriberParams } }, async (request) => {
      await opts.subscribers.remove(request.params.name);
      return { removed: request.params.name };
    });
    admin.post('/admin/subscribers/:name/republish', { schema: { params: SubscriberParams, body: RepublishBody } }, async (request) =>
      opts.subscribers.republish(request.params.name, request.body),
    );

    admin.get(
      '/admin/parked',
      { schema: { querystring: Type.Object({ projection: Type.Optional(Type.String({ maxLength: 64 })) }, { additionalProperties: false }) } },
      async (request) => ({ parked: opts.views.parked(request.query.projection) }),
    );
    admin.post('/admin/parked/:projection/:position/:eventIndex/retry', { schema: { params: ParkedParams } }, async (request, reply) => {
      const { projection, position, eventIndex } = request.params;
      if (!opts.views.parked(projection).some((p) => p.position === position && p.eventIndex === eventIndex)) {
        return sendError(reply, 'not_parked', `no parked event ${projection}/${position}/${eventIndex}`);
      }
      const commit = await opts.store.commitAt(position);
      if (!commit) return sendError(reply, 'commit_not_found', `no commit at position ${position}`);
      try {
        opts.runner.retryParked(projection, commit, eventIndex);
      } catch (err) {
        return sendError(reply, 'still_failing', `the fold failed again: ${err instanceof Error ? err.message : String(err)}`);
      }
      return { retried: { projection, position, eventIndex } };
    });
    admin.delete('/admin/parked/:projection/:position/:eventIndex', { schema: { params: ParkedParams } }, async (request) => {
      const { projection, position, eventIndex } = request.params;
      opts.views.unpark(projection, position, eventIndex);
      return { dropped: { projection, position, eventIndex } };
    });

    if (opts.reactions) await plugin.register(reactionRoutes(opts.reactions));
    if (opts.archive) await plugin.register(archiveRoutes(opts.archive));
    if (opts.forget) await plugin.register(forgetRoutes(opts.forget));

    // The event browser: the same reads the query API offers, for any aggregate, behind the admin token.
    admin.get('/admin/commits/:position', { schema: { params: PositionParams } }, async (request, reply) => {
      const commit = await opts.store.commitAt(request.params.position);
      if (!commit) return sendError(reply, 'commit_not_found', `no commit at position ${request.params.position}`);
      const { storedAt, ...rest } = commit;
      const upcast = aggregateOf(commit.aggregate)?.upcast;
      return { ...rest, storedAt: new Date(storedAt).toISOString(), events: upcast ? commit.events.map((e) => upcast(e)) : commit.events };
    });
    admin.get('/admin/aggregates', async () => ({ aggregates: opts.aggregates.map((a) => ({ name: a.name, plural: a.plural })) }));
    admin.get(
      '/admin/aggregates/:aggregate/:id/history',
      { schema: { params: AggregateParams, querystring: historyQuery(opts.maxPageSize) } },
      async (request, reply) => {
        const aggregate = aggregateOf(request.params.aggregate);
        if (!aggregate) return sendError(reply, 'unknown_aggregate', `no aggregate named ${request.params.aggregate}`);
        return sendHistory(reply, aggregate, opts.store, request.params.id, request.query, opts.maxPageSize);
      },
    );
    admin.get('/admin/aggregates/:aggregate/:id/state', { schema: { params: AggregateParams, querystring: StateQuery } }, async (request, reply) => {
      const aggregate = aggregateOf(request.params.aggregate);
      if (!aggregate) return sendError(reply, 'unknown_aggregate', `no aggregate named ${request.params.aggregate}`);
      return sendState(reply, aggregate, opts.store, request.params.id, request.query.atVersion);
    });
  });
  return app;
}
