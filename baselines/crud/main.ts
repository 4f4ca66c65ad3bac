/**
 * The CRUD baseline as a process: what one would build without converge, with plain
 * Fastify and PostgreSQL, the same domain and the same HTTP surface. For benchmarks only.
 *
 *   node dist/baselines/crud/main.js
 *
 * Environment (read once, at start):
 *   PORT        HTTP port shared by all workers          (default 9080)
 *   HOST        address to listen on                     (default 127.0.0.1)
 *   WORKERS     node:cluster workers                     (default 2)
 *   PGHOST      PostgreSQL host                          (default 127.0.0.1)
 *   PGPORT      PostgreSQL port                          (default 5432)
 *   PGUSER      PostgreSQL user (password: PGPASSWORD, read by `pg` itself)  (default postgres)
 *   PGDATABASE  database; created if missing             (default converge_crud)
 *   POOL_SIZE   connections per worker                   (default 10)
 *   SYNCHRONOUS_COMMIT  on | off, set on the database    (default on)
 *               `off` acknowledges a commit before its WAL flush, as nats-server
 *               acknowledges a publish before its file store syncs; the comparison
 *               benchmark uses it for equal durability.
 *
 * The primary creates the database if needed and then DROPS AND RECREATES every table, so
 * each run starts empty. SIGTERM or SIGINT: each worker closes Fastify and its pool, and the
 * primary exits once all workers have.
 */
import cluster from 'node:cluster';
import pg from 'pg';
import { buildCrudApp } from './app.js';
import { createSchema } from './schema.js';
import { synchronousCommit } from '../settings.js';

interface CrudConfig {
  readonly port: number;
  readonly host: string;
  readonly workers: number;
  readonly pg: { readonly host: string; readonly port: number; readonly user: string; readonly database: string };
  readonly poolSize: number;
  readonly synchronousCommit: 'on' | 'off';
}

function loadConfig(env: NodeJS.ProcessEnv): CrudConfig {
  const int = (name: string, fallback: number, min: number): number => {
    const raw = env[name]?.trim();
    const value = raw ? Number(raw) : fallback;
    if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${env[name]}`);
    return value;
  };
  return Object.freeze({
    port: int('PORT', 9080, 0),
    host: env['HOST'] ?? '127.0.0.1',
    workers: int('WORKERS', 2, 1),
    pg: Object.freeze({
      host: env['PGHOST'] ?? '127.0.0.1',
      port: int('PGPORT', 5432, 1),
      user: env['PGUSER'] ?? 'postgres',
      database: env['PGDATABASE'] ?? 'converge_crud',
    }),
    poolSize: int('POOL_SIZE', 10, 1),
    synchronousCommit: synchronousCommit(env),
  });
}

async function runPrimary(config: CrudConfig): Promise<void> {
  // CREATE DATABASE cannot run inside the database it creates, so ask the maintenance db.
  const admin = new pg.Client({ ...config.pg, database: 'postgres' });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [config.pg.database]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(config.pg.database)}`);
    // Set on the database, so every connection of every worker has it.
    await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(config.pg.database)} SET synchronous_commit = ${config.synchronousCommit}`);
  } finally {
    await admin.end();
  }
  const pool = new pg.Pool({ ...config.pg, max: 1 });
  await createSchema(pool);
  await pool.end();

  let alive = 0;
  let stopping = false;
  let exitCode = 0;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
    // A worker stuck on a request must not keep the primary alive forever.
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  cluster.on('exit', (worker, code, signal) => {
    alive -= 1;
    // A benchmark must not carry on with fewer workers than it reports: a lost worker ends the run.
    if (!stopping) {
      console.error(`crud worker ${worker.process.pid} died (${signal ?? code}); stopping`);
      exitCode = 1;
      stop();
    }
    if (alive === 0) process.exit(exitCode);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (; alive < config.workers; alive++) cluster.fork();
  console.log(`crud baseline: ${config.workers} workers on ${config.host}:${config.port}, database ${config.pg.database}`);
}

async function runWorker(config: CrudConfig): Promise<void> {
  const pool = new pg.Pool({ ...config.pg, max: config.poolSize });
  // An idle connection that PostgreSQL drops emits here; unhandled, it would kill the worker.
  pool.on('error', (err) => console.warn(`crud worker ${process.pid}: idle connection failed: ${err.message}`));
  const app = await buildCrudApp({ pool });
  await app.listen({ port: config.port, host: config.host });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await app.close();
    await pool.end();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const config = loadConfig(process.env);
const run = cluster.isPrimary ? runPrimary : runWorker;
run(config).catch((err: unknown) => {
  console.error('crud baseline failed to start:', err);
  process.exit(1);
});
