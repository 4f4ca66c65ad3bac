import t, { type Test } from 'tap';
import { Kvm } from '@nats-io/kv';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { KEYS_BUCKET, kvKeyStore, type KeyStore } from '../../src/store/keys.js';
import { FORGOTTEN } from '../../src/core/personal.js';
import { resolveConfig } from '../../src/host/config.js';
import { openStoreSide } from '../../src/host/storeSide.js';
import { joined, memberPersonal } from '../helpers/member.js';
import { startTestNats, type TestNats } from '../helpers/nats.js';
import { eventually } from '../helpers/processes.js';

t.setTimeout(60_000);
const log = pino({ level: 'silent' });

/** A nats-server of the test's own, and two processes' key stores on their own connections, opened at the same time. */
async function twoStores(t: Test): Promise<{ nats: TestNats; links: NatsLink[]; a: KeyStore; b: KeyStore }> {
  const nats = await startTestNats(t);
  const links = await Promise.all(['a', 'b'].map((name) => connectNats(nats.url, { name, timeoutMs: 2000, log })));
  t.teardown(() => Promise.all(links.map((l) => l.close().catch(() => undefined))));
  const [a, b] = await Promise.all(links.map((link) => kvKeyStore(link, { replicas: 1 })));
  return { nats, links, a: a!, b: b! };
}

/**
 * A writer's and a reader's key stores, each on a connection of its own, and `watchReads`: the
 * key reads nats-server receives from the moment it is called, as a third connection sees
 * them. The reads before it were answered, so none of them comes.
 */
async function writerAndReader(t: Test) {
  const nats = await startTestNats(t);
  const links = await Promise.all(['writer', 'reader', 'watcher'].map((name) => connectNats(nats.url, { name, timeoutMs: 2000, log })));
  t.teardown(() => Promise.all(links.map((l) => l.close().catch(() => undefined))));
  const [writerLink, readerLink, watcher] = links as [NatsLink, NatsLink, NatsLink];
  const writer = await kvKeyStore(writerLink, { replicas: 1 });
  const reader = await kvKeyStore(readerLink, { replicas: 1 });
  const watchReads = async (): Promise<() => Promise<object[]>> => {
    const asked: object[] = [];
    watcher.nc.subscribe(`$JS.API.STREAM.MSG.GET.KV_${KEYS_BUCKET}`, { callback: (_err, msg) => void asked.push(JSON.parse(msg.string()) as object) });
    await watcher.nc.flush();
    return async () => {
      await watcher.nc.flush();
      return asked;
    };
  };
  return { writerLink, writer, reader, watchReads };
}

/** Whether any file under `dir` holds `bytes`. */
function onDisk(dir: string, bytes: Buffer): boolean {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).some((e) => e.isFile() && readFileSync(join(e.parentPath, e.name)).includes(bytes));
}

t.test('two stores on two connections asking for the same subjects at the same time get one key each', async (t) => {
  const { a, b } = await twoStores(t);
  const subjects = Array.from({ length: 20 }, (_, i) => `customer-${i}`);
  const [fromA, fromB] = await Promise.all([a, b].map((s) => Promise.all(subjects.map((subject) => s.keyFor(subject)))));
  t.ok(subjects.every((_, i) => fromA![i]!.key.equals(fromB![i]!.key)), 'both got the same key for every subject');
  t.equal(new Set(fromA!.map((k) => k.key.toString('hex'))).size, subjects.length, 'and every subject its own');
  t.ok((await b.get(fromA![0]!.id))?.equals(fromA![0]!.key), 'the key is found under its id');
});

t.test('the secret is made once and shared: every store on the bucket gives a subject the same key id', async (t) => {
  const { links, a, b } = await twoStores(t);
  const later = await kvKeyStore(links[0]!, { replicas: 1 });
  const id = a.keyId('customer-1');
  t.equal(b.keyId('customer-1'), id);
  t.equal(later.keyId('customer-1'), id, 'a store opened later');
  t.match(id, /^[0-9a-f]{32}$/);
  t.not(a.keyId('customer-2'), id, 'another subject has another id');
  const keys = [];
  for await (const k of await (await new Kvm(links[0]!.js).open(KEYS_BUCKET)).keys()) keys.push(k);
  t.same(keys.sort(), ['secret'], 'the bucket holds the secret and no subject id');
});

t.test('after one store forgets a subject, another reads its key as undefined once it evicts its cached copy', async (t) => {
  const { a, b } = await twoStores(t);
  const { id, key } = await a.keyFor('customer-1');
  t.ok((await b.get(id))?.equals(key), 'b has the key, and caches it');
  t.equal(await a.forget('customer-1'), id);
  t.equal(await a.get(id), undefined, 'the store that forgot it');
  t.ok((await b.get(id))?.equals(key), 'b still holds its cached copy until told');
  b.evict(id);
  t.equal(await b.get(id), undefined, 'b, after evict');
  const again = await b.keyFor('customer-1');
  t.notOk(again.key.equals(key), 'a subject seen again gets a new key');
});

t.test("the bucket keeps no revision of a forgotten key, nor its bytes in the server's files", async (t) => {
  const { nats, links, a } = await twoStores(t);
  const { id, key } = await a.keyFor('customer-1');
  const kv = await new Kvm(links[0]!.js).open(KEYS_BUCKET);
  const { config } = await links[0]!.jsm.streams.info(`KV_${KEYS_BUCKET}`);
  t.same([config.max_msgs_per_subject, config.allow_direct], [1, false], 'one revision per key, read from the leader');
  t.ok(await eventually(() => onDisk(nats.storeDir, key), 5000), "before, the key is in the server's files");
  await a.forget('customer-1');
  const history = [];
  for await (const e of await kv.history({ key: id })) {
    history.push({ operation: e.operation, length: e.length });
    if (e.delta === 0) break;
  }
  t.same(history, [{ operation: 'PURGE', length: 0 }], 'its history is one purge marker, without a value');
  t.notOk(onDisk(nats.storeDir, key), "its bytes are gone from the server's files");
});

t.test('a process keeps eventStore.keyCacheSize keys: a field of a subject past them reads its key from the bucket again', async (t) => {
  const nats = await startTestNats(t);
  const side = await openStoreSide({
    config: resolveConfig({ nats: { url: nats.url }, eventStore: { keyCacheSize: 1 } }),
    log,
    name: 'keys-cache',
    streams: 'create',
    personal: memberPersonal,
  });
  t.teardown(() => side.close());
  const join = (id: string, customerId: string) => side.store.append(joined(id, customerId, `${customerId}@example.com`), 0);
  // Ada's key first, then Bob's: a cache of one keeps Bob's alone.
  const ada = await join('m1', 'ada');
  const bob = await join('m2', 'bob');
  // Forgotten by another process, which does not tell this one.
  const link = await connectNats(nats.url, { name: 'other', timeoutMs: 2000, log });
  t.teardown(() => link.close());
  const other = await kvKeyStore(link, { replicas: 1 });
  await other.forget('ada');
  await other.forget('bob');
  const email = async (position: number) => ((await side.store.commitAt(position))!.events[0]!.data as { email: string }).email;
  t.equal(await email(bob.position), 'bob@example.com', 'the key kept opens its field still');
  t.equal(await email(ada.position), FORGOTTEN, 'the key pushed out is read from the bucket, where it is gone');
});

t.test("a field names its key's sequence in the bucket, and a process without the key in its cache reads it by that sequence", async (t) => {
  const { writerLink, writer, reader, watchReads } = await writerAndReader(t);
  const { id, key, revision } = await writer.keyFor('customer-1');
  const entry = await (await new Kvm(writerLink.js).open(KEYS_BUCKET)).get(id);
  t.equal(revision, entry?.revision, "the key's revision is its message's sequence");
  const reads = await watchReads();
  t.ok((await reader.get(id, revision))?.equals(key), 'read by it, the key is the one made');
  t.same(await reads(), [{ seq: revision }], 'with one read by sequence, none by key id');
  await writer.forget('customer-1');
  reader.evict(id);
  t.equal(await reader.get(id, revision), undefined, 'once forgotten, nothing is at its sequence, nor under its id');
  const again = await writer.keyFor('customer-1');
  reader.evict(id);
  t.ok((await reader.get(id, revision))?.equals(again.key), 'the key made again is read under its id, and the field\'s key check tells them apart');
});

t.test("a key read by its id is its subject's first message in the bucket, not its last, and reads forgotten once forgotten", async (t) => {
  const { writerLink, writer, reader, watchReads } = await writerAndReader(t);
  const { id, key, revision } = await writer.keyFor('customer-1');
  const reads = await watchReads();
  t.ok((await reader.get(id))?.equals(key), 'the key made');
  t.same(await reads(), [{ seq: 1, next_by_subj: `$KV.${KEYS_BUCKET}.${id}` }], 'one read, of the first message on its subject');
  await writer.forget('customer-1');
  reader.evict(id);
  t.equal(await reader.get(id), undefined, 'forgotten: its subject holds a marker without a key');
  const again = await writer.keyFor('customer-1');
  t.ok(again.revision! > revision!, 'made again, later in the bucket');
  reader.evict(id);
  t.ok((await reader.get(id))?.equals(again.key), 'the key made again is read under its id');
});

t.test('on a bucket made to keep more than one message per key, a key read by its id is its last message', async (t) => {
  const nats = await startTestNats(t);
  const links = await Promise.all(['writer', 'reader'].map((name) => connectNats(nats.url, { name, timeoutMs: 2000, log })));
  t.teardown(() => Promise.all(links.map((l) => l.close().catch(() => undefined))));
  const [writerLink, readerLink] = links as [NatsLink, NatsLink];
  await new Kvm(writerLink.js).create(KEYS_BUCKET, { history: 3 });
  const writer = await kvKeyStore(writerLink, { replicas: 1 });
  const first = await writer.keyFor('customer-1');
  await writer.forget('customer-1');
  const again = await writer.keyFor('customer-1');
  t.not(again.key.toString('hex'), first.key.toString('hex'), 'a new key');
  const reader = await kvKeyStore(readerLink, { replicas: 1 });
  t.ok((await reader.get(first.id))?.equals(again.key), 'the last made, not the first message on its subject');
});
