import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { pino } from 'pino';
import { loadConfig } from '../../src/host/config.js';
import { type Config } from '../../src/host/config.js';
import { startWorker, type Worker } from '../../src/host/worker.js';
import { startProjector, type Projector } from '../../src/host/projector.js';
import type { AnyProjection } from '../../src/core/projection.js';
import { tempDir } from './nats.js';
import { shopPlatform } from '../../app.js';

const { aggregates, projections, routes: queryRoutes } = shopPlatform;

/** Configuration for an in-process test worker: test profile, free ports, temp data dir. */
export function testConfig(t: Test, natsUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    env: {
      NODE_ENV: 'test',
      CONVERGE_NATS_URL: natsUrl,
      CONVERGE_DATA_DIR: env['CONVERGE_DATA_DIR'] ?? tempDir(t, 'converge-data-'),
      CONVERGE_HTTP_COMMAND_PORT: '0',
      CONVERGE_HTTP_QUERY_PORT: '0',
      CONVERGE_HTTP_ADMIN_PORT: '0',
      CONVERGE_LOG_LEVEL: 'silent',
      // One host's workers, each owning `partition mod workers`; leases are tested on their own and end to end.
      CONVERGE_CLUSTER_OWNERSHIP: 'static',
      ...env,
    },
  });
}

/** Starts `count` workers of one cluster in this process, sharing a data dir; stopped at teardown. */
export async function startWorkers(t: Test, natsUrl: string, count: number, env: Record<string, string> = {}): Promise<Worker[]> {
  const dataDir = env['CONVERGE_DATA_DIR'] ?? tempDir(t, 'converge-data-');
  const workers: Worker[] = [];
  for (let i = 0; i < count; i++) {
    const config = testConfig(t, natsUrl, {
      CONVERGE_DATA_DIR: dataDir,
      CONVERGE_CLUSTER_WORKERS: String(count),
      CONVERGE_CLUSTER_WORKER_INDEX: String(i),
      ...env,
    });
    workers.push(await startWorker(config, pino({ level: 'silent' }), { aggregates, projections, routes: queryRoutes }));
  }
  t.teardown(() => Promise.all(workers.map((w) => w.stop())));
  return workers;
}

/** Base URL of a worker's command API. */
export function commandUrl(worker: Worker): string {
  return `http://127.0.0.1:${(worker.commandApp.server.address() as AddressInfo).port}`;
}

/** POSTs a JSON command and returns status and parsed body. */
export async function post(
  base: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Starts this host's projector in-process, on the data dir the workers use; stopped at teardown. */
export async function startTestProjector(
  t: Test,
  natsUrl: string,
  dataDir: string,
  opts: { env?: Record<string, string>; projections?: readonly AnyProjection[] } = {},
): Promise<Projector> {
  const config = testConfig(t, natsUrl, { CONVERGE_DATA_DIR: dataDir, CONVERGE_HTTP_ADMIN_PORT: '0', ...opts.env });
  const projector = await startProjector(config, pino({ level: 'silent' }), { ...shopPlatform, projections: opts.projections ?? projections });
  t.teardown(() => projector.stop());
  return projector;
}

/** Base URL of a worker's query API, or of a projector's admin API. */
export function urlOf(app: { server: { address(): unknown } }): string {
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** GETs a JSON resource. */
export async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers };
}
