import t from 'tap';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { listening, startCluster, waitReady } from '../helpers/cluster.js';

t.setTimeout(180_000);

const listeningAt = (url: string) => listening(Number(new URL(url).port));
const up = (url: string) => fetch(url, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false);

async function until(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

t.test('a read replica follows the command host on its NATS, serves reads only, and keeps serving when the command host is gone', async (t) => {
  const nats = await startTestNats(t);
  // Started first: it waits for the command host to create the event store.
  const replica = await startCluster(t, {
    CONVERGE_NATS_URL: nats.url,
    CONVERGE_DATA_DIR: tempDir(t),
    CONVERGE_CLUSTER_ROLE: 'read-replica',
    CONVERGE_CLUSTER_HOST_ID: 'replica',
    CONVERGE_CLUSTER_WORKERS: '1',
  });
  const host = await startCluster(t, {
    CONVERGE_NATS_URL: nats.url,
    CONVERGE_DATA_DIR: tempDir(t),
    CONVERGE_CLUSTER_HOST_ID: 'command-host',
    CONVERGE_CLUSTER_WORKERS: '1',
  });
  await waitReady(host, 60_000);
  await until('the replica serves queries', async () => (await up(`${replica.query}/ready`)) && (await up(`${replica.admin}/health`)), 60_000);
  t.notOk(await listeningAt(replica.base), 'the replica has no command API');
  t.match(replica.output(), /read replica, no commands/, 'and says so when it starts');

  let position = 0;
  let accepted = 0;
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${host.base}/shops/r${i}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `Shop ${i}`, category: 'korean', ownerId: 'o' }),
    });
    if (res.status === 200) accepted++;
    position = ((await res.json()) as { position: number }).position;
  }
  t.equal(accepted, 20, 'the command host accepts every command');
  const onReplica = await fetch(`${replica.query}/shops/r19?waitMs=10000`, { headers: { 'x-min-position': String(position) } });
  t.equal(onReplica.status, 200, "the replica's own views reach the last command");
  const onHost = await fetch(`${host.query}/shops/r19?waitMs=10000`, { headers: { 'x-min-position': String(position) } });
  t.same(await onReplica.json(), await onHost.json(), 'and hold the same document as the command host');

  host.proc.kill('SIGKILL');
  await host.exited;
  await until('the command host is gone', async () => !(await listeningAt(host.query)));
  const after = await fetch(`${replica.query}/shops/r0`);
  t.equal(after.status, 200, 'with the command host killed, the replica still serves reads');
  t.equal(((await after.json()) as { name: string }).name, 'Shop 0');
  const status = (await (await fetch(`${replica.admin}/admin/projections`)).json()) as { notifier?: unknown; projections: { position: number }[] };
  t.equal(status.notifier, undefined, 'the replica runs no notifier: the command hosts announce every commit');
  t.ok(status.projections.every((p) => p.position >= position), 'every view of the replica is at the last commit');
});

t.test('a read replica without nats.url is refused at start with one line', async (t) => {
  const replica = await startCluster(t, { CONVERGE_DATA_DIR: tempDir(t), CONVERGE_CLUSTER_ROLE: 'read-replica' });
  t.equal(await replica.exited, 1);
  t.match(replica.output(), /read-replica needs nats\.url/);
});
