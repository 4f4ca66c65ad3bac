import cluster from 'node:cluster';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Notifier } from '../integration/notifier.js';
import type { NatsLink } from '../nats/connection.js';
import { clusterMetricsReader } from '../observe/cluster.js';
import { createMetrics, watchArchive, watchReactions, watchReadSide, type Metrics } from '../observe/metrics.js';
import { createTracing } from '../observe/tracing.js';
import type { LmdbViewStore } from '../read/lmdbViews.js';
import type { ProjectionRunner } from '../read/runner.js';
import { nudgeApplied, publishViewsStatus, viewsAppliedSubject, viewsStatusSubject } from '../read/status.js';
import { startAdmin } from './admin.js';
import type { ConvergeApp } from './app.js';
import type { Config } from './config.js';
import { viewsPath } from './paths.js';
import { startReadSide } from './readSide.js';
import { startReactionsSide } from './reactionsSide.js';
import { systemClock } from '../core/clock.js';
import type { ReactionsHost } from '../react/host.js';
import type { ViewsStatus } from '../read/viewsStatus.js';
import { createForwarder } from '../write/router.js';
import { openStoreSide } from './storeSide.js';
import { isArchivable } from '../core/archive.js';
import { personalDeclarations } from '../core/personal.js';
import { forgetSubject } from '../lifecycle/forget.js';
import { FORGOTTEN_SUBJECT } from './writeSide.js';
import { canArchive, startArchiveSide } from './archiveSide.js';
import { archiveIndexOf, openWriterViews } from './readSide.js';
import { METRICS_TIMEOUT_MS } from './worker.js';

/** The host's projector: the only writer of its LMDB views, the notifier, and the admin API. */
export interface Projector {
  readonly link: NatsLink;
  readonly views: LmdbViewStore;
  readonly runner: ProjectionRunner;
  /** The notifier; a read replica has none, since the command hosts' projectors announce every commit. */
  readonly notifier?: Notifier;
  readonly adminApp: FastifyInstance;
  /** This process's metrics: the read side's gauges (the cluster's are summed by the primary). */
  readonly metrics: Metrics;
  stop(): Promise<void>;
}

/**
 * Starts the host's projector: the in-process runtime's read side (every projection catches
 * up from its checkpoint, then follows `EVENTS` live, and the notifier), its status published
 * to the host's query workers, and the admin API.
 */
export async function startProjector(config: Config, log: Logger, app: ConvergeApp, services?: unknown): Promise<Projector> {
  // Before connecting, which waits for NATS: the primary collects every child's registry, also during an outage.
  const metrics = createMetrics();
  const readMetrics = clusterMetricsReader(metrics.registry, METRICS_TIMEOUT_MS);
  const tracing = createTracing(config.telemetry, 'projector');
  // A read replica follows the command hosts' stream and announces nothing: a notifier behind
  // theirs would put older notices over newer ones in NOTIFY, which keeps one per aggregate.
  const readReplica = config.cluster.role === 'read-replica';
  // Before the store: the archive's index lives beside the views.
  const views = openWriterViews(config, log);
  const side = await openStoreSide({
    config,
    log,
    name: 'converge-projector',
    streams: readReplica ? 'await' : 'create',
    notices: !readReplica,
    tracing,
    onReconnect: () => metrics.natsReconnected(),
    ...(canArchive(app) ? { archive: (stream: string) => archiveIndexOf(views, stream, true) } : {}),
    personal: personalDeclarations(app.aggregates),
  }).catch(async (err: unknown) => {
    await views.close();
    throw err;
  });
  const { store } = side;
  const link = side.link!;
  const nudge = nudgeApplied(link, viewsAppliedSubject(config.cluster.hostId, viewsPath(config)));
  // Set once the reactions start, after the read side whose batches wake their timers.
  let reactionsHost: ReactionsHost | undefined;
  const read = await startReadSide({
    config,
    log,
    app,
    store,
    link,
    views,
    archive: side.index ? { raw: side.raw, index: side.index } : undefined,
    forget: side.keys ? { keys: side.keys, raw: side.raw } : undefined,
    streamId: side.streamId,
    head: side.head,
    notify: !readReplica,
    tracing,
    onApplied: () => {
      nudge();
      reactionsHost?.applied();
    },
    // A restarted projector resets the views at start, so under the cluster primary it exits to be restarted.
    onStoreChanged: () => {
      if (cluster.isWorker) process.exit(75);
    },
  });
  // A read replica runs no reactions: the command hosts' projectors do, under their lease.
  const reactions = readReplica
    ? undefined
    : await startReactionsSide({
        config,
        log,
        app,
        store,
        link,
        views: read.views,
        streamId: side.streamId,
        dispatch: createForwarder({ link, partitions: config.cluster.partitions, timeoutMs: config.nats.requestTimeoutMs, log }),
        clock: systemClock,
        services,
        owner: `${config.cluster.hostId}.projector`,
        // A primary runs one projector at a time: the one it forks after a crash is the same claimant.
        ...(cluster.isWorker ? { leaseInstance: `${hostname()}/${process.ppid}` } : {}),
        onTimerFired: metrics.timerFired,
      });
  reactionsHost = reactions;
  // A read replica archives nothing either; it reads the archive through its own index.
  const archiving =
    !readReplica && side.index && isArchivable(side.raw)
      ? await startArchiveSide({
          config,
          log,
          app,
          raw: side.raw,
          index: side.index,
          streamId: side.streamId,
          views: read.views,
          link,
          clock: systemClock,
          owner: `${config.cluster.hostId}.projector`,
          ...(cluster.isWorker ? { leaseInstance: `${hostname()}/${process.ppid}` } : {}),
        })
      : undefined;
  const status = (): ViewsStatus => ({
    ...read.status(),
    ...(reactions ? { reactions: reactions.status(), reactionsHolder: reactions.holder() ?? null } : {}),
    ...(archiving ? { archive: archiving.status() } : {}),
  });
  if (reactions) watchReactions(metrics, () => reactions.status());
  if (archiving) watchArchive(metrics, () => archiving.status());
  const publisher = publishViewsStatus(link, viewsStatusSubject(config.cluster.hostId, viewsPath(config)), status, config.projections.statusIntervalMs);
  const keys = side.keys;
  const forget = keys
    ? async (subject: string) => {
        const done = await forgetSubject({ keys, store, subject, at: Date.now() });
        // Every worker of every host drops what it holds of the subject; the views follow the record.
        link.nc.publish(FORGOTTEN_SUBJECT, JSON.stringify({ keyIds: [done.keyId] }));
        return done;
      }
    : undefined;
  const admin = await startAdmin({ config, log, app, link, store, read, status, reactions, archive: archiving, archived: side.index ? { raw: side.raw, index: side.index } : undefined, forget, tracing, metrics: readMetrics });
  watchReadSide(
    metrics,
    () => {
      const s = status();
      return { projections: s.projections, lastPosition: s.eventStore.reachable ? s.eventStore.lastPosition : undefined, notifierLagEvents: s.notifier?.lagEvents };
    },
    async () =>
      link.isConnected() ? (await admin.subscribers.list()).map((s) => ({ name: s.name, pending: s.pending + s.ackPending + s.replayPending })) : [],
  );
  await admin.app.listen({ host: config.http.host, port: config.http.adminPort });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      publisher.stop();
      await reactions?.stop();
      await archiving?.stop();
      await read.stop();
      admin.stop();
      await admin.app.close();
      await side.close();
      await read.views.close();
      await tracing?.shutdown();
    })());
  return { link, views: read.views as LmdbViewStore, runner: read.runner, ...(read.notifier ? { notifier: read.notifier } : {}), adminApp: admin.app, metrics, stop };
}
