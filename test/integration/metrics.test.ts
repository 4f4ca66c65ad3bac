import t from 'tap';
import { startTestNats } from '../helpers/nats.js';
import { parseMetrics, sample } from '../helpers/metrics.js';
import { commandUrl, post, startWorkers } from '../helpers/workers.js';

t.test('a NATS outage shows in a worker\'s /metrics: the failed commands by their error code, and one reconnect', async (t) => {
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1);
  const base = commandUrl(worker!);
  t.equal((await post(base, '/shops/n1/register', { name: 'N', category: 'c', ownerId: 'o' })).status, 200);
  await nats.stop(true);
  t.equal((await post(base, '/shops/n1/rename', { name: 'down' })).status, 503);
  await nats.restart();
  for (let i = 0; i < 100 && !worker!.link.isConnected(); i++) await new Promise((r) => setTimeout(r, 100));
  t.ok(worker!.link.isConnected(), 'reconnected');

  // Without the cluster primary, a worker's /metrics is its own registry.
  const metrics = parseMetrics(await (await fetch(`${base}/metrics`)).text());
  const count = (command: string, outcome: string) => sample(metrics, 'converge_command_duration_seconds_count', { aggregate: 'shop', command, outcome });
  t.equal(count('RegisterShop', 'accepted'), 1);
  t.equal(count('RenameShop', 'event_store_unavailable'), 1, 'the command NATS could not take, by its code');
  t.equal(sample(metrics, 'converge_nats_reconnects_total', {}), 1, 'one reconnect');
  t.equal(sample(metrics, 'converge_commands_forwarded_total', { aggregate: 'shop' }), undefined, 'one worker forwards nothing');
});
