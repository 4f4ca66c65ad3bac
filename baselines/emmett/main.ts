/**
 * The Emmett baseline as a process: `node dist/baselines/emmett/main.js`.
 *
 * Environment, read once here:
 * - `PORT` (default 9180): the one HTTP port every worker listens on.
 * - `WORKERS` (default 2): node:cluster workers.
 * - `PGHOST` (127.0.0.1), `PGPORT` (5432), `PGUSER` (postgres; no password, trust auth),
 *   `PGDATABASE` (converge_emmett; letters, digits and `_`).
 * - `SYNCHRONOUS_COMMIT` (on): PostgreSQL's `synchronous_commit` for the database. `off`
 *   acknowledges a commit before its WAL flush, as nats-server acknowledges a publish
 *   before its file store syncs; the comparison benchmark uses it for equal durability.
 *
 * The primary drops and recreates `PGDATABASE` at every start: this is a benchmark
 * baseline, and every run starts from an empty store. It then creates Emmett's schema
 * once and forks the workers. SIGTERM or SIGINT: each worker closes Fastify and the event
 * store and exits; the primary exits when they all have.
 */
import cluster from 'node:cluster';
import pg from 'pg';
import { synchronousCommit } from '../settings.js';
import { buildEmmettApp, migrateEmmettSchema } from './emmett.app.js';

/** The baseline's settings, validated and frozen. */
export interface EmmettBaselineConfig {
  readonly port: number;
  readonly workers: number;
  readonly pg: { readonly host: string; readonly port: number; readonly user: string; readonly database: string };
  readonly synchronousCommit: 'on' | 'off';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be an integer from ${min} to ${max}`);
  return value;
}

/** Reads the settings from the environment; throws on a bad value rather than guessing. */
export function loadConfig(env: NodeJS.ProcessEnv): EmmettBaselineConfig {
  const database = env['PGDATABASE'] || 'converge_emmett';
  // The name goes into CREATE/DROP DATABASE as an identifier, so only plain names.
  if (!/^[A-Za-z0-9_]{1,63}$/.test(database)) throw new Error('PGDATABASE must be 1-63 letters, digits or _');
  return Object.freeze({
    port: integer(env, 'PORT', 9180, 0, 65535),
    workers: integer(env, 'WORKERS', 2, 1, 256),
    pg: Object.freeze({
      host: env['PGHOST'] || '127.0.0.1',
      port: integer(env, 'PGPORT', 5432, 1, 65535),
      user: env['PGUSER'] || 'postgres',
      database,
    }),
    synchronousCommit: synchronousCommit(env),
  });
}

function connectionString(config: EmmettBaselineConfig, database: string): string {
  const { host, port, user } = config.pg;
  return `postgres://${encodeURIComponent(user)}@${host}:${port}/${database}`;
}

async function resetDatabase(config: EmmettBaselineConfig): Promise<void> {
  const admin = new pg.Client({ connectionString: connectionString(config, 'postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${config.pg.database}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${config.pg.database}"`);
    // Set on the database, so every connection of every worker has it.
    await admin.query(`ALTER DATABASE "${config.pg.database}" SET synchronous_commit = ${config.synchronousCommit}`);
  } finally {
    await admin.end();
  }
}

async function runPrimary(config: EmmettBaselineConfig): Promise<void> {
  await resetDatabase(config);
  await migrateEmmettSchema(connectionString(config, config.pg.database));
  let running = 0;
  let stopping = false;
  let failed = false;
  for (let i = 0; i < config.workers; i += 1) {
    cluster.fork();
    running += 1;
  }
  cluster.on('exit', (worker, code, signal) => {
    running -= 1;
    if (!stopping) {
      // A run must not go on with fewer workers than it reports: stop them all.
      console.error(`emmett baseline: worker ${worker.process.pid} exited (${signal ?? code}); stopping`);
      failed = true;
      stop();
    }
    if (running === 0) process.exit(failed ? 1 : 0);
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  console.log(`emmett baseline: ${config.workers} workers on port ${config.port}, database ${config.pg.database}`);
}

async function runWorker(config: EmmettBaselineConfig): Promise<void> {
  const { app, close } = await buildEmmettApp({ connectionString: connectionString(config, config.pg.database) });
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  // Installed before listening, so a signal during start-up still closes cleanly.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Loopback only: the baseline exists to be loaded from this machine.
  await app.listen({ port: config.port, host: '127.0.0.1' });
}

const config = loadConfig(process.env);
(cluster.isPrimary ? runPrimary(config) : runWorker(config)).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
