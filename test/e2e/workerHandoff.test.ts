import t from 'tap';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { listening, startCluster, waitReady, workerPids } from '../helpers/cluster.js';

// The primary holds the workers' ports and hands connections over (docs/architecture.md,
// "Running"): with one worker, a kill -9 of it costs what it had in flight, and connections
// made while its replacement starts wait for it instead of being refused.

t.setTimeout(180_000);

t.test('with one worker, connections made while a killed worker is replaced are held and answered, none refused', async (t) => {
  const nats = await startTestNats(t);
  const cluster = await startCluster(t, { CONVERGE_NATS_URL: nats.url, CONVERGE_DATA_DIR: tempDir(t), CONVERGE_CLUSTER_WORKERS: '1' });
  await waitReady(cluster, 60_000);
  const [victim] = [...(await workerPids(cluster, 3))];
  t.ok(victim, 'one worker answers');
  const ports = [new URL(cluster.base).port, new URL(cluster.query).port].map(Number);

  process.kill(victim!, 'SIGKILL');
  const killedAt = Date.now();
  // What the worker had in flight may be lost; so the requests start once it is gone (reaped by the primary).
  const alive = () => {
    try {
      process.kill(victim!, 0);
      return true;
    } catch {
      return false;
    }
  };
  while (alive() && Date.now() - killedAt < 5000) await new Promise((r) => setTimeout(r, 1));
  t.notOk(alive(), 'the worker is gone');
  // New connections, one request each, every 20 ms on both ports, until the replacement has answered for a while.
  const outcomes: Array<Promise<{ status: number; error?: string; pid?: number }>> = [];
  let closedPort = 0;
  let replaced = false;
  let accepted = false;
  // Until the replacement has answered and accepted a command (its partitions' leases lapse first), for at most 30 s.
  for (let i = 0; Date.now() - killedAt < 30_000 && !(replaced && accepted && i % 2 === 0); i++) {
    const base = i % 2 === 0 ? cluster.base : cluster.query;
    const body = i % 2 === 0 ? { name: `held-${i}`, category: 'c', ownerId: 'o' } : undefined;
    const request = body
      ? fetch(`${base}/shops/held-${i}/register`, { method: 'POST', headers: { connection: 'close', 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
      : fetch(`${base}/health`, { headers: { connection: 'close' }, signal: AbortSignal.timeout(30_000) });
    outcomes.push(
      request.then(
        async (res) => {
          const json = (await res.json().catch(() => ({}))) as { pid?: number; error?: string };
          if (res.status === 200 && json.pid !== undefined && json.pid !== victim) replaced = true;
          if (res.status === 200 && body) accepted = true;
          return { status: res.status, ...(json.pid === undefined ? {} : { pid: json.pid }), ...(json.error === undefined ? {} : { error: `${json.error}, retry-after ${res.headers.get('retry-after')}` }) };
        },
        (err: Error & { cause?: { code?: string } }) => ({ status: 0, error: `request ${i} at ${Date.now() - killedAt} ms: ${err.cause?.code ?? err.message}` }),
      ),
    );
    for (const port of ports) if (!(await listening(port))) closedPort++;
    await new Promise((r) => setTimeout(r, 20));
  }
  const answered = await Promise.all(outcomes);
  t.ok(answered.length > 40, `${answered.length} connections made across the restart`);
  t.equal(closedPort, 0, 'both ports accepted connections throughout');
  t.same(answered.filter((a) => a.status === 0), [], 'every one was answered, none refused or dropped');
  // Until the dead worker's partition leases lapse, its replacement refuses commands as safe to retry.
  const refused = answered.filter((a) => a.status !== 200);
  t.same(refused.filter((a) => a.status !== 503 || a.error !== 'partition_unavailable, retry-after 1'), [], `the only other answers are 503 partition_unavailable with Retry-After (${refused.length})`);
  t.equal(answered.filter((_, i) => i % 2 === 0).at(-1)?.status, 200, 'and commands are accepted again');
  const pids = new Set(answered.flatMap((a) => (a.pid === undefined ? [] : [a.pid])));
  t.notOk(pids.has(victim!), 'by the replacement worker');
  t.ok(cluster.output().includes('worker 0 exited; restarting'), 'the primary logged the crash');
});
