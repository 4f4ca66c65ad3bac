import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/nats/server.js';
import { tempDir } from '../helpers/nats.js';
import { listening, startCluster, waitReady } from '../helpers/cluster.js';


t.test('with no NATS URL it embeds nats-server, serves commands, and stops it all on SIGTERM', async (t) => {
  const natsPort = await freePort();
  const dataDir = tempDir(t);
  const cluster = await startCluster(t, {
    CONVERGE_DATA_DIR: dataDir,
    CONVERGE_NATS_EMBEDDED_PORT: String(natsPort),
    CONVERGE_CLUSTER_WORKERS: '2',
  });
  await waitReady(cluster, 60_000);
  t.ok(await listening(natsPort), 'the embedded nats-server listens on its port');
  const res = await fetch(`${cluster.base}/shops/embedded/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'E', category: 'c', ownerId: 'o' }),
  });
  t.equal(res.status, 200, 'a command goes through');
  const { position } = (await res.json()) as { position: number };
  const view = await fetch(`${cluster.query}/shops/embedded`, { headers: { 'x-min-position': String(position) } });
  t.equal(view.status, 200, 'the query API serves it once the projector has it');

  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, [join(import.meta.dirname, '../../dist/src/host/cli.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', CONVERGE_HTTP_ADMIN_PORT: new URL(cluster.admin).port },
    });
  t.match((await cli('projections')).stdout, /shopDisplay/, 'the CLI lists the projections');
  t.match((await cli('rebuild', 'shopList')).stdout, /shopList: generation 2 swapped in/, 'the CLI rebuilds a view');
  const failed = await cli('rebuild', 'nothing').then(() => undefined, (err: { code: number; stderr: string }) => err);
  t.match(failed, { code: 1, stderr: /no projection named nothing/ }, 'an unknown projection is a one-line error');

  cluster.proc.kill('SIGTERM');
  t.equal(await cluster.exited, 0, 'the primary exits cleanly after draining');
  t.notOk(await listening(natsPort), 'the embedded nats-server was stopped');
  t.notOk(await fetch(`${cluster.base}/health`).then(() => true, () => false), 'no worker is left serving');
});

t.test('without nats-server on PATH it says in one line how to install it', async (t) => {
  const cluster = await startCluster(t, { PATH: '/nonexistent', CONVERGE_DATA_DIR: tempDir(t) });
  t.equal(await cluster.exited, 1);
  t.match(cluster.output(), /nats-server was not found on PATH; install it \(Debian\/Ubuntu: sudo apt-get install -y nats-server\)/);
});

t.test('a bad config value stops start-up with one line naming the key', async (t) => {
  const cluster = await startCluster(t, { CONVERGE_CLUSTER_PARTITIONS: 'many' });
  t.equal(await cluster.exited, 1);
  t.match(cluster.output().trim(), /^converge: config key "cluster.partitions" must be integer/);
});

t.test('in production with no tokens it refuses to start, in one line saying how to fix it', async (t) => {
  const cluster = await startCluster(t, { NODE_ENV: 'production', CONVERGE_DATA_DIR: tempDir(t) });
  t.equal(await cluster.exited, 1);
  t.match(
    cluster.output().trim(),
    /^converge: http.host is 0.0.0.0 \(reachable from the network\) but http.tokens is empty, .*set CONVERGE_HTTP_TOKENS, or CONVERGE_HTTP_ALLOW_UNAUTHENTICATED=true to run them open on purpose$/,
  );
});
