import t from 'tap';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';
import { eventually } from '../helpers/processes.js';
import { shopPlatform } from '../../app.js';

// Forgetting a customer as a cluster host runs it (docs/architecture.md, "Forgetting"): the
// worker seals the customer's fields with a key in the converge-keys bucket, `converge
// forget` deletes it through the projector's admin API, and the projector's LMDB views and
// the worker's reads show the fields forgotten.

t.setTimeout(180_000);
const CLI = join(import.meta.dirname, '../../dist/src/host/cli.js');
const TOKEN = 'forget-admin-token';

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: tempDir(t), env: { PATH: process.env.PATH ?? '' } }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

type OrderItem = { orderId: string; customerId: string };

t.test('converge forget redacts a customer in the views and history a worker serves, deletes the key and stores nothing in clear', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const env = { CONVERGE_HTTP_TOKENS: TOKEN, CONVERGE_PROJECTIONS_STATUS_INTERVAL_MS: '200' };
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir, ...env });
  const projector = await startTestProjector(t, nats.url, dataDir, { env, projections: shopPlatform.projections });
  const cmd = commandUrl(worker!);
  const query = urlOf(worker!.queryApp);
  const auth = { authorization: `Bearer ${TOKEN}` };
  await post(cmd, '/shops/s1/register', { name: 'K', category: 'korean', ownerId: 'u1' }, auth);
  await post(cmd, '/shops/s1/open', {}, auth);
  await post(cmd, '/shops/s1/add-menu-item', { menuId: 'm1', name: 'Kimbap', price: 4500 }, auth);
  const place = (id: string, customerId: string) => post(cmd, `/orders/${id}/place`, { shopId: 's1', customerId, items: [{ menuId: 'm1', quantity: 1 }] }, auth);
  t.equal((await place('o1', 'kim-minji')).status, 200, 'an order of the customer to forget');
  t.equal((await place('o2', 'lee-jun')).status, 200, 'and of another');
  const byShop = async () => ((await get(`${query}/shops/s1/orders`, auth)).body as { items?: OrderItem[] }).items ?? [];
  t.ok(await eventually(async () => (await byShop()).length === 2, 10_000), 'both orders are in the view');
  t.same((await byShop()).map((o) => o.customerId).sort(), ['kim-minji', 'lee-jun'], 'with their customers');

  const forgot = await cli('--url', urlOf(projector.adminApp), '--token', TOKEN, 'forget', 'kim-minji', '--json');
  t.equal(forgot.code, 0, `converge forget exits 0 ${forgot.stderr}`);
  const { keyId } = JSON.parse(forgot.stdout) as { keyId: string; position: number };
  t.ok(await eventually(async () => (await byShop()).some((o) => o.customerId === '[forgotten]'), 20_000), 'the view is rebuilt with the customer forgotten');
  t.same((await byShop()).map((o) => `${o.orderId}:${o.customerId}`).sort(), ['o1:[forgotten]', 'o2:lee-jun'], 'and the other customer kept');
  const history = await get(`${query}/orders/o1/history`, auth);
  t.match(history.body, { events: [{ type: 'OrderPlaced', data: { customerId: '[forgotten]' } }] }, "the worker's history of the order reads forgotten");
  t.equal((await post(cmd, '/orders/o1/accept', {}, auth)).status, 200, 'the order still takes commands');

  const link = await connectNats(nats.url, { name: 'test-reader', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const info = await link.jsm.streams.info('EVENTS');
  const stored: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await link.jsm.streams.getMessage('EVENTS', { seq }).catch(() => undefined);
    if (m) stored.push(m.string());
  }
  t.notOk(stored.some((m) => m.includes('kim-minji')), 'no message in EVENTS holds the customer id in clear');
  t.ok(stored.some((m) => m.includes('lee-jun') === false && m.includes('~sealed')), 'the fields are stored sealed');
  t.ok(stored.some((m) => m.includes('"~~forget"') && m.includes(keyId)), 'the act is recorded in EVENTS under the key id');
  const keys = await link.jsm.streams.getMessage('KV_converge-keys', { last_by_subj: `$KV.converge-keys.${keyId}` }).catch(() => undefined);
  t.equal(keys?.data.length ?? 0, 0, 'the key is gone from the converge-keys bucket');
});
