import t from 'tap';
import { tempDir } from '../helpers/nats.js';
import { startCluster, waitReady, type TestCluster } from '../helpers/cluster.js';
import { parseMetrics, sample } from '../helpers/metrics.js';

const send = async (cluster: TestCluster, path: string, body: unknown) => {
  // A new connection each time, so that the commands reach both workers.
  const res = await fetch(`${cluster.base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { position?: number } };
};

t.test('/metrics on every port shows the whole cluster: command counts as sent, projection lag and process metrics', async (t) => {
  const cluster = await startCluster(t, { CONVERGE_DATA_DIR: tempDir(t), CONVERGE_CLUSTER_WORKERS: '2' });
  await waitReady(cluster, 60_000);
  let last = 0;
  for (let i = 0; i < 12; i++) {
    const res = await send(cluster, `/shops/m${i}/register`, { name: `M${i}`, category: 'c', ownerId: 'o' });
    t.equal(res.status, 200);
    last = Math.max(last, res.body.position ?? 0);
  }
  for (let i = 0; i < 5; i++) {
    const res = await send(cluster, `/shops/m${i}/open`, {});
    t.equal(res.status, 200);
    last = Math.max(last, res.body.position ?? 0);
  }
  t.equal((await send(cluster, '/shops/m0/register', { name: 'again', category: 'c', ownerId: 'o' })).status, 422, 'one rejection');
  const view = await fetch(`${cluster.query}/shops/m4?minPosition=${last}&waitMs=10000`);
  t.equal(view.status, 200, 'the views have caught up');
  // The projector measures its lag once a statusIntervalMs (1 s).
  await new Promise((r) => setTimeout(r, 1500));

  for (const [port, base] of [['command', cluster.base], ['query', cluster.query], ['admin', cluster.admin]] as const) {
    const res = await fetch(`${base}/metrics`);
    t.equal(res.status, 200, `${port} port answers /metrics`);
    t.match(res.headers.get('content-type'), /^text\/plain/);
    const metrics = parseMetrics(await res.text());
    const count = (command: string, outcome: string) =>
      sample(metrics, 'converge_command_duration_seconds_count', { aggregate: 'shop', command, outcome });
    t.equal(count('RegisterShop', 'accepted'), 12, `${port}: 12 registrations accepted, summed over the workers`);
    t.equal(count('OpenShop', 'accepted'), 5, `${port}: 5 openings accepted`);
    t.equal(count('RegisterShop', 'rejected'), 1, `${port}: 1 registration rejected`);
    t.equal(sample(metrics, 'converge_command_duration_seconds_bucket', { aggregate: 'shop', command: 'OpenShop', outcome: 'accepted', le: '+Inf' }), 5, `${port}: the histogram's buckets`);
    t.equal(sample(metrics, 'converge_resident_actors', {}), 12, `${port}: each shop's actor lives on its owner, and the owners' counts add up`);
    t.ok((sample(metrics, 'converge_commands_forwarded_total', { aggregate: 'shop' }) ?? 0) > 0, `${port}: commands were forwarded between the workers`);
    t.equal(sample(metrics, 'converge_mailbox_depth', {}), 0, `${port}: no command waits`);
    t.equal(sample(metrics, 'converge_partitions_owned', {}), 64, `${port}: the host's workers own every partition between them`);
    for (const projection of ['shopDisplay', 'shopList', 'orderHistory', 'shopStats']) {
      t.equal(sample(metrics, 'converge_projection_lag_events', { projection }), 0, `${port}: ${projection} lag in events`);
      t.equal(sample(metrics, 'converge_projection_lag_seconds', { projection }), 0, `${port}: ${projection} lag in seconds`);
      t.equal(sample(metrics, 'converge_projection_state', { projection, state: 'running' }), 1, `${port}: ${projection} is running`);
    }
    t.equal(sample(metrics, 'converge_events_position', {}), last, `${port}: the stream's last position`);
    t.equal(sample(metrics, 'converge_notifier_lag_events', {}), 0, `${port}: the notifier has caught up`);
    t.ok((sample(metrics, 'process_cpu_user_seconds_total', {}) ?? 0) > 0, `${port}: default process metrics`);
    t.ok((sample(metrics, 'nodejs_heap_size_used_bytes', {}) ?? 0) > 0, `${port}: default Node.js metrics`);
  }
});
