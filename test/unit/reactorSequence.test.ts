import t, { type Test } from 'tap';
import { createConverge, defineReactor, type Reactor, type StoredEvent } from '../../src/index.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { shopPlatform } from '../../app.js';

// A reactor's sequences (docs/architecture.md, "Reactions"): events with one sequence key
// are handled one at a time in position order, events of different keys side by side.

type Renamed = Extract<ShopEvent, { type: 'ShopRenamed' }>;

/** A reactor on renames whose handling of a rename to `hold…` waits until the test lets it go. */
function holdingReactor(sequenceKey?: Reactor<Renamed>['sequenceKey']) {
  const started: string[] = [];
  const finished: string[] = [];
  const waiting = new Map<string, () => void>();
  const reactor = defineReactor({
    name: 'holding',
    handles: ['ShopRenamed'],
    ...(sequenceKey ? { sequenceKey } : {}),
    async handle(event: StoredEvent<Renamed>, meta) {
      const name = `${meta.id}:${event.data.name}`;
      started.push(name);
      if (event.data.name === 'fail') throw new Error(`cannot handle ${name}`);
      if (event.data.name.startsWith('hold')) await new Promise<void>((resolve) => waiting.set(name, resolve));
      finished.push(name);
    },
  });
  return { reactor, started, finished, release: (name: string) => waiting.get(name)?.() };
}

/**
 * The reference app with the reactor, its shops registered and seen by the reactions.
 * Batches wait 500 ms for more, so the renames a test sends one after another share one.
 */
async function runtime(t: Test, reactor: Reactor<Renamed>) {
  const converge = await createConverge(
    { ...shopPlatform, reactors: [...shopPlatform.reactors, reactor] },
    { config: { logLevel: 'silent', projections: { batchMs: 500 } } },
  );
  t.teardown(() => converge.stop());
  const send = async (id: string, type: string, data: object) => {
    const result = await converge.dispatch({ aggregate: 'shop', id, type, data } as never);
    if (result.kind !== 'accepted') throw new Error(`${type} ${id}: ${JSON.stringify(result)}`);
  };
  for (const id of ['s1', 's2']) await send(id, 'RegisterShop', { name: id, category: 'korean', ownerId: 'o1' });
  await converge.settled();
  return { converge, send };
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return false;
}

t.test('by default, a reactor handles another aggregate’s event while one aggregate’s handling waits', async (t) => {
  const h = holdingReactor();
  const { send } = await runtime(t, h.reactor);
  await send('s1', 'RenameShop', { name: 'hold' });
  await send('s2', 'RenameShop', { name: 'next' });
  t.ok(await until(() => h.finished.includes('s2:next')), 's2’s rename is handled while s1’s waits');
  t.same(h.finished, ['s2:next'], 's1’s has not finished');
  h.release('s1:hold');
  t.ok(await until(() => h.finished.includes('s1:hold')), 's1’s finishes once let go');
});

/**
 * Renames `first` to `hold` and then `second` to `next`, and checks that the second rename's
 * handling starts only once the first's is let go, after it in position order.
 */
async function secondWaitsForFirst(t: Test, h: ReturnType<typeof holdingReactor>, first: string, second: string): Promise<void> {
  const { send } = await runtime(t, h.reactor);
  await send(first, 'RenameShop', { name: 'hold' });
  await send(second, 'RenameShop', { name: 'next' });
  t.ok(await until(() => h.started.includes(`${first}:hold`)), 'the first rename is being handled');
  await new Promise((r) => setTimeout(r, 300));
  t.same(h.started, [`${first}:hold`], 'the second has not started while the first waits');
  h.release(`${first}:hold`);
  t.ok(await until(() => h.finished.length === 2), 'both are handled once it is let go');
  t.same(h.finished, [`${first}:hold`, `${second}:next`], 'in position order');
}

t.test('by default, one aggregate’s events are handled one at a time, in position order', (t) => secondWaitsForFirst(t, holdingReactor(), 's1', 's1'));

t.test('a constant sequenceKey handles every event in position order, one at a time', (t) => secondWaitsForFirst(t, holdingReactor(() => 'all'), 's1', 's2'));

t.test('an event whose sequenceKey throws is handled under the reactor’s policy: parked, and the others go on', async (t) => {
  const h = holdingReactor((event) => {
    if (event.data.name === 'bad') throw new Error('no key for bad');
    return 'all';
  });
  const reactor = { ...h.reactor, onError: { kind: 'park' as const } };
  const { converge, send } = await runtime(t, reactor);
  await send('s1', 'RenameShop', { name: 'bad' });
  await send('s2', 'RenameShop', { name: 'next' });
  await t.rejects(converge.settled(), { code: 'reaction_parked', message: /holding parked ShopRenamed at \d+: no key for bad/ }, 'the event without a key is parked with the key’s error');
  t.same(h.finished, ['s2:next'], 'the next rename is handled');
  t.notOk(h.started.includes('s1:bad'), 'the handler never saw the event without a key');
});

t.test('under the stop policy, no input at or after the one that stopped starts, and the reaction stands at the earliest stop', async (t) => {
  const h = holdingReactor();
  const { converge, send } = await runtime(t, { ...h.reactor, onError: { kind: 'stop' } });
  await send('s1', 'RenameShop', { name: 'fail' });
  await send('s2', 'RenameShop', { name: 'hold' });
  await send('s2', 'RenameShop', { name: 'after' });
  const holding = () => converge.status().reactions?.find((r) => r.name === 'holding');
  t.ok(await until(() => holding()?.state === 'stopped' && h.started.includes('s2:hold')), 'stopped at s1’s rename, s2’s first already started');
  h.release('s2:hold');
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(h.started.includes('s2:after'), 's2’s next rename, after the stop, does not start');
  t.match(holding(), { state: 'stopped', error: /cannot handle s1:fail/ }, 'the reaction stands at s1’s rename');
});

t.test('under the stop policy, the inputs of every key before the stop run, however many keys wait for a turn', async (t) => {
  // 40 keys (more than the 32 run at once) on one shop's renames, named `<key>:<what>`:
  // key 0 stops at its second rename, after keys 33–39 have their only one; keys 1–32 each
  // have a second after the stop.
  const handled: string[] = [];
  const reactor = defineReactor({
    name: 'keyed',
    handles: ['ShopRenamed'],
    onError: { kind: 'stop' },
    sequenceKey: (event: StoredEvent<Renamed>) => event.data.name.split(':')[0]!,
    async handle(event: StoredEvent<Renamed>) {
      if (event.data.name.endsWith(':fail')) throw new Error(`cannot handle ${event.data.name}`);
      await new Promise((r) => setTimeout(r, 5));
      handled.push(event.data.name);
    },
  });
  const { converge, send } = await runtime(t, reactor);
  const names = [
    'k0:first',
    ...Array.from({ length: 32 }, (_, i) => `k${i + 1}:first`),
    ...Array.from({ length: 7 }, (_, i) => `k${i + 33}:only`),
    'k0:fail',
    ...Array.from({ length: 32 }, (_, i) => `k${i + 1}:second`),
  ];
  for (const name of names) await send('s1', 'RenameShop', { name });
  const keyed = () => converge.status().reactions?.find((r) => r.name === 'keyed');
  t.ok(await until(() => keyed()?.state === 'stopped'), 'the reaction stops at k0’s second rename');
  t.ok(await until(() => names.slice(33, 40).every((n) => handled.includes(n))), 'the keys waiting for a turn ran their renames before the stop');
});

t.test('a reaction retrying one key’s input stays failing while another key’s input succeeds', async (t) => {
  const h = holdingReactor();
  const { converge, send } = await runtime(t, { ...h.reactor, onError: { kind: 'retry', times: 5, backoffMs: 10_000 } });
  await send('s1', 'RenameShop', { name: 'fail' });
  await send('s2', 'RenameShop', { name: 'hold' });
  const holding = () => converge.status().reactions?.find((r) => r.name === 'holding');
  t.ok(await until(() => holding()?.state === 'failing' && h.started.includes('s2:hold')), 's1’s rename failed and waits to be tried again');
  h.release('s2:hold');
  t.ok(await until(() => h.finished.includes('s2:hold')), 's2’s rename succeeds meanwhile');
  t.match(holding(), { state: 'failing', error: /ShopRenamed at \d+:0: cannot handle s1:fail/ }, 'the reaction still says it is failing, and on what');
});
