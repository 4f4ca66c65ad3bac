import t, { type Test } from 'tap';
import Fastify from 'fastify';
import { createConverge, createMemoryEventStore } from '../../src/index.js';
import { shopPlatform } from '../../app.js';

// Metadata on every commit (docs/architecture.md, "Metadata"), through the in-process runtime:
// the same routes and write path the cluster runs, on the in-memory store.

const register = { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1' };

async function withRuntime(t: Test, tokens: string[] = []) {
  const store = createMemoryEventStore();
  const converge = await createConverge(shopPlatform, { eventStore: store, config: { logLevel: 'silent', http: { tokens } } });
  const app = Fastify();
  await app.register(converge.commandRoutes);
  await app.register(converge.queryRoutes);
  t.teardown(async () => {
    await app.close();
    await converge.stop();
  });
  return { store, app };
}

t.test('a request with X-Correlation-Id commits it, is caused by itself, and gets the id back', async (t) => {
  const { store, app } = await withRuntime(t);
  const res = await app.inject({ method: 'POST', url: '/shops/s1/register', payload: register, headers: { 'x-correlation-id': 'checkout-42', 'idempotency-key': 'k1' } });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['x-correlation-id'], 'checkout-42', 'returned on the reply');
  t.same(store.commits[0]?.metadata, { correlationId: 'checkout-42', causationId: 'k1' });
});

t.test('a request without one starts a conversation of its own: the command id', async (t) => {
  const { store, app } = await withRuntime(t);
  const res = await app.inject({ method: 'POST', url: '/shops/s1/register', payload: register, headers: { 'idempotency-key': 'k2' } });
  t.equal(res.headers['x-correlation-id'], 'k2');
  t.same(store.commits[0]?.metadata, { correlationId: 'k2', causationId: 'k2' });
});

t.test("the caller is the name of the token the request came with, never the token", async (t) => {
  const { store, app } = await withRuntime(t, ['backoffice:a-long-secret-token', 'unnamed-secret-token']);
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  t.equal((await app.inject({ method: 'POST', url: '/shops/s1/register', payload: register, headers: auth('a-long-secret-token') })).statusCode, 200);
  t.equal((await app.inject({ method: 'POST', url: '/shops/s2/register', payload: register, headers: auth('unnamed-secret-token') })).statusCode, 200);
  t.equal(store.commits[0]?.metadata?.caller, 'backoffice');
  t.match(store.commits[1]?.metadata?.caller, /^token-[0-9a-f]{8}$/);
  t.notMatch(JSON.stringify(store.commits), /secret-token/, 'no token is stored');
});

t.test('history shows each event with its correlation, causation and caller; older commits without metadata still read', async (t) => {
  const { store, app } = await withRuntime(t);
  // A commit as converge stored it before it recorded metadata.
  await store.append({ commandId: 'old', commandType: 'RegisterShop', aggregate: 'shop', id: 's1', version: 1, events: [{ type: 'ShopRegistered', data: { ...register, minOrderAmount: 0, deliveryFee: 0 }, at: '2026-01-01T00:00:00.000Z' }] }, 0);
  const renamed = await app.inject({ method: 'POST', url: '/shops/s1/rename', payload: { name: 'New' }, headers: { 'x-correlation-id': 'c-7', 'idempotency-key': 'k3' } });
  t.equal(renamed.statusCode, 200, 'the aggregate rehydrates from the old commit');
  const history = (await app.inject({ method: 'GET', url: '/shops/s1/history' })).json() as { events: Array<Record<string, unknown>> };
  t.same(history.events.map((e) => [e.type, e.correlationId, e.causationId]), [
    ['ShopRegistered', undefined, undefined],
    ['ShopRenamed', 'c-7', 'k3'],
  ]);
});
