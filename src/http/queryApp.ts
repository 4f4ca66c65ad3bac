import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AnyAggregate } from '../core/aggregate.js';
import type { EventStore } from '../core/eventStore.js';
import type { MetricsText } from '../observe/cluster.js';
import type { Tracing } from '../observe/tracing.js';
import type { AppliedWaiter } from '../read/status.js';
import { viewLag } from '../read/viewLag.js';
import type { ViewsStatus } from '../read/viewsStatus.js';
import type { ViewReader } from '../read/viewStore.js';
import { historyQuery, sendHistory, sendState, StateQuery } from './aggregateReads.js';
import { customerTokenScheme, installQueryRateLimit, installReadAccess, policyIn, type RateLimitSettings, type ReadAccessSettings } from './access.js';
import { createHttpApp, notFound, readyViewsRoute, type HttpServerSettings } from './app.js';
import { IdParams } from './paging.js';
import type { QueryRoutes } from './queryRoutes.js';
import { installErrorHandling, installJsonParser, sendError } from './replies.js';
import { validatorCompiler } from './validation.js';

/** What converge's query routes need from the runtime they are registered for. */
export interface QueryRoutesOptions {
  readonly aggregates: readonly AnyAggregate[];
  readonly routes: readonly QueryRoutes[];
  readonly views: ViewReader;
  /** The event store, for the aggregates' history and state. */
  readonly store: EventStore;
  /** Who may read what (`http.tokens`, `http.readerTokens`, `http.readPolicy`, `http.customerTokenSecret`). */
  readonly access: ReadAccessSettings;
  readonly query: QuerySettings;
  /**
   * False while the views were built from another event store than the one this worker
   * uses (the projector has not reset them yet): view routes answer 503 rather than
   * serve the old store's documents.
   */
  readonly viewsBound?: () => boolean;
  /** Wakes a read waiting for `X-Min-Position` when the projector commits a batch; without it, the read looks again every 2 ms. */
  readonly applied?: AppliedWaiter;
}

/** The query settings (`query.*`). */
export interface QuerySettings {
  /** How long `X-Min-Position` waits by default, and at most. */
  readonly waitMs: number;
  readonly maxWaitMs: number;
  /** Most events a history page returns. */
  readonly maxPageSize: number;
  /** `/ready/views` answers 503 when a view's oldest unapplied commit is older. */
  readonly readyMaxLagMs: number;
  /** `Cache-Control: public, max-age=` of the document reads anyone may make; 0 sends `no-cache`. */
  readonly publicMaxAgeS: number;
}

/** How old the look at the store's head behind `X-View-Lag-Ms` may be (docs/architecture.md, "Staleness"). */
const LAG_LOOK_MS = 100;
/** How long a read without a budget waits for NATS to tell its view's lag; past it, the read goes without `X-View-Lag-Ms`. */
const LAG_WAIT_MS = 50;

export interface QueryAppOptions extends QueryRoutesOptions {
  readonly http: HttpServerSettings & { readonly queryRateLimit: RateLimitSettings };
  readonly log: FastifyBaseLogger;
  readonly isReady: () => boolean;
  /** The NATS server's version, for `/ready`. */
  readonly natsVersion?: () => string | undefined;
  /** What `/metrics` answers (see `HttpAppOptions.metrics`). */
  readonly metrics?: () => Promise<MetricsText>;
  readonly tracing?: Tracing;
  /** The latest status the host's projector published; undefined before the first. */
  readonly viewsStatus: () => ViewsStatus | undefined;
}

const Position = /^[0-9]{1,15}$/;

/** Where a view's route keeps, in its config, what converge's hooks need of it. */
const VIEW_ROUTE = Symbol('converge.viewRoute');

/** What converge's hooks need of a route that names its projection. */
interface ViewRoute {
  readonly projection: string;
  /** The `Cache-Control` of a 200 or 304, by method: from the route's read policy. */
  readonly cacheControl: Readonly<Record<string, string>>;
}

function viewRouteOf(request: FastifyRequest): ViewRoute | undefined {
  return (request.routeOptions.config as { [VIEW_ROUTE]?: ViewRoute })[VIEW_ROUTE];
}

/**
 * converge's query routes as a Fastify plugin (see docs/architecture.md, "HTTP"): the
 * views' routes, read-your-writes through `X-Min-Position` (or `?minPosition=`, with
 * `?waitMs=`), aggregate history and state as of a version from the event store, and read
 * access by route (`config: { access }`, overridden by `http.readPolicy`). Register it in
 * any Fastify app, with a prefix if you like; its query strings are coerced to the types
 * their schemas say whatever the host app's validator does.
 */
export function queryRoutes(opts: QueryRoutesOptions) {
  return async function convergeQueries(app: FastifyInstance): Promise<void> {
    app.setValidatorCompiler(validatorCompiler({ coerceTypes: true }));
    installJsonParser(app);
    installErrorHandling(app, 'invalid_query');
    installReadAccess(app, opts.access);
    const lag = viewLag(opts.store);
    // Document reads may be cached: by anyone for a while where anyone may read them, else only by the client, revalidating.
    const publicCache = opts.query.publicMaxAgeS > 0 ? `public, max-age=${opts.query.publicMaxAgeS}` : 'public, no-cache';
    // What the hooks need of a view's route, fixed as the route is added rather than looked up on every read.
    app.addHook('onRoute', (route) => {
      const projection = (route.config as { projection?: { name: string } } | undefined)?.projection?.name;
      if (projection === undefined) return;
      const cacheControl: Record<string, string> = {};
      // The policy read access gave the route as it was added (its hook runs first).
      for (const m of [route.method].flat()) cacheControl[m] = policyIn(route.config, m) === 'public' ? publicCache : 'private, no-cache';
      const viewRoute: ViewRoute = { projection, cacheControl };
      route.config = { ...route.config, [VIEW_ROUTE]: viewRoute } as typeof route.config;
    });

    /** Waits as `X-Min-Position` and `X-Max-Staleness` ask; true when it answered the request itself (504 or 503). */
    const awaitView = async (reply: FastifyReply, projection: string, wait: ReadWait): Promise<boolean> => {
      const deadline = Date.now() + wait.waitMs;
      const next = async () => {
        // Woken by the projector's nudge after its next batch; looks again after 25 ms anyway.
        if (opts.applied) await opts.applied.next(Math.max(1, Math.min(25, deadline - Date.now())));
        else await new Promise((r) => setTimeout(r, 2));
      };
      if (wait.minPosition !== undefined) {
        while (opts.views.position(projection) < wait.minPosition) {
          if (Date.now() >= deadline) {
            sendError(reply, 'not_caught_up', `${projection} has not reached position ${wait.minPosition} yet`, { position: opts.views.position(projection) });
            return true;
          }
          await next();
        }
      }
      // The lag from a look no older than `freshMs`, or null if NATS has not answered by `until`.
      const lagWithin = async (freshMs: number, until: number) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          return await Promise.race([lag.lagMs(opts.views.position(projection), freshMs), new Promise<null>((r) => (timer = setTimeout(() => r(null), Math.max(0, until - Date.now()))))]);
        } finally {
          clearTimeout(timer);
        }
      };
      // Without a budget a read waits at most LAG_WAIT_MS for NATS to say the lag, and then goes without it.
      let lagMs = wait.maxStalenessMs === undefined ? (lag.knownMs(opts.views.position(projection), LAG_LOOK_MS) ?? (await lagWithin(LAG_LOOK_MS, Date.now() + LAG_WAIT_MS))) : null;
      if (wait.maxStalenessMs !== undefined) {
        const budget = wait.maxStalenessMs;
        const within = async () => lag.knownMs(opts.views.position(projection), budget) ?? (await lagWithin(budget, deadline));
        lagMs = await within();
        while (lagMs === null || lagMs > budget) {
          if (Date.now() >= deadline) {
            if (lagMs !== null) reply.header('x-view-lag-ms', String(lagMs));
            sendError(reply, 'view_stale', `${projection} is ${lagMs === null ? 'an unknown time' : `${lagMs} ms`} behind the event store, more than the ${budget} ms X-Max-Staleness allows`, { lagMs });
            return true;
          }
          await next();
          lagMs = await within();
        }
      }
      if (lagMs !== null) reply.header('x-view-lag-ms', String(lagMs));
      return false;
    };
    // Callback hooks, which a read that waits for nothing passes without a promise. A hook that answers does not call `done`.
    app.addHook('preValidation', (request, reply, done) => {
      const projection = viewRouteOf(request)?.projection;
      if (projection && opts.viewsBound && !opts.viewsBound()) {
        sendError(reply, 'views_rebuilding', 'the views are being rebuilt from the event store converge now uses; retry shortly');
        return;
      }
      const wait = readWait(request, opts.query);
      if ('error' in wait) {
        sendError(reply, 'invalid_query', wait.error);
        return;
      }
      if (!projection) return done();
      // The common read: no position or budget to wait for, and the view's lag already known.
      const known = wait === NO_WAIT ? lag.knownMs(opts.views.position(projection), LAG_LOOK_MS) : undefined;
      if (known !== undefined) {
        reply.header('x-view-lag-ms', String(known));
        return done();
      }
      awaitView(reply, projection, wait).then(
        (answered) => (answered ? undefined : done()),
        (err: unknown) => done(err instanceof Error ? err : new Error(`waiting for ${projection} failed: ${String(err)}`)),
      );
    });
    app.addHook('onSend', (request, reply, payload, done) => {
      const cacheControl = viewRouteOf(request)?.cacheControl[request.method];
      if (cacheControl !== undefined && (reply.statusCode === 200 || reply.statusCode === 304) && !reply.hasHeader('cache-control')) reply.header('cache-control', cacheControl);
      done(null, payload);
    });
    for (const routes of opts.routes) await app.register(routes, { views: opts.views } as never);
    for (const aggregate of opts.aggregates) aggregateRoutes(app, aggregate, opts.store, opts.query.maxPageSize);
  };
}

/**
 * The query API: converge's query routes (`queryRoutes`) as a server of its own, with
 * `/ready/views`, a rate limit per client address (`http.queryRateLimit`), `/health`,
 * `/ready`, `/metrics` and `/docs`.
 */
export async function buildQueryApp(opts: QueryAppOptions): Promise<FastifyInstance> {
  const app = await createHttpApp({
    title: 'converge query API',
    log: opts.log,
    http: opts.http,
    validationCode: 'invalid_query',
    coerceTypes: true,
    isReady: opts.isReady,
    natsVersion: opts.natsVersion,
    securitySchemes: { customerToken: customerTokenScheme },
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
  });
  notFound(app);
  // A status older than a few intervals means the projector is not running (or cannot reach NATS).
  readyViewsRoute(app, opts.viewsStatus, { maxLagMs: opts.query.readyMaxLagMs, maxAgeMs: 5000 });
  // The limit first, so that it also counts requests read access refuses; both before the routes.
  await installQueryRateLimit(app, opts.http.queryRateLimit);
  await app.register(queryRoutes(opts));
  return app;
}

/** The longest `X-Max-Staleness` taken: a day. */
const MAX_STALENESS_MS = 86_400_000;
const Staleness = /^([0-9]{1,9})(ms|s)?$/;

/** What a read asks to wait for: a position (`X-Min-Position`), a staleness budget (`X-Max-Staleness`), and for how long. */
interface ReadWait {
  readonly minPosition?: number;
  readonly maxStalenessMs?: number;
  readonly waitMs: number;
}

/** A read that asks to wait for nothing (no position, no budget: its `waitMs` bounds nothing). */
const NO_WAIT: ReadWait = { waitMs: 0 };

/**
 * Reads `X-Min-Position` and `X-Max-Staleness`, and reads and removes `minPosition`/`waitMs`,
 * so route schemas need not know them; `NO_WAIT` when the read asks for neither.
 */
function readWait(request: FastifyRequest, query: QuerySettings): { error: string } | ReadWait {
  const q = (request.query ?? {}) as Record<string, unknown>;
  const raw = request.headers['x-min-position'] ?? q['minPosition'];
  const rawWait = q['waitMs'];
  const rawStaleness = request.headers['x-max-staleness'];
  if (raw === undefined && rawWait === undefined && rawStaleness === undefined) return NO_WAIT;
  delete q['minPosition'];
  delete q['waitMs'];
  if (raw !== undefined && (typeof raw !== 'string' || !Position.test(raw))) return { error: 'X-Min-Position must be a stream position (a whole number)' };
  if (rawWait !== undefined && (typeof rawWait !== 'string' || !Position.test(rawWait) || Number(rawWait) > query.maxWaitMs)) {
    return { error: `waitMs must be a whole number of milliseconds up to ${query.maxWaitMs}` };
  }
  let maxStalenessMs: number | undefined;
  if (rawStaleness !== undefined) {
    const m = typeof rawStaleness === 'string' ? Staleness.exec(rawStaleness.trim()) : null;
    maxStalenessMs = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : NaN;
    if (!(maxStalenessMs <= MAX_STALENESS_MS)) return { error: 'X-Max-Staleness must be a duration such as 500ms or 2s (a whole number, ms by default), at most a day' };
  }
  return {
    ...(raw === undefined ? {} : { minPosition: Number(raw) }),
    ...(maxStalenessMs === undefined ? {} : { maxStalenessMs }),
    waitMs: rawWait === undefined ? query.waitMs : Number(rawWait),
  };
}

/** `/<aggregates>/<id>/history` and `/<aggregates>/<id>/state?atVersion=`, read from the event store. */
function aggregateRoutes(app: FastifyInstance, aggregate: AnyAggregate, store: EventStore, maxPageSize: number): void {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.get(
    `/${aggregate.plural}/:id/history`,
    { schema: { tags: [aggregate.plural], params: IdParams, querystring: historyQuery(maxPageSize) } },
    async (request, reply) => sendHistory(reply, aggregate, store, request.params.id, request.query, maxPageSize),
  );
  typed.get(
    `/${aggregate.plural}/:id/state`,
    { schema: { tags: [aggregate.plural], params: IdParams, querystring: StateQuery } },
    async (request, reply) => sendState(reply, aggregate, store, request.params.id, request.query.atVersion),
  );
}
