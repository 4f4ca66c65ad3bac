import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { EventStore, StoredCommit } from '../../src/core/eventStore.js';
import { keyStore, memoryKeyStore, type KeyBackend, type KeyStore, type StoredKey } from '../../src/store/keys.js';
import { createMemoryEventStore } from '../../src/store/memory.js';
import { mapAhead, SealedFieldError, shreddedStore, unsealCommit } from '../../src/store/shredded.js';
import { joined, memberPersonal } from '../helpers/member.js';
import { eventually } from '../helpers/processes.js';

// How a process reads the keys that open personal fields (docs/architecture.md, "Forgetting"):
// a feed opens a commit's fields with its subject's key, which a key not in the cache must
// wait for. These tests hold those waits and check that the commits behind the one waiting
// are opened meanwhile, and still delivered in order; that one key is loaded once at a time;
// and that a field names its key's revision and is opened by reading the key at it.

const personal = memberPersonal;

/** A deferred: a promise and what settles it. */
function deferred<T>(): { promise: Promise<T>; resolve(value: T): void; reject(err: unknown): void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/**
 * `keys` with every `get` held until `release`, which lets those held go last asked first,
 * and every later one at once; `inFlight` counts those held.
 */
function heldKeys(keys: KeyStore): KeyStore & { inFlight: () => number; release(): void } {
  const held: Array<() => void> = [];
  let released = false;
  return {
    ...keys,
    inFlight: () => held.length,
    release() {
      released = true;
      for (const go of held.splice(0).reverse()) go();
    },
    async get(id) {
      if (!released) {
        const release = deferred<void>();
        held.push(() => release.resolve());
        await release.promise;
      }
      return keys.get(id);
    },
  };
}

/** Five members, each with a subject of its own, written through a wrapper whose keys the reader shares but does not cache. */
async function fiveMembers(): Promise<{ inner: EventStore; keys: KeyStore }> {
  const inner = createMemoryEventStore();
  const keys = memoryKeyStore();
  const writer = shreddedStore(inner, { keys, personal });
  for (let i = 1; i <= 5; i++) {
    await writer.append(joined(`m${i}`, `cust-${i}`, `${i}@example.com`), 0);
  }
  return { inner, keys };
}

t.test("a subscription opens the commits behind the one it waits for while that one's key loads, and delivers them in order", async (t) => {
  const { inner, keys } = await fiveMembers();
  const held = heldKeys(keys);
  const reader = shreddedStore(inner, { keys: held, personal });
  const sub = await reader.subscribe(0, { batchSize: 10 });
  const out: StoredCommit[] = [];
  const reading = (async () => {
    for await (const d of sub) {
      out.push(d.commit);
      if (out.length === 5) break;
    }
  })();
  t.ok(await eventually(() => held.inFlight() === 5, 1000), "the five commits' keys are asked for before the first arrives");
  t.same(out, [], 'and nothing is delivered before its key');
  // The last asked first: the first commit still comes first.
  held.release();
  await reading;
  sub.close();
  t.same(out.map((c) => c.position), [1, 2, 3, 4, 5], 'delivered in position order');
  t.same(out.map((c) => (c.events[0]!.data as { email: string }).email), ['1@example.com', '2@example.com', '3@example.com', '4@example.com', '5@example.com'], 'each opened with its own key');
});

t.test('mapAhead maps at most `ahead` items at once', async (t) => {
  async function* numbers() {
    for (let i = 0; i < 10; i++) yield i;
  }
  let running = 0;
  let most = 0;
  const out: number[] = [];
  for await (const n of mapAhead(numbers(), 3, async (i) => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, 1 + (i % 3)));
    running--;
    return i * 10;
  })) out.push(n);
  t.same(out, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90], 'every item, in order');
  t.equal(most, 3, 'three at once, no more');
});

t.test("mapAhead gives a map's error in its item's place, after the items before it", async (t) => {
  async function* numbers() {
    for (let i = 0; i < 5; i++) yield i;
  }
  const out: number[] = [];
  const failed = deferred<void>();
  // The failing map ends first; the one before it later.
  const read = (async () => {
    for await (const n of mapAhead(numbers(), 4, async (i) => {
      if (i === 2) {
        failed.resolve();
        throw new Error('item 2 does not map');
      }
      if (i < 2) await failed.promise;
      return i;
    })) out.push(n);
  })();
  await t.rejects(read, /item 2 does not map/);
  t.same(out, [0, 1], 'the items before it, and none after');
});

t.test("mapAhead gives the source's error after the items it yielded before it", async (t) => {
  async function* failing() {
    yield 1;
    yield 2;
    throw new Error('the source broke');
  }
  const out: number[] = [];
  await t.rejects(
    (async () => {
      for await (const n of mapAhead(failing(), 8, async (i) => i)) out.push(n);
    })(),
    /the source broke/,
  );
  t.same(out, [1, 2]);
});

t.test('concurrent reads of one key not in the cache load it once', async (t) => {
  const load = deferred<Buffer | undefined>();
  let loads = 0;
  const key = randomBytes(32);
  const keys = keyStore(randomBytes(32), {
    load: () => (loads++, load.promise.then((key) => key && { key })),
    createOrLoad: async (_id, k) => ({ key: k }),
    erase: async () => undefined,
  }, 10);
  const reads = Promise.all([keys.get('k1'), keys.get('k1'), keys.get('k1')]);
  load.resolve(key);
  t.same((await reads).map((k) => k?.equals(key)), [true, true, true], 'all three get the key');
  t.equal(loads, 1, 'from one load');
  await keys.get('k1');
  t.equal(loads, 1, 'and the cache has it after');
});

t.test('a read after an evict does not take the load that began before it, nor is that load cached', async (t) => {
  const loads: Array<ReturnType<typeof deferred<Buffer | undefined>>> = [];
  const keys = keyStore(randomBytes(32), {
    load: () => {
      const d = deferred<Buffer | undefined>();
      loads.push(d);
      return d.promise.then((key) => key && { key });
    },
    createOrLoad: async (_id, k) => ({ key: k }),
    erase: async () => undefined,
  }, 10);
  const old = randomBytes(32);
  const fresh = randomBytes(32);
  const before = keys.get('k1');
  keys.evict('k1');
  const after = keys.get('k1');
  t.equal(loads.length, 2, 'the read after the evict loads again');
  loads[0]!.resolve(old);
  loads[1]!.resolve(fresh);
  t.ok((await before)?.equals(old));
  t.ok((await after)?.equals(fresh), 'and gets what that load found');
  t.ok((await keys.get('k1'))?.equals(fresh), 'the cache keeps the later load');
  t.equal(loads.length, 2);
});

/** A bucket of keys in memory whose reads are counted: by key id (`load`) and by revision (`loadAt`). */
function countedBackend() {
  const keys = new Map<string, StoredKey>();
  const reads = { byId: 0, byRevision: [] as number[] };
  let revision = 0;
  const backend: KeyBackend = {
    load: async (id) => (reads.byId++, keys.get(id)),
    loadAt: async (id, at) => {
      reads.byRevision.push(at);
      const found = keys.get(id);
      return found?.revision === at ? found : backend.load(id);
    },
    async createOrLoad(id, key) {
      if (!keys.has(id)) keys.set(id, { key, revision: ++revision });
      return keys.get(id)!;
    },
    erase: async (id) => void keys.delete(id),
  };
  return { backend, reads, keys };
}

t.test("a field names its key's revision, where the key store has one, and is opened by reading the key at it", async (t) => {
  const { backend, reads } = countedBackend();
  const secret = randomBytes(32);
  const inner = createMemoryEventStore();
  const writer = shreddedStore(inner, { keys: keyStore(secret, backend, 10), personal });
  await writer.append(joined('m1', 'cust-1', 'one@example.com'), 0);
  await writer.append(joined('m2', 'cust-2', 'two@example.com'), 0);
  const stored = inner.commits.map((c) => (c.events[0]!.data as { email: { '~sealed': { r?: number } } }).email['~sealed'].r);
  t.same(stored, [1, 2], "each field carries its key's revision");
  // Another process's store: nothing cached.
  const reader = shreddedStore(inner, { keys: keyStore(secret, backend, 10), personal });
  reads.byId = 0;
  t.equal(((await reader.commitAt(2))!.events[0]!.data as { email: string }).email, 'two@example.com');
  t.same(reads, { byId: 0, byRevision: [2] }, 'read by its revision, not by key id');
});

t.test("a field whose key's revision is not a positive whole number does not open", async (t) => {
  const { backend } = countedBackend();
  const inner = createMemoryEventStore();
  const keys = keyStore(randomBytes(32), backend, 10);
  await shreddedStore(inner, { keys, personal }).append(joined('m1', 'cust-1', 'one@example.com'), 0);
  const sealed = (inner.commits[0]!.events[0]!.data as { email: { '~sealed': { r?: unknown } } }).email['~sealed'];
  for (const r of [0, -3, 1.5, '1']) {
    sealed.r = r;
    await t.rejects(unsealCommit(inner.commits[0]!, keys), SealedFieldError, `r = ${JSON.stringify(r)}`);
  }
});
