import { rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from '../../src/nats/server.js';
import { tempDir } from '../helpers/nats.js';
import { startCluster, waitReady, type TestCluster } from '../helpers/cluster.js';

const register = (cluster: TestCluster, id: string) =>
  fetch(`${cluster.base}/shops/${id}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: id, category: 'c', ownerId: 'o' }),
  }).then(async (r) => ({ status: r.status, position: ((await r.json()) as { position: number }).position }));

t.test('npm start on a wiped embedded store serves the new store’s shops, not the old views', async (t) => {
  const dataDir = tempDir(t);
  const env = { CONVERGE_DATA_DIR: dataDir, CONVERGE_NATS_EMBEDDED_PORT: String(await freePort()), CONVERGE_CLUSTER_WORKERS: '1', CONVERGE_LOG_LEVEL: 'info' };
  const first = await startCluster(t, env);
  await waitReady(first);
  const old = await register(first, 'old');
  t.equal((await fetch(`${first.query}/shops/old`, { headers: { 'x-min-position': String(old.position) } })).status, 200);
  first.proc.kill('SIGTERM');
  t.equal(await first.exited, 0);

  rmSync(join(dataDir, 'nats'), { recursive: true, force: true });
  const second = await startCluster(t, env);
  await waitReady(second);
  t.equal((await fetch(`${second.query}/shops/old`)).status, 404, 'the old store’s shop is gone');
  const fresh = await register(second, 'fresh');
  t.same([fresh.status, fresh.position], [200, 1], 'the new store starts at position 1');
  t.equal((await fetch(`${second.query}/shops/fresh`, { headers: { 'x-min-position': '1' } })).status, 200, 'its shop is served');
  t.match(second.output(), /the views were built from another event store/, 'the log says why the views were emptied');
});
