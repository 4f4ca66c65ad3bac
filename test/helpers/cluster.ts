import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort } from '../../src/nats/server.js';

const ROOT = join(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'dist/main.js');

/** The cluster as `npm start` runs it (the built `dist/main.js`), in a child process. */
export interface TestCluster {
  readonly proc: ChildProcess;
  /** Command API. */
  readonly base: string;
  readonly query: string;
  readonly admin: string;
  /** Everything the cluster printed so far. */
  output(): string;
  /** Resolves with the exit code once the primary has exited. */
  readonly exited: Promise<number | null>;
}

/** `main`: the built entry file to run, the reference app's by default. */
export async function startCluster(t: Test, env: Record<string, string>, main = MAIN): Promise<TestCluster> {
  return launch(t, env, (full) => spawn(process.execPath, [main], { env: full, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * The cluster as a user starts it: `npm start` in the repository; `proc` is npm's process.
 * `--ignore-scripts` skips the prestart build and still runs the start script: the suite is
 * built before it runs, and a build here would rewrite dist/ under the tests beside it.
 */
export async function startWithNpm(t: Test, env: Record<string, string>): Promise<TestCluster> {
  // npm needs a home for its cache and logs; no update check from a test.
  const npmEnv = { HOME: process.env.HOME ?? tmpdir(), npm_config_update_notifier: 'false', ...env };
  return launch(t, npmEnv, (full) => spawn('npm', ['start', '--ignore-scripts'], { cwd: ROOT, env: full, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Starts `start` on free ports with only `env` and the test defaults, and collects its output. */
async function launch(t: Test, env: Record<string, string>, start: (env: NodeJS.ProcessEnv) => ChildProcess): Promise<TestCluster> {
  const [port, queryPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const proc = start({
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    CONVERGE_HTTP_COMMAND_PORT: String(port),
    CONVERGE_HTTP_QUERY_PORT: String(queryPort),
    CONVERGE_HTTP_ADMIN_PORT: String(adminPort),
    ...env,
  });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
  });
  const url = (p: number) => `http://127.0.0.1:${p}`;
  const cluster = { proc, base: url(port), query: url(queryPort), admin: url(adminPort), output: () => out, exited };
  return cluster;
}

/** Polls `/ready` until it answers 200, failing with the cluster's output after `ms`. */
export async function waitReady(cluster: TestCluster, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cluster.proc.exitCode !== null) break;
    // The command port answers once a worker is up; the admin port once the projector is.
    const up = (url: string) => fetch(url, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false);
    if ((await up(`${cluster.base}/ready`)) && (await up(`${cluster.query}/ready`)) && (await up(`${cluster.admin}/health`))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`cluster did not become ready:\n${cluster.output().slice(-3000)}`);
}

/** The pids of the workers answering on the command port, found through `/health`. */
export async function workerPids(cluster: TestCluster, tries = 40): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < tries; i++) {
    const res = await fetch(`${cluster.base}/health`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(5000) }).catch(() => undefined);
    if (res?.ok) pids.add(((await res.json()) as { pid: number }).pid);
  }
  return pids;
}

/** Whether something accepts TCP connections on a loopback port. */
export function listening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });
}
