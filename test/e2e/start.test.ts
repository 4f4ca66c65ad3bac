import t from 'tap';
import { connect } from 'node:net';
import { freePort } from '../../src/natsServer.js';
import { tempDir } from '../helpers/nats.js';
import { startCluster, waitReady } from '../helpers/cluster.js';

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
    socket.on('error', () => resolve(false));
  });

t.test('with no NATS URL it embeds nats-server, serves commands, and stops it all on SIGTERM', async (t) => {
  const natsPort = await freePort();
  const dataDir = tempDir(t);
  const cluster = await startCluster(t, {
    CONVERGE_DATA_DIR: dataDir,
    CONVERGE_NATS_EMBEDDED_PORT: String(natsPort),
    CONVERGE_CLUSTER_WORKERS: '2',
  });
  await waitReady(cluster);
  t.ok(await listening(natsPort), 'the embedded nats-server listens on its port');
  const res = await fetch(`${cluster.base}/shops/embedded/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'E', category: 'c', ownerId: 'o' }),
  });
  t.equal(res.status, 200, 'a command goes through');

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
