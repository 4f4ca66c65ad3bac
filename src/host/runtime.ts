import { refusing } from '../nats/writeRefusals.js';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { pino, type Logger } from 'pino';
import type { AnyAggregate, CommandsOf, NameOf, RejectionOf, ServicesOf } from '../core/aggregate.js';
import type { AnyReactor, Reactor } from '../core/reactions.js';
import { systemClock, type Clock } from '../core/clock.js';
import { ConvergeError } from '../core/errors.js';
import type { EventStore } from '../core/eventStore.js';
import { buildCommandApp } from '../http/commandApp.js';
import { commandRoutes } from '../http/commandRoutes.js';
import { buildQueryApp, queryRoutes } from '../http/queryApp.js';
import { createMetrics, type Metrics } from '../observe/metrics.js';
import { createTracing } from '../observe/tracing.js';
import type { ViewsStatus } from '../read/viewsStatus.js';
import type { ViewReader } from '../read/viewStore.js';
import { commandEnvelope, type DispatchOptions } from '../write/envelope.js';
import { startAdmin } from './admin.js';
import { viewsOf, type ConvergeApp } from './app.js';
import { PROCESSES_VIEW } from '../react/processView.js';
import { LAST } from '../read/viewStore.js';
import { resolveConfig, type Config, type ConfigOverrides } from './config.js';
import { startReactionsSide } from './reactionsSide.js';
import { startReadSide } from './readSide.js';
import type { ReactionsHost } from '../react/host.js';
import { openStoreSide } from './storeSide.js';
import { startWriteSide } from './writeSide.js';
import { isArchivable } from '../core/archive.js';
import { personalDeclarations, type Forgotten } from '../core/personal.js';
import { forgetSubject } from '../lifecycle/forget.js';
import { FORGOTTEN_SUBJECT } from './writeSide.js';
import { canArchive, startArchiveSide } from './archiveSide.js';
import { archiveIndexOf, openHostViews } from './readSide.js';

/** A command as `dispatch` takes it: which aggregate instance, and the command. */
export type AppCommand<A extends AnyAggregate> = A extends AnyAggregate ? { readonly aggregate: NameOf<A>; readonly id: string } & CommandsOf<A> : never;

/** What `dispatch` answers: accepted with the commit's version and position, rejected with a reason, or a version conflict. */
export type DispatchResult<R extends string = string> =
  | { readonly kind: 'accepted'; readonly id: string; readonly version: number; readonly position: number; readonly events: readonly string[] }
  | { readonly kind: 'rejected'; readonly reason: R }
  | { readonly kind: 'conflict'; readonly currentVersion: number };

/**
 * The services an app is started with: what its aggregates' lookups and its reactors need,
 * together (`A` the union of its aggregates, `R` of its reactors).
 */
export type AppServices<A extends AnyAggregate, R extends AnyReactor = never> = UnionToIntersection<ServicesOf<A> | ReactorServicesOf<R>>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type ReactorServicesOf<R> = R extends Reactor<any, infer Svc> ? (unknown extends Svc ? never : Svc) : never;
type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/** How to run an app in this process. */
export interface ConvergeOptions<A extends AnyAggregate = AnyAggregate, R extends AnyReactor = never> {
  /**
   * Any configuration key over its default; a `Config` from `loadConfig()` works as it is.
   * With no `nats.url` the runtime keeps its events, views and snapshots in memory.
   */
  readonly config?: ConfigOverrides;
  /** The event store to run on when there is no `nats.url`: by default a fresh in-memory one; pass one to keep it across a restart. */
  readonly eventStore?: EventStore;
  /** What the aggregates' lookups and the reactors are given as `services`. */
  readonly services?: AppServices<A, R>;
  /** Where commands take their time; tests pass `manualClock(...)`. */
  readonly clock?: Clock;
  /** The logger; by default pino at `logLevel` on stdout. */
  readonly logger?: Logger;
  /** Keep prom-client metrics, served at `/metrics` by `listen`; off by default. */
  readonly metrics?: boolean;
}

/** What `Converge.archive` lets a caller do. */
export interface ArchiveControl {
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Archives what is due now, here; answers how many aggregates. 0 where the app archives nothing or another process holds the lease. */
  round(): Promise<number>;
}

/** Ports to serve on; 0 picks a free one. A port left out is not served. */
export interface ListenOptions {
  readonly commandPort?: number;
  readonly queryPort?: number;
  /** The admin API and console: on NATS only (subscribers, verify and partitions need it). */
  readonly adminPort?: number;
  /** `http.host` by default. */
  readonly host?: string;
}

/** Where `listen` serves: a base URL per API it was asked for. */
export interface Addresses {
  readonly command?: string;
  readonly query?: string;
  readonly admin?: string;
}

/** An app running in this process (see `createConverge`). */
export interface Converge<A extends AnyAggregate = AnyAggregate> {
  readonly config: Config;
  readonly store: EventStore;
  /** The views, typed by the projection read: `views.get(cartDetails, id)`. */
  readonly views: ViewReader;
  readonly clock: Clock;
  /**
   * Runs a command on its aggregate, as the command API would: checked against its schema
   * (an `InvalidCommandError` when it does not fit), its lookup, `decide` and the append.
   */
  dispatch(command: AppCommand<A>, options?: DispatchOptions): Promise<DispatchResult<RejectionOf<A>>>;
  /** Resolves once every view has applied `position` (a reply's `position`); `not_caught_up` after `timeoutMs` (`query.maxWaitMs`). */
  waitFor(position: number, options?: { readonly timeoutMs?: number }): Promise<void>;
  /**
   * Resolves once everything appended so far has been handled: every view has applied it,
   * every reactor and process has passed it, no timer is due on the runtime's clock, and
   * nothing new was appended meanwhile. What a test awaits after a command, or after moving
   * a `manualClock`, before it reads what the reactions did. Throws after `timeoutMs` (10 s),
   * naming what was still behind (a reaction stopped by its policy never catches up), and
   * `reaction_parked` when a reactor or process parked an input meanwhile (a handler that
   * threw, a process command the app does not have), unless `allowParked`.
   */
  settled(options?: { readonly timeoutMs?: number; readonly allowParked?: boolean }): Promise<void>;
  /** converge's command routes as a Fastify plugin: `app.register(converge.commandRoutes, { prefix: '/api' })`. */
  readonly commandRoutes: FastifyPluginAsync;
  /** converge's query routes (the app's view routes, history and state) as a Fastify plugin. */
  readonly queryRoutes: FastifyPluginAsync;
  /** Serves the command, query and admin APIs as servers of their own, each on the port given. */
  listen(options: ListenOptions): Promise<Addresses>;
  /** The projections, the notifier and the event store, as `/admin/projections` reports them. */
  status(): ViewsStatus;
  /**
   * The archiver (docs/architecture.md, "Archive"), when the app has anything to archive:
   * pause and resume it, or run a round now. Without NATS it runs in this runtime; on NATS
   * wherever its lease is held, and a pause holds for whichever process that is.
   */
  readonly archive: ArchiveControl;
  /**
   * Forgets a data subject (docs/architecture.md, "Forgetting"): deletes its key, so every
   * personal field sealed with it reads as `'[forgotten]'` wherever it is kept, records the
   * act, drops the actors and snapshots that held it, and rebuilds the views that may hold
   * personal data. `not_found` when the app declares no personal data.
   */
  forget(subject: string): Promise<Forgotten>;
  /** Drains: queued commands finish, servers close, then the views and the store. Never exits the process. */
  stop(): Promise<void>;
}

/**
 * Runs an app inside the caller's process: no cluster, no `process.exit`, no signal
 * handlers, and no port unless `listen` is called (see docs/architecture.md, "Running").
 * With no `nats.url` it runs on the in-memory event store, with views and snapshots in
 * memory; with one, on JetStream with LMDB views and snapshots under `dataDir`, partitions
 * owned by lease so that several processes may share the NATS, and notices for other
 * systems. Either way the store's contract is the same.
 *
 * ```ts
 * const converge = await createConverge(cartApp, { services: { prices } });
 * const placed = await converge.dispatch({ aggregate: 'cart', id, type: 'OpenCart', data: { clientId } });
 * if (placed.kind === 'accepted') await converge.waitFor(placed.position);
 * fastify.register(converge.commandRoutes, { prefix: '/api' });
 * ```
 */
export async function createConverge<A extends AnyAggregate, R extends AnyReactor = never>(app: ConvergeApp<A, R>, options: ConvergeOptions<A, R> = {}): Promise<Converge<A>> {
  const config = resolveConfig(options.config, app.settings);
  const log = options.logger ?? pino({ level: config.logLevel, base: { role: 'converge', pid: process.pid } });
  const clock = options.clock ?? systemClock;
  const tracing = createTracing(config.telemetry, 'converge');
  const metrics: Metrics | undefined = options.metrics ? createMetrics() : undefined;
  // Before the store: the archive's index lives beside the views.
  const hostViews = openHostViews(config, log);
  // What has started so far, newest first: a start that fails stops it all, so that a caller
  // who catches the error is left with no connection, lease or feed running. Newest first is
  // not quite `stop()`'s order (it drains the write side before the read side), which matters
  // only once commands flow.
  const undo: Array<() => unknown> = [() => hostViews.close(), () => tracing?.shutdown()];
  const step = async <T>(start: () => Promise<T>, stopIt: (started: T) => unknown): Promise<T> => {
    try {
      const started = await start();
      undo.unshift(() => stopIt(started));
      return started;
    } catch (err) {
      for (const u of undo) await Promise.resolve().then(u).catch((e: unknown) => log.warn({ err: e }, 'converge did not start, and stopping what had started failed'));
      throw err;
    }
  };
  const side = await step(() => openStoreSide({
    config,
    log,
    name: 'converge',
    streams: 'create',
    notices: true,
    appends: true,
    tracing,
    ...(options.eventStore ? { memory: options.eventStore } : {}),
    ...(metrics ? { onReconnect: () => metrics.natsReconnected() } : {}),
    ...(canArchive(app) ? { archive: (stream: string) => archiveIndexOf(hostViews, stream, true) } : {}),
    personal: personalDeclarations(app.aggregates),
  }), (s) => s.close());
  const { store, link } = side;
  const write = await step(
    () => startWriteSide({ config, log, app, store, link, streamId: side.streamId, services: options.services, metrics, tracing, keys: side.keys }),
    async (w) => {
      try {
        await w.stop();
      } finally {
        await w.snapshots.close();
      }
    },
  );
  // The reactions start after the read side, whose views hold their timers; its batches wake them.
  let reactions: ReactionsHost | undefined;
  const archived = side.index ? { raw: side.raw, index: side.index } : undefined;
  const read = await step(
    () => startReadSide({ config, log, app, store, link, views: hostViews, archive: archived, forget: side.keys ? { keys: side.keys, raw: side.raw } : undefined, streamId: side.streamId, head: side.head, notify: true, tracing, now: () => clock.now(), onApplied: () => reactions?.applied() }),
    (r) => r.stop(),
  );
  reactions = await step(() => startReactionsSide({
    config,
    log,
    app,
    store,
    link,
    views: read.views,
    streamId: side.streamId,
    dispatch: write.dispatch,
    clock,
    services: options.services,
    owner: `${config.cluster.hostId}.${process.pid}`,
    ...(metrics ? { onTimerFired: metrics.timerFired } : {}),
  }), (r) => r.stop());
  const running = reactions;
  const raw = archived?.raw;
  const archiving =
    archived && raw && isArchivable(raw)
      ? await step(() => startArchiveSide({ config, log, app, raw, index: archived.index, streamId: side.streamId, views: read.views, link, clock, owner: `${config.cluster.hostId}.${process.pid}` }), (a) => a.stop())
      : undefined;
  const status = (): ViewsStatus => ({
    ...read.status(),
    reactions: running.status(),
    reactionsHolder: running.holder() ?? null,
    ...(archiving ? { archive: archiving.status() } : {}),
  });
  const now = () => clock.now();
  const commands = commandRoutes({ aggregates: app.aggregates, dispatch: write.dispatch, tokens: config.http.tokens, now });
  const routesOptions = { aggregates: app.aggregates, routes: app.routes ?? [], views: read.views, store, access: config.http, query: config.query, applied: read.applied };
  const queries = queryRoutes(routesOptions);
  const servers: FastifyInstance[] = [];
  const byName = new Map(app.aggregates.map((a) => [a.name, a]));

  const dispatch = async (command: AppCommand<A>, opts: DispatchOptions = {}) => {
    const envelope = commandEnvelope(byName, command, opts, clock.now());
    return (await write.dispatch(envelope)) as DispatchResult<RejectionOf<A>>;
  };

  const waitFor = async (position: number, opts: { timeoutMs?: number } = {}) => {
    const deadline = Date.now() + (opts.timeoutMs ?? config.query.maxWaitMs);
    const behind = () => (app.projections ?? []).filter((p) => read.views.position(p) < position);
    for (let lagging = behind(); lagging.length > 0; lagging = behind()) {
      if (Date.now() >= deadline) {
        throw new ConvergeError('not_caught_up', `${lagging.map((p) => p.name).join(', ')} had not reached position ${position} in time`);
      }
      await read.applied.next(Math.max(1, Math.min(25, deadline - Date.now())));
    }
  };

  const views = viewsOf(app);
  const processesView = views.find((v) => v.name === PROCESSES_VIEW);
  /** What is still to do at `head`, in words; empty when nothing is. */
  const behindAt = (head: number): string[] => [
    ...views.filter((v) => read.views.position(v) < head).map((v) => `view ${v.name} at ${read.views.position(v)}`),
    ...(running.running() ? running.status().filter((r) => r.position < head).map((r) => `${r.kind} ${r.name} at ${r.position} (${r.state}${r.error ? `: ${r.error}` : ''})`) : []),
    ...(processesView && running.running() && read.views.scanIndex(processesView, ['due'], ['due', clock.now(), LAST], 1).length > 0 ? ['a timer due'] : []),
  ];
  const parkedNow = async () =>
    new Map(running.running() ? (await running.parked()).map((p) => [`${p.reaction}/${p.position}/${p.eventIndex}`, p] as const) : []);
  const settled = async (opts: { timeoutMs?: number; allowParked?: boolean } = {}) => {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const parkedBefore = opts.allowParked ? undefined : await parkedNow();
    for (;;) {
      const head = (await store.head()).lastPosition;
      const behind = behindAt(head);
      if (behind.length === 0 && (await store.head()).lastPosition === head) {
        if (!parkedBefore) return;
        const fresh = [...(await parkedNow())].filter(([key]) => !parkedBefore.has(key)).map(([, p]) => p);
        if (fresh.length === 0) return;
        const listed = fresh.slice(0, 3).map((p) => `${p.reaction} parked ${p.type} at ${p.position}: ${p.error}`);
        throw new ConvergeError('reaction_parked', `settled, but ${fresh.length} reaction input(s) were parked meanwhile: ${listed.join('; ')}${fresh.length > 3 ? '; …' : ''}`);
      }
      if (Date.now() >= deadline) throw new ConvergeError('not_caught_up', `not settled within ${timeoutMs} ms at position ${head}: ${behind.join('; ') || 'commits still arriving'}`);
      await read.applied.next(Math.max(1, Math.min(10, deadline - Date.now())));
    }
  };

  const listen = async (ports: ListenOptions): Promise<Addresses> => {
    const host = ports.host ?? config.http.host;
    const common = { log, http: config.http, natsVersion: () => link?.nc.info?.version, ...(metrics ? { metrics: metricsText(metrics) } : {}), ...(tracing ? { tracing } : {}) };
    const out: { command?: string; query?: string; admin?: string } = {};
    const serve = async (name: keyof Addresses, server: FastifyInstance, port: number) => {
      servers.push(server);
      await server.listen({ host, port });
      out[name] = `http://${host.includes(':') ? `[${host}]` : host}:${(server.server.address() as AddressInfo).port}`;
    };
    if (ports.commandPort !== undefined) {
      const server = await buildCommandApp({ ...common, aggregates: app.aggregates, dispatch: write.dispatch, isReady: () => !stopping && (link?.isConnected() ?? true), notReady: () => (link ? refusing(link) : undefined), isDraining: () => stopping !== undefined, now });
      await serve('command', server, ports.commandPort);
    }
    if (ports.queryPort !== undefined) {
      const server = await buildQueryApp({ ...common, ...routesOptions, http: config.http, isReady: () => !stopping, viewsStatus: status });
      await serve('query', server, ports.queryPort);
    }
    if (ports.adminPort !== undefined) {
      if (!link) throw new ConvergeError('not_ready', 'the admin API needs NATS (nats.url): its subscribers, verify and partitions live there');
      const admin = await startAdmin({ config, log, app, link, store, read, status, reactions: running, archive: archiving, archived, forget: side.keys ? forget : undefined, tracing, ...(metrics ? { metrics: metricsText(metrics) } : {}) });
      servers.push(admin.app);
      await admin.app.listen({ host, port: ports.adminPort });
      out.admin = `http://${host}:${(admin.app.server.address() as AddressInfo).port}`;
      stopAdmin.push(admin.stop);
    }
    return out;
  };
  const stopAdmin: Array<() => void> = [];

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // The reactions send commands through the write side: they stop first.
      await running.stop();
      await archiving?.stop();
      await write.stop();
      for (const s of stopAdmin) s();
      const forced = setTimeout(() => servers.forEach((s) => s.server.closeAllConnections()), Math.min(config.cluster.shutdownTimeoutMs, 2000));
      await Promise.all(servers.map((s) => s.close()));
      clearTimeout(forced);
      await read.stop();
      await side.close();
      await write.snapshots.close();
      await read.views.close();
      await tracing?.shutdown();
    })());

  const forget = async (subject: string): Promise<Forgotten> => {
    if (!side.keys) throw new ConvergeError('not_found', 'this app declares no personal data: there is nothing to forget');
    const done = await forgetSubject({ keys: side.keys, store, subject, at: clock.now() });
    // Every worker drops what it holds of the subject; the views follow the record.
    if (link) link.nc.publish(FORGOTTEN_SUBJECT, JSON.stringify({ keyIds: [done.keyId] }));
    else await write.forgotten([done.keyId]);
    return done;
  };
  const archive: ArchiveControl = {
    pause: async () => archiving?.pause(),
    resume: async () => archiving?.resume(),
    round: async () => (archiving?.running() ? archiving.archiver.round() : 0),
  };
  return { config, store, views: read.views, clock, dispatch, waitFor, settled, commandRoutes: commands, queryRoutes: queries, listen, status, archive, forget, stop };
}

function metricsText(metrics: Metrics) {
  return async () => ({ contentType: metrics.registry.contentType, text: await metrics.registry.metrics() });
}
