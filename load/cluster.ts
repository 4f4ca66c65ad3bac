import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../src/nats/server.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const get = (url: string, headers: Record<string, string>, timeoutMs: number) =>
  fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });

/**
 * A child process's lifetime: whether it has exited, and a stop that sends SIGTERM, gives
 * it `graceMs` to drain and exit, then kills it.
 */
export function supervise(proc: ChildProcess, graceMs: number): { exited: () => boolean; stop: () => Promise<void> } {
  let dead = false;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => ((dead = true), resolve())));
  return {
    exited: () => dead,
    stop: async () => {
      if (dead) return;
      proc.kill('SIGTERM');
      const force = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(force);
    },
  };
}

/** The cluster as `npm start` runs it, in a child process, with its three API base URLs. */
export interface Cluster {
  readonly command: string;
  readonly query: string;
  readonly admin: string;
  /** The primary's pid. */
  readonly pid: number;
  readonly ports: ClusterPorts;
  /** Whether the primary has exited. */
  exited(): boolean;
  stop(): Promise<void>;
}

/** The three listening ports of a cluster. */
export interface ClusterPorts {
  readonly command: number;
  readonly query: number;
  readonly admin: number;
}

/** How to start a cluster beyond the defaults (free ports, output inherited, log level warn). */
export interface ClusterOptions {
  /** Reuse these ports, e.g. to restart a cluster where its clients already point. */
  readonly ports?: ClusterPorts;
  /** A file descriptor that takes the cluster's stdout and stderr. */
  readonly outputFd?: number;
  readonly logLevel?: string;
  readonly readyTimeoutMs?: number;
  /** More `CONVERGE_*` settings, e.g. the embedded server's port when `natsUrl` is empty. */
  readonly env?: Readonly<Record<string, string>>;
  /** The entry file to run instead of the built `main.js` (`npm start`'s). */
  readonly main?: string;
}

/**
 * Starts `dist/main.js` against `natsUrl` (empty: its embedded nats-server) on free ports and resolves once the command,
 * query and admin APIs answer and every worker has been seen on the command port.
 */
export async function startCluster(natsUrl: string, dataDir: string, workers: number, options: ClusterOptions = {}): Promise<Cluster> {
  const [commandPort, queryPort, adminPort] = options.ports
    ? [options.ports.command, options.ports.query, options.ports.admin]
    : [await freePort(), await freePort(), await freePort()];
  // BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=prof") reaches the workers too: cluster forks inherit execArgv.
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const proc = spawn(process.execPath, [...nodeArgs, options.main ?? join(import.meta.dirname, '../main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      CONVERGE_NATS_URL: natsUrl,
      CONVERGE_HTTP_COMMAND_PORT: String(commandPort),
      CONVERGE_HTTP_QUERY_PORT: String(queryPort),
      CONVERGE_HTTP_ADMIN_PORT: String(adminPort),
      CONVERGE_DATA_DIR: dataDir,
      CONVERGE_CLUSTER_WORKERS: String(workers),
      CONVERGE_LOG_LEVEL: options.logLevel ?? 'warn',
      // Settings given to the benchmark itself (CONVERGE_PROJECTIONS_FLUSH_COMMITS=true …) reach the cluster.
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CONVERGE_') && !['CONVERGE_NATS_URL', 'CONVERGE_DATA_DIR'].includes(k))),
      ...options.env,
    },
    stdio: ['ignore', options.outputFd ?? 'inherit', options.outputFd ?? 'inherit'],
  });
  // The primary drains for up to shutdownTimeoutMs (10 s) + 2 s; past that, kill it.
  const { exited, stop } = supervise(proc, 20_000);
  const cluster = {
    command: `http://127.0.0.1:${commandPort}`,
    query: `http://127.0.0.1:${queryPort}`,
    admin: `http://127.0.0.1:${adminPort}`,
    pid: proc.pid ?? 0,
    ports: { command: commandPort, query: queryPort, admin: adminPort },
    exited,
    stop,
  };
  const ok = async (url: string) => {
    const res = await get(url, { connection: 'close' }, 2000).catch(() => undefined);
    await res?.arrayBuffer().catch(() => undefined);
    return res?.status === 200;
  };
  const pids = new Set<number>();
  const readyMs = options.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + readyMs;
  for (;;) {
    if (exited()) throw new Error('the cluster exited during start-up');
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the cluster was not ready in ${readyMs / 1000} s (worker pids seen: ${pids.size}/${workers})`);
    }
    if ((await ok(`${cluster.command}/ready`)) && (await ok(`${cluster.query}/ready`)) && (await ok(`${cluster.admin}/health`))) {
      // Several probes in a row: the primary hands connections out round-robin, so a fixed pattern of
      // one /ready then one /health per round would keep landing /health on the same worker.
      for (let k = 0; k < 2 * workers && pids.size < workers; k++) {
        const res = await get(`${cluster.command}/health`, { connection: 'close' }, 2000).catch(() => undefined);
        if (res?.ok) pids.add(((await res.json()) as { pid: number }).pid);
        else await res?.arrayBuffer().catch(() => undefined);
      }
      if (pids.size >= workers) return cluster;
      await sleep(50);
    } else {
      await sleep(100);
    }
  }
}

