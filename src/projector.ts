import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AnyAggregate } from './aggregate.js';
import { buildAdminApp } from './adminApp.js';
import type { Config } from './config.js';
import { createEventStore, ensureEventStream } from './eventStore.js';
import { connectNats, type NatsLink } from './natsConnection.js';
import type { AnyProjection } from './projection.js';
import { createProjectionRunner, type ProjectionRunner } from './projectionRunner.js';
import { openViewStore, type ViewStore } from './viewStore.js';

/** The host's projector: the only writer of its LMDB views, with the admin API. */
export interface Projector {
  readonly link: NatsLink;
  readonly views: ViewStore;
  readonly runner: ProjectionRunner;
  readonly adminApp: FastifyInstance;
  stop(): Promise<void>;
}

/** Where a host keeps its views. */
export function viewsPath(config: Config): string {
  return join(resolve(config.dataDir), 'views');
}

/** Starts the projector: every projection catches up from its checkpoint, then follows `EVENTS` live. */
export async function startProjector(
  config: Config,
  log: Logger,
  domain: { aggregates: readonly AnyAggregate[]; projections: readonly AnyProjection[] },
): Promise<Projector> {
  const link = await connectNats(config.nats.url, { name: 'converge-projector', timeoutMs: config.nats.requestTimeoutMs, log });
  await ensureEventStream(link, config.eventStore.duplicateWindowMs);
  const store = createEventStore(link, config.eventStore);
  const views = openViewStore(viewsPath(config));
  const runner = createProjectionRunner({ link, views, ...domain, ...config.projections, log });
  runner.start();
  const adminApp = await buildAdminApp({ runner, views, store, http: config.http, log, isReady: link.isConnected });
  await adminApp.listen({ host: config.http.host, port: config.http.adminPort });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await runner.stop();
      await adminApp.close();
      await link.close();
      await views.close();
    })());
  return { link, views, runner, adminApp, stop };
}
