import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, launchNatsServer } from '../src/nats/server.js';
import { startCluster, supervise } from './cluster.js';
import { clusterRoles } from './procs.js';
import type { Target } from './scenarios.js';

/** A target the load tool started, and how to stop it. */
export interface Started extends Target {
  /** The nats-server a converge target runs on, for measuring the store's own limit beside it. */
  readonly natsUrl?: string;
  stop(): Promise<void>;
}

/**
 * The targets the load tool can start on this machine. `converge-no-reactions` is the
 * reference app without its processes and reactor (`test/bench/reactionsApp.ts`): the
 * CRUD baseline automates none of what they do, so the pair says what they cost.
 */
export const targetNames = ['converge', 'crud', 'emmett', 'converge-no-reactions'] as const;
export type TargetName = (typeof targetNames)[number];

/**
 * Starts converge as `npm start` runs it (N workers and the projector) against its own
 * nats-server, with a temp store and temp data, so a load run leaves nothing behind.
 */
async function startConverge(workers: number, reactions = true): Promise<Started> {
  const dir = mkdtempSync(join(tmpdir(), 'converge-load-'));
  const nats = await launchNatsServer({ port: 0, storeDir: join(dir, 'nats') });
  try {
    const without = { main: join(import.meta.dirname, '../test/bench/reactionsApp.js'), env: { BENCH_REACTIONS: 'off' } };
    const cluster = await startCluster(nats.url, join(dir, 'data'), workers, reactions ? {} : without);
    return {
      name: reactions ? 'converge' : 'converge-no-reactions',
      natsUrl: nats.url,
      command: cluster.command,
      query: cluster.query,
      roles: () => new Map([...clusterRoles(cluster.pid), ['nats-server', [nats.pid]]]),
      reactionLag: async () => {
        const res = await fetch(`${cluster.admin}/admin/reactions`, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`GET /admin/reactions answered ${res.status}`);
        const { reactions } = (await res.json()) as { reactions: Array<{ lagEvents?: number }> };
        return Math.max(0, ...reactions.map((r) => r.lagEvents ?? 0));
      },
      stop: async () => {
        await cluster.stop();
        await nats.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Starts a baseline (`baselines/<name>/main.js`) with the same number of workers, on its
 * own PostgreSQL database, which it resets at start. Resolves once `/health` answers.
 * `pgSync` is PostgreSQL's `synchronous_commit`: `off` matches what converge's
 * nats-server guarantees when it acknowledges a publish (see baselines/settings.ts).
 */
async function startBaseline(name: 'crud' | 'emmett', workers: number, pgSync: 'on' | 'off'): Promise<Started> {
  const port = await freePort();
  const proc = spawn(process.execPath, [join(import.meta.dirname, `../baselines/${name}/main.js`)], {
    env: { ...process.env, PORT: String(port), WORKERS: String(workers), PGDATABASE: `converge_bench_${name}`, SYNCHRONOUS_COMMIT: pgSync },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const { exited, stop } = supervise(proc, 10_000);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited()) throw new Error(`the ${name} baseline exited during start-up (is PostgreSQL running on ${process.env.PGHOST ?? '127.0.0.1'}:${process.env.PGPORT ?? 5432}?)`);
    const res = await fetch(`${base}/health`).catch(() => undefined);
    await res?.arrayBuffer();
    if (res?.ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the ${name} baseline did not answer /health within 30 s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // Every worker must be listening before the run starts; they start in parallel, so a short wait settles it.
  await new Promise((r) => setTimeout(r, 500));
  return { name, command: base, query: base, stop };
}

/** Starts the named target with `workers` workers. */
export function startTarget(name: TargetName, workers: number, pgSync: 'on' | 'off' = 'off'): Promise<Started> {
  if (name === 'converge' || name === 'converge-no-reactions') return startConverge(workers, name === 'converge');
  return startBaseline(name, workers, pgSync);
}
