import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { EventStore } from '../core/eventStore.js';
import { buildAdminApp } from '../http/adminApp.js';
import type { ArchiveAdmin, ForgetAnswer } from '../http/archiveRoutes.js';
import { subscribers, type Subscribers } from '../integration/subscribers.js';
import type { NatsLink } from '../nats/connection.js';
import type { MetricsText } from '../observe/cluster.js';
import type { Tracing } from '../observe/tracing.js';
import type { LmdbViewStore } from '../read/lmdbViews.js';
import { verifyViews, type VerifyOptions } from '../read/verify.js';
import { readLeaseOwners, staticOwners } from '../write/leases.js';
import { viewsOf, type ConvergeApp } from './app.js';
import type { Config } from './config.js';
import type { ReadSide } from './readSide.js';
import type { ReactionsHost } from '../react/host.js';
import type { ViewsStatus } from '../read/viewsStatus.js';

/** The admin API over a read side on NATS, and the subscribing systems' registry it manages. */
export interface Admin {
  readonly app: FastifyInstance;
  readonly subscribers: Subscribers;
  /** Ends the verifies under way (they can run for minutes); the caller closes the app. */
  stop(): void;
}

/**
 * Builds the admin API (not listening yet) for a read side whose views are in LMDB on NATS:
 * projections, rebuilds, parked events, subscribers and re-publishes, verify, partitions and
 * the event browser (see docs/architecture.md, "HTTP").
 */
export async function startAdmin(opts: {
  readonly config: Config;
  readonly log: Logger;
  readonly app: ConvergeApp;
  readonly link: NatsLink;
  readonly store: EventStore;
  readonly read: ReadSide;
  /** The views' status with the reactions'. */
  readonly status: () => ViewsStatus;
  /** The reactors and processes, where this runtime runs them. */
  readonly reactions?: ReactionsHost | undefined;
  /** The archive, where this runtime has an archiver. */
  readonly archive?: ArchiveAdmin | undefined;
  /** The archive's index and the store as it is, where the store is read through an archive: verify checks the archive too. */
  readonly archived?: VerifyOptions['archive'];
  /** Forgets a data subject, when the app declares personal data. */
  readonly forget?: ((subject: string) => Promise<ForgetAnswer>) | undefined;
  readonly tracing?: Tracing | undefined;
  readonly metrics?: () => Promise<MetricsText>;
}): Promise<Admin> {
  const { config, log, app, link, store, read } = opts;
  const registry = subscribers(link, store);
  // A verify can run for minutes; stopping ends it rather than waiting.
  const stopVerifies = new AbortController();
  const { partitions, workers, hostId } = config.cluster;
  const views = read.views as LmdbViewStore;
  const adminApp = await buildAdminApp({
    partitions: () => (config.cluster.ownership === 'leases' ? readLeaseOwners(link, partitions) : Promise.resolve(staticOwners(hostId, workers, partitions))),
    runner: read.runner,
    aggregates: app.aggregates,
    subscribers: registry,
    views,
    store,
    http: config.http,
    log,
    isReady: link.isConnected,
    natsVersion: () => link.nc.info?.version,
    viewsStatus: opts.status,
    ...(opts.reactions ? { reactions: opts.reactions } : {}),
    ...(opts.archive ? { archive: opts.archive } : {}),
    ...(opts.forget ? { forget: opts.forget } : {}),
    readyMaxLagMs: config.query.readyMaxLagMs,
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
    statusIntervalMs: config.projections.statusIntervalMs,
    maxPageSize: config.query.maxPageSize,
    verify: ({ sample }) =>
      verifyViews({ store, views, aggregates: app.aggregates, projections: viewsOf(app), log, signal: stopVerifies.signal, ...(sample === undefined ? {} : { sample }), ...(opts.archived ? { archive: opts.archived } : {}) }),
  });
  return { app: adminApp, subscribers: registry, stop: () => stopVerifies.abort() };
}
