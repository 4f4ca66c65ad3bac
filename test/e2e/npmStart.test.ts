import t, { type Test } from 'tap';
import { readFileSync, realpathSync } from 'node:fs';
import { basename, join } from 'node:path';
import { freePort } from '../../src/nats/server.js';
import { tempDir } from '../helpers/nats.js';
import { startWithNpm, waitReady } from '../helpers/cluster.js';
import { envOf, eventually, processesUsing, type ProcessInfo } from '../helpers/processes.js';

/** Start-up is slow on a loaded 2-core machine; this is a deadline, not a performance check. */
const READY_MS = 60_000;
const SHUTDOWN_TIMEOUT_MS = 5000;
/**
 * How long a drain may take: the primary kills children still alive after
 * `cluster.shutdownTimeoutMs` + 2 s, then gives nats-server up to 10 s to close its store;
 * plus the primary's half-second look at its parent.
 */
const DRAIN_DEADLINE_MS = SHUTDOWN_TIMEOUT_MS + 2000 + 10_000 + 500;
t.setTimeout(300_000);

/**
 * `npm start` on a data directory of its own, the embedded server on a free port and one
 * worker, once it is ready and every process it should have runs.
 */
async function npmStart(t: Test) {
  const dataDir = realpathSync(tempDir(t));
  // A failed test must not leave a cluster behind to break the next one.
  t.teardown(() => processesUsing(dataDir).forEach((p) => process.kill(p.pid, 'SIGKILL')));
  const cluster = await startWithNpm(t, {
    CONVERGE_DATA_DIR: dataDir,
    CONVERGE_NATS_EMBEDDED_PORT: String(await freePort()),
    CONVERGE_CLUSTER_WORKERS: '1',
    CONVERGE_CLUSTER_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    // The drain's lines are info; the test profile logs warnings only.
    CONVERGE_LOG_LEVEL: 'info',
  });
  await waitReady(cluster, READY_MS);
  // The primary's pid where the README tells an operator to find it.
  const primary = Number(readFileSync(join(dataDir, 'run', 'converge.pid'), 'utf8').split(' ')[0]);
  t.same(roles(dataDir, primary), EVERY_ROLE, 'npm runs the primary with no shell between them, and the primary its worker, projector, nats-server and watchdog');
  /** Whether every process of this cluster is gone by `deadline`. */
  const allGone = (deadline: number) => eventually(() => processesUsing(dataDir).length === 0, deadline - Date.now());
  return { cluster, allGone, left: () => JSON.stringify(roles(dataDir, primary)) };
}

/** What a process on the data directory is; anything unexpected by its command line. */
function roleOf(p: ProcessInfo, primary: number): string {
  if (p.pid === primary) return 'primary';
  // npm's title replaces its command line: `npm start`.
  if (/^npm( |$)/.test(p.args.join(' '))) return 'npm';
  if (basename(p.args[0] ?? '') === 'nats-server') return 'nats-server';
  if (p.args.some((a) => a.endsWith('/nats/watchdog.js'))) return 'watchdog';
  return envOf(p.pid).find((kv) => kv.startsWith('CONVERGE_CLUSTER_PROCESS='))?.split('=')[1] ?? p.args.join(' ');
}

const roles = (dataDir: string, primary: number) => processesUsing(dataDir).map((p) => roleOf(p, primary)).sort();
const EVERY_ROLE = ['nats-server', 'npm', 'primary', 'projector', 'watchdog', 'worker'];

t.test('SIGTERM to `npm start` drains converge: npm passes it to the primary and exits 0 once nothing is left', async (t) => {
  const { cluster, allGone, left } = await npmStart(t);
  const deadline = Date.now() + DRAIN_DEADLINE_MS;
  cluster.proc.kill('SIGTERM');
  t.equal(await cluster.exited, 0, 'npm waits for the drain and exits 0');
  t.ok(await allGone(deadline), `within the drain deadline nothing is left: ${left()}`);
  t.match(cluster.output(), /"reason":"SIGTERM","msg":"shutting down \(SIGTERM\): draining"/, 'the log says the primary drains on SIGTERM');
  t.match(cluster.output(), /"role":"primary".*"msg":"stopped"/, 'and that it stopped');
});

t.test('npm killed outright (SIGKILL): the primary sees its parent change, says why, and drains', async (t) => {
  const { cluster, allGone, left } = await npmStart(t);
  const npm = cluster.proc.pid;
  const deadline = Date.now() + DRAIN_DEADLINE_MS;
  cluster.proc.kill('SIGKILL');
  await cluster.exited;
  t.ok(await allGone(deadline), `within the drain deadline nothing is left: ${left()}`);
  // The primary's output goes on reaching this test through the pipes it inherited from npm.
  t.match(
    cluster.output(),
    new RegExp(`the process that started converge \\(pid ${npm}, which ran \\\\"exec node dist/main.js\\\\"\\) is gone: the primary's parent is now pid \\d+: draining as on SIGTERM`),
    'the log says why it drains',
  );
  t.match(cluster.output(), /"role":"primary".*"msg":"stopped"/, 'and that it stopped');
});
