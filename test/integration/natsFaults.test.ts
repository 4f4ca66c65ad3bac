import t from 'tap';
import { startTestNats } from '../helpers/nats.js';
import { commandUrl, post, startWorkers } from '../helpers/workers.js';

t.test('NATS down: commands answer 503 quickly; NATS back: they succeed with no restart', async (t) => {
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1);
  const base = commandUrl(worker!);
  t.equal((await post(base, '/shops/f1/register', { name: 'F', category: 'c', ownerId: 'o' })).status, 200);

  await nats.stop(true);
  for (const [path, body] of [
    ['/shops/f1/rename', { name: 'live actor' }],
    ['/shops/f2/register', { name: 'cold actor', category: 'c', ownerId: 'o' }],
  ] as const) {
    const started = Date.now();
    const res = await post(base, path, body);
    const elapsed = Date.now() - started;
    t.same([res.status, res.body.error], [503, 'event_store_unavailable'], `${path} → 503`);
    t.ok(elapsed < 2000, `answered within 2 s (${elapsed} ms)`);
  }
  t.equal((await fetch(`${base}/ready`)).status, 503, 'not ready while NATS is down');

  await nats.restart();
  let res = { status: 0, body: {} as Record<string, unknown> };
  for (let i = 0; i < 100 && res.status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    res = await post(base, '/shops/f1/rename', { name: 'after restart' }, { 'idempotency-key': 'after-restart' });
  }
  t.same([res.status, res.body.version], [200, 2], 'the live actor continues from where it was');
  const cold = await post(base, '/shops/f2/register', { name: 'cold', category: 'c', ownerId: 'o' });
  t.same([cold.status, cold.body.version], [200, 1]);
  t.equal((await fetch(`${base}/ready`)).status, 200);
});
