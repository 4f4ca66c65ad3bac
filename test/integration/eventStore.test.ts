import t from 'tap';
import { pino } from 'pino';
import { createJetStreamEventStore } from '../../src/store/jetstream.js';
import { ensureEventStream } from '../../src/store/eventStream.js';
import { type Commit } from '../../src/core/eventStore.js';
import { WrongExpectedPositionError } from '../../src/core/errors.js';
import { connectNats } from '../../src/nats/connection.js';
import { startTestNats } from '../helpers/nats.js';

const commit = (commandId: string, version: number, id = 's1'): Commit => ({
  commandId,
  commandType: 'RenameShop',
  aggregate: 'shop',
  id,
  version,
  events: [{ type: 'ShopRenamed', data: { name: `n${version}` }, at: '2026-01-01T00:00:00.000Z' }],
});

t.test('event store on a real nats-server', async (t) => {
  const nats = await startTestNats(t);
  const link = await connectNats(nats.url, { name: 'test', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const created = await ensureEventStream(link, 60_000);
  t.equal(await ensureEventStream(link, 60_000), created, 'setting up the stream twice keeps the same stream');
  const store = createJetStreamEventStore(link, { publishTimeoutMs: 1500 });

  t.test('a new aggregate has position 0 and no commits', async (t) => {
    t.equal(await store.lastPosition('shop', 'none'), 0);
    const read = [];
    for await (const c of store.read('shop', 'none', 0)) read.push(c);
    t.same(read, []);
  });

  t.test('appends with the expected position and reads the commits back in order', async (t) => {
    const a = await store.append(commit('c1', 1), 0);
    const b = await store.append(commit('c2', 2), a.position);
    t.same([a.duplicate, b.duplicate], [false, false]);
    t.ok(b.position > a.position, 'positions grow');
    t.equal(await store.lastPosition('shop', 's1'), b.position);
    const read = [];
    for await (const c of store.read('shop', 's1', 0)) read.push(c);
    t.same(read.map((c) => [c.commandId, c.version, c.position]), [['c1', 1, a.position], ['c2', 2, b.position]]);
    const after = [];
    for await (const c of store.read('shop', 's1', a.position)) after.push(c.commandId);
    t.same(after, ['c2'], 'reading after a position skips what came before');
    t.match(await store.commitAt(a.position), { commandId: 'c1', version: 1, position: a.position });
  });

  t.test('reads of a short aggregate (direct gets) and of a long one (a consumer) give every commit after the position, and leave no consumer on the server', async (t) => {
    let position = 0;
    for (let v = 1; v <= 40; v++) position = (await store.append(commit(`long-${v}`, v, 'long'), position)).position;
    const positions = async (id: string, after: number) => {
      const out = [];
      for await (const c of store.read('shop', id, after)) out.push(c.version);
      return out;
    };
    t.same(await positions('s1', 0), [1, 2], 'the short one whole');
    t.same((await positions('long', 0)).length, 40, 'the long one whole');
    const sub = await store.subscribe(0, { batchSize: 10 });
    for await (const _ of sub) break;
    sub.close();
    await new Promise((r) => setTimeout(r, 200));
    t.equal((await link.jsm.streams.info('EVENTS')).state.consumer_count, 0, 'no consumer is left behind');
  });

  t.test('a direct get answered by a replica that lacks the rest (null) leaves the rest to a consumer: the read is whole', async (t) => {
    let position = 0;
    for (let v = 1; v <= 5; v++) position = (await store.append(commit(`lag-${v}`, v, 'lagging'), position)).position;
    const direct = link.jsm.direct;
    const getMessage = direct.getMessage.bind(direct);
    let asked = 0;
    // Answers like a replica behind the leader from the third message on: it has none of them yet.
    direct.getMessage = (async (stream: string, query: never) => (++asked >= 3 ? null : getMessage(stream, query))) as typeof direct.getMessage;
    t.teardown(() => void (direct.getMessage = getMessage));
    const versions = [];
    for await (const c of store.read('shop', 'lagging', 0)) versions.push(c.version);
    t.ok(asked >= 3, 'the lagging answer was given');
    t.same(versions, [1, 2, 3, 4, 5], 'every commit, in order, once');
  });

  t.test('a stale expected position is refused as a conflict', async (t) => {
    const last = await store.lastPosition('shop', 's1');
    await t.rejects(store.append(commit('c3', 2), last - 1), WrongExpectedPositionError);
    await t.rejects(store.append(commit('c4', 1, 'fresh'), 5), WrongExpectedPositionError, 'a new aggregate expects 0');
    t.equal(await store.lastPosition('shop', 's1'), last, 'nothing was appended');
  });

  t.test('a repeated command id returns the original position as a duplicate', async (t) => {
    const first = await store.append(commit('dup', 1, 's2'), 0);
    const again = await store.append(commit('dup', 1, 's2'), 0);
    t.same(again, { position: first.position, duplicate: true });
    const other = await store.append(commit('dup', 1, 's3'), 0);
    t.equal(other.duplicate, false, 'the same key on another aggregate is a different command');
  });
});

t.test('the stream keeps its id across kill -9 of nats-server and a settings update', async (t) => {
  const nats = await startTestNats(t);
  const connect = () => connectNats(nats.url, { name: 'test', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  let link = await connect();
  const id = await ensureEventStream(link, 60_000);
  const store = createJetStreamEventStore(link, { publishTimeoutMs: 1500 });
  await store.append(commit('k1', 1, 'kept'), 0);
  await link.close();
  // nats-server 2.9.10 restores a stream with its restart time as `created`, and an update
  // then writes that to disk: an id taken from `created` would change here.
  for (const window of [90_000, 60_000]) {
    await nats.stop(true);
    await nats.restart();
    link = await connect();
    t.equal(await ensureEventStream(link, window), id, `after a kill -9, and an update of the duplicate window to ${window} ms, the id is the same`);
    await link.close();
  }
  await nats.stop(true);
  await nats.restart();
  link = await connect();
  t.teardown(() => link.close());
  t.equal(await ensureEventStream(link, 60_000), id, 'and after one more kill -9');
});

t.test('a recreated stream gets a new id', async (t) => {
  const nats = await startTestNats(t);
  const link = await connectNats(nats.url, { name: 'test', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const id = await ensureEventStream(link, 60_000);
  await link.jsm.streams.delete('EVENTS');
  t.not(await ensureEventStream(link, 60_000), id);
});
