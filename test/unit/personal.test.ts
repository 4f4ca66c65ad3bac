import t from 'tap';
import { Type } from 'typebox';
import { defineAggregate, defineEvents, emit, type EventOf, type StoredEvent } from '../../src/core/aggregate.js';
import { passedOver, type Commit, type EventStore, type StoredCommit } from '../../src/core/eventStore.js';
import { FORGOTTEN, personalDeclarations } from '../../src/core/personal.js';
import { memoryKeyStore, type KeyStore } from '../../src/store/keys.js';
import { createMemoryEventStore, type MemoryEventStore } from '../../src/store/memory.js';
import { SealedFieldError, shreddedStore, unsealCommit } from '../../src/store/shredded.js';

const accountEvents = defineEvents({
  AccountOpened: Type.Object({ customerId: Type.String(), name: Type.String(), email: Type.String(), plan: Type.String(), seats: Type.Integer() }),
  EmailChanged: Type.Object({ customerId: Type.String(), email: Type.String() }),
  PlanChanged: Type.Object({ plan: Type.String() }),
});
type AccountEvent = EventOf<typeof accountEvents>;

const base = {
  name: 'account',
  commands: {},
  events: accountEvents,
  initialState: () => ({}),
  decide: () => emit<AccountEvent>(),
  evolve: (state: object) => state,
} as const;

const account = defineAggregate({
  ...base,
  personal: {
    AccountOpened: { subject: 'customerId', fields: ['customerId', 'name', 'email'] },
    EmailChanged: { subject: 'customerId', fields: ['customerId', 'email'] },
  },
});

const at = '2024-05-01T10:00:00.000Z';
const ada = { customerId: 'cust-ada', name: 'Ada Lovelace', email: 'ada@example.com', plan: 'pro', seats: 3 };
const bob = { customerId: 'cust-bob', name: 'Bob Babbage', email: 'bob@example.com', plan: 'free', seats: 1 };

function commit(id: string, version: number, events: StoredEvent[]): Commit {
  return { commandId: `${id}-${version}`, commandType: 'Test', aggregate: 'account', id, version, events };
}

/** Ada's account (three commits) and Bob's (one), through the wrapper. */
async function setup(): Promise<{ inner: MemoryEventStore; keys: KeyStore; store: EventStore; written: Commit[] }> {
  const inner = createMemoryEventStore();
  const keys = memoryKeyStore();
  const store = shreddedStore(inner, { keys, personal: personalDeclarations([account]) });
  const written = [
    commit('acc-1', 1, [{ type: 'AccountOpened', data: ada, at }]),
    commit('acc-2', 1, [{ type: 'AccountOpened', data: bob, at }]),
    commit('acc-1', 2, [{ type: 'EmailChanged', data: { customerId: 'cust-ada', email: 'ada@lovelace.org' }, at }]),
    commit('acc-1', 3, [{ type: 'PlanChanged', data: { plan: 'team' }, at }]),
  ];
  for (const c of written) await store.append(c, await inner.lastPosition(c.aggregate, c.id));
  return { inner, keys, store, written };
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function subscribed(store: EventStore, count: number): Promise<StoredCommit[]> {
  const sub = await store.subscribe(0, { batchSize: 10 });
  const out: StoredCommit[] = [];
  for await (const d of sub) {
    out.push(d.commit);
    if (out.length === count) break;
  }
  sub.close();
  return out;
}

const dataOf = (commits: readonly StoredCommit[]) => commits.map((c) => c.events.map((e) => e.data));
const forgottenAda = { customerId: FORGOTTEN, name: FORGOTTEN, email: FORGOTTEN, plan: 'pro', seats: 3 };

t.test('the stored commits hold no plaintext of a personal field nor the subject id, but keep the non-personal fields', async (t) => {
  const { inner, keys } = await setup();
  const json = JSON.stringify(inner.commits);
  for (const secret of ['cust-ada', 'Ada Lovelace', 'ada@example.com', 'ada@lovelace.org', 'cust-bob', 'bob@example.com']) t.notOk(json.includes(secret), `no ${secret}`);
  const opened = inner.commits[0]!.events[0]!.data as Record<string, unknown>;
  t.same({ plan: opened.plan, seats: opened.seats }, { plan: 'pro', seats: 3 }, 'non-personal fields are stored as they are');
  t.equal((opened.email as { '~sealed': { k: string } })['~sealed'].k, keys.keyId('cust-ada'), 'a sealed field names its key by the key id');
  t.same(inner.commits[3]!.events[0]!.data, { plan: 'team' }, 'an event with no personal data is stored as it is');
});

t.test('every sealed field gets an IV of its own, across the draws of IVs from the random source', async (t) => {
  const inner = createMemoryEventStore();
  const store = shreddedStore(inner, { keys: memoryKeyStore(), personal: personalDeclarations([account]) });
  // 200 commits of three sealed fields each: 600 IVs, more than two draws of 256.
  for (let i = 0; i < 200; i++) await store.append(commit(`acc-${i}`, 1, [{ type: 'AccountOpened', data: { ...ada, customerId: `cust-${i % 7}` }, at }]), 0);
  const ivs = inner.commits.flatMap((c) => Object.values(c.events[0]!.data as Record<string, unknown>).flatMap((v) => (typeof v === 'object' && v !== null ? [(v as { '~sealed': { iv: string } })['~sealed'].iv] : [])));
  t.equal(ivs.length, 600, 'three sealed fields a commit');
  t.equal(new Set(ivs).size, 600, 'no IV is used twice');
  t.ok(ivs.every((iv) => Buffer.from(iv, 'base64').length === 12), 'each IV is 12 bytes');
  t.same(dataOf(await all(store.read('account', 'acc-199', 0))), [[{ ...ada, customerId: 'cust-3' }]], 'the last one reads back');
});

t.test("a subject's key id is the same once its cached id has been pushed out by others", async (t) => {
  const keys = memoryKeyStore({ cacheSize: 2 });
  const first = keys.keyId('cust-ada');
  for (const s of ['cust-bob', 'cust-cy', 'cust-di']) keys.keyId(s);
  t.equal(keys.keyId('cust-ada'), first);
  t.not(keys.keyId('cust-bob'), first, 'another subject has another id');
  t.equal((await keys.keyFor('cust-ada')).id, first, 'keyFor names the key by the same id');
});

t.test('every read path through the wrapper gives the personal fields back', async (t) => {
  const { store, written } = await setup();
  const acc1 = written.filter((c) => c.id === 'acc-1').map((c) => c.events.map((e) => e.data));
  t.same(dataOf(await all(store.read('account', 'acc-1', 0))), acc1, 'read');
  t.same(dataOf(await all(store.readSince('account', 'acc-1', 0))), acc1, 'readSince');
  t.same((await store.commitAt(2))?.events[0]?.data, bob, 'commitAt');
  t.same(dataOf(await subscribed(store, 4)), written.map((c) => c.events.map((e) => e.data)), 'subscribe');
});

t.test("after forget, every read path gives '[forgotten]' for that subject's fields and keeps other subjects' and non-personal fields", async (t) => {
  const { keys, store } = await setup();
  t.equal(await keys.forget('cust-ada'), keys.keyId('cust-ada'), 'forget answers the key id');
  const acc1 = [[forgottenAda], [{ customerId: FORGOTTEN, email: FORGOTTEN }], [{ plan: 'team' }]];
  t.same(dataOf(await all(store.read('account', 'acc-1', 0))), acc1, 'read');
  t.same(dataOf(await all(store.readSince('account', 'acc-1', 0))), acc1, 'readSince');
  t.same((await store.commitAt(1))?.events[0]?.data, forgottenAda, 'commitAt of the forgotten subject');
  t.same((await store.commitAt(2))?.events[0]?.data, bob, 'commitAt of another subject');
  t.same(dataOf(await subscribed(store, 4)), [acc1[0], [bob], acc1[1], acc1[2]], 'subscribe');
});

t.test('positions, versions and command ids are the same through the wrapper as in the store, before and after forget', async (t) => {
  const { inner, keys, store } = await setup();
  const place = (c: StoredCommit) => [c.position, c.aggregate, c.id, c.version, c.commandId];
  const stored = inner.commits.map(place);
  t.same(stored.map((p) => p[0]), [1, 2, 3, 4]);
  t.same((await subscribed(store, 4)).map(place), stored, 'before');
  await keys.forget('cust-ada');
  t.same((await subscribed(store, 4)).map(place), stored, 'after');
  t.same((await all(store.read('account', 'acc-1', 1))).map(place), stored.filter((p) => p[2] === 'acc-1' && Number(p[0]) > 1), 'read after a position');
});

t.test("two subjects' keys are independent: different ids and keys, and forgetting one leaves the other", async (t) => {
  const keys = memoryKeyStore();
  const [a, b] = [await keys.keyFor('cust-ada'), await keys.keyFor('cust-bob')];
  t.not(a.id, b.id);
  t.notOk(a.key.equals(b.key));
  t.match(a.id, /^[0-9a-f]{32}$/, 'a key id is 32 hex digits');
  t.ok((await keys.keyFor('cust-ada')).key.equals(a.key), 'the same subject gets the same key again');
  await keys.forget('cust-ada');
  t.equal(await keys.get(a.id), undefined);
  t.ok((await keys.get(b.id))?.equals(b.key));
});

t.test('a sealed field that its own key does not open throws SealedFieldError instead of reading as forgotten', async (t) => {
  const { inner, store } = await setup();
  const sealed = (inner.commits[0]!.events[0]!.data as { email: { '~sealed': { data: string } } }).email['~sealed'];
  sealed.data = Buffer.from('tampered').toString('base64');
  await t.rejects(store.commitAt(1), SealedFieldError);
  await t.rejects(all(store.read('account', 'acc-1', 0)), { code: 'internal_error', message: /acc-1 event 0 \(AccountOpened\) field email at position 1/ });
});

t.test('a subject forgotten and seen again gets a new key: its old fields stay forgotten and the new ones read back', async (t) => {
  const { inner, keys, store } = await setup();
  await keys.forget('cust-ada');
  await store.append(commit('acc-1', 4, [{ type: 'EmailChanged', data: { customerId: 'cust-ada', email: 'ada@new.org' }, at }]), 4);
  const read = dataOf(await all(store.read('account', 'acc-1', 0)));
  t.same(read[0], [forgottenAda], 'the fields sealed with the forgotten key');
  t.same(read[3], [{ customerId: 'cust-ada', email: 'ada@new.org' }], 'the field sealed with the new key');
  t.notOk(JSON.stringify(inner.commits).includes('ada@new.org'));
});

t.test('an event whose subject field is missing is stored as it is', async (t) => {
  const { inner, store } = await setup();
  const data = { email: 'nobody@example.com' };
  await store.append(commit('acc-9', 1, [{ type: 'EmailChanged', data, at }]), 0);
  t.same(inner.commits.at(-1)!.events[0]!.data, data);
});

t.test('commits with nothing sealed pass through as the same objects', async (t) => {
  const keys = memoryKeyStore();
  const inner = createMemoryEventStore();
  const store = shreddedStore(inner, { keys, personal: personalDeclarations([account]) });
  const seen: Commit[] = [];
  inner.beforeAppend((c) => void seen.push(c));
  const other = { ...commit('x', 1, [{ type: 'EmailChanged', data: { customerId: 'cust-ada', email: 'a@b.c' }, at }]), aggregate: 'shop' };
  const plain = commit('acc-1', 1, [{ type: 'PlanChanged', data: { plan: 'pro' }, at }]);
  await store.append(other, 0);
  await store.append(plain, 0);
  t.equal(seen[0], other, 'an aggregate without a declaration');
  t.equal(seen[1], plain, 'a declared aggregate whose events have no personal data');
  const skipped = passedOver('account', 'acc-1', 2);
  t.equal(await unsealCommit(skipped, keys), skipped, 'a passed-over commit');
  const stored = inner.commits[1]!;
  t.equal(await unsealCommit(stored, keys), stored, 'a stored commit without sealed fields');
});

t.test('unsealCommit opens a commit as it was stored, without the store or a declaration', async (t) => {
  const { inner, keys } = await setup();
  t.same((await unsealCommit(inner.commits[1]!, keys)).events[0]!.data, bob);
  await keys.forget('cust-bob');
  t.same((await unsealCommit(inner.commits[1]!, keys)).events[0]!.data, { ...bob, customerId: FORGOTTEN, name: FORGOTTEN, email: FORGOTTEN });
});

t.test('defineAggregate rejects a personal field that is not a string in its schema', async (t) => {
  t.throws(() => defineAggregate({ ...base, personal: { AccountOpened: { subject: 'customerId', fields: ['seats'] } } }), new TypeError(
    "account personal data of AccountOpened: seats must be a string in AccountOpened's schema, since a forgotten field reads as '[forgotten]'",
  ));
});

t.test('defineAggregate rejects personal data of an event type the aggregate does not declare', async (t) => {
  // @ts-expect-error -- the declaration is typed by the aggregate's events
  t.throws(() => defineAggregate({ ...base, personal: { CustomerRenamed: { subject: 'customerId', fields: ['name'] } } }), {
    name: 'TypeError',
    message: "account personal data of CustomerRenamed: CustomerRenamed is not one of the aggregate's events",
  });
});

t.test('defineAggregate rejects a subject or field that is not a field of the event', async (t) => {
  // @ts-expect-error -- fields are typed by the event's data
  t.throws(() => defineAggregate({ ...base, personal: { EmailChanged: { subject: 'customerId', fields: ['phone'] } } }), { message: /phone is not a field of EmailChanged/ });
  // @ts-expect-error -- the subject is typed by the event's data
  t.throws(() => defineAggregate({ ...base, personal: { PlanChanged: { subject: 'customerId', fields: [] } } }), { message: /customerId is not a field of PlanChanged/ });
});
