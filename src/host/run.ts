import cluster from 'node:cluster';
import { ConfigError, type Config } from './config.js';
import { NatsServerMissingError, NatsServerStartError, NatsStoreError } from '../nats/server.js';
import type { AnyAggregate } from '../core/aggregate.js';
import type { AnyReactor } from '../core/reactions.js';
import type { ConvergeApp } from './app.js';
import type { AppServices } from './runtime.js';
import { loadConfig, resolveConfig } from './config.js';
import { createLogger } from './log.js';
import { runPrimary } from './primary.js';
import { startProjector } from './projector.js';
import { startQueryWorker, startWorker } from './worker.js';

/** Options of `runConverge` beyond the app. */
export interface RunOptions<A extends AnyAggregate = AnyAggregate, R extends AnyReactor = never> {
  /**
   * The configuration; by default `loadConfig({ settings: app.settings })`: every key's
   * default, overridden by `config/default.json` and `config/<NODE_ENV>.json` when they
   * exist and by `CONVERGE_*`, the app's own sections included. One given without the app's
   * sections gets their defaults.
   */
  readonly config?: Config;
  /** What the aggregates' lookups and the reactors are given as `services`, in every worker and projector. */
  readonly services?: AppServices<A, R>;
}

/**
 * Runs an app as `npm start` runs the reference app: in the cluster primary, the embedded
 * nats-server (unless `nats.url` is set), the workers and the host's projector, supervised
 * and drained on SIGTERM or Ctrl-C; in each forked process, its worker or its projector.
 * Call it from the app's entry file: the primary forks that same file for its children.
 *
 * Problems an operator fixes outside converge (no nats-server on PATH, a store that
 * cannot be used, a bad config key) end the process with one line on stderr and exit 1.
 */
export function runConverge<A extends AnyAggregate, R extends AnyReactor = never>(app: ConvergeApp<A, R>, options: RunOptions<A, R> = {}): void {
  run(app, options).catch((err: unknown) => {
    if (err instanceof NatsServerMissingError || err instanceof NatsStoreError || err instanceof NatsServerStartError || err instanceof ConfigError) {
      exitWith(err.message);
    }
    process.stderr.write(`converge: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}

async function run(app: ConvergeApp, options: RunOptions): Promise<void> {
  const config = options.config ? resolveConfig(options.config, app.settings) : loadConfig({ settings: app.settings });
  if (cluster.isPrimary) {
    await runPrimary(config, createLogger(config, 'primary'));
    return;
  }
  const projector = config.cluster.process === 'projector';
  const log = createLogger(config, projector ? 'projector' : `worker-${config.cluster.workerIndex}`);
  const readReplica = config.cluster.role === 'read-replica';
  const child = projector ? await startProjector(config, log, app, options.services) : readReplica ? await startQueryWorker(config, log, app) : await startWorker(config, log, app, options.services);
  log.info(projector ? { adminPort: config.http.adminPort } : readReplica ? { queryPort: config.http.queryPort } : { commandPort: config.http.commandPort, queryPort: config.http.queryPort }, 'ready');
  const stop = (reason: string) => {
    log.info({ reason }, 'draining');
    child.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The primary is gone (killed): drain rather than linger as an orphan.
  process.on('disconnect', () => stop('primary disconnected'));
}

function exitWith(message: string): never {
  process.stderr.write(`converge: ${message}\n`);
  process.exit(1);
}
