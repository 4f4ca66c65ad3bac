import cluster from 'node:cluster';
import { aggregates } from '../actors/registry.js';
import { projections } from '../projections/registry.js';
import { queryRoutes } from '../projections/routes.js';
import { runPrimary } from './cluster.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './log.js';
import { NatsServerMissingError, NatsServerStartError, NatsStoreError } from './natsServer.js';
import { startProjector } from './projector.js';
import { startWorker } from './worker.js';

const domain = { aggregates, projections, routes: queryRoutes };

/** `npm start`: the cluster primary, or, in a forked process, one worker. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) exitWith(err.message);
    throw err;
  }
  if (cluster.isPrimary) {
    await runPrimary(config, createLogger(config, 'primary'));
    return;
  }
  const projector = config.cluster.role === 'projector';
  const log = createLogger(config, projector ? 'projector' : `worker-${config.cluster.workerIndex}`);
  const child = projector ? await startProjector(config, log, domain) : await startWorker(config, log, domain);
  log.info(projector ? { adminPort: config.http.adminPort } : { commandPort: config.http.commandPort, queryPort: config.http.queryPort }, 'ready');
  const stop = (reason: string) => {
    log.info({ reason }, 'draining');
    child.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'worker stop failed');
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

main().catch((err: unknown) => {
  // Problems an operator fixes outside converge: one line each, no stack.
  if (err instanceof NatsServerMissingError || err instanceof NatsStoreError || err instanceof NatsServerStartError) exitWith(err.message);
  process.stderr.write(`converge: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
