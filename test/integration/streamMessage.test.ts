import t from 'tap';
import { pino } from 'pino';
import { JetStreamApiCodes } from '@nats-io/jetstream';
import { connectNats } from '../../src/nats/connection.js';
import { getStreamMessage, JetStreamRequestError } from '../../src/nats/requests.js';
import { startTestNats } from '../helpers/nats.js';

// STREAM.MSG.GET over the connection's requester, on a real nats-server: what the event
// store's lookups and the archive's head read ask.

t.test('a stream message is found by last subject, by sequence and by next subject; a missing one is undefined', async (t) => {
  const nats = await startTestNats(t);
  const link = await connectNats(nats.url, { name: 'test-msg-get', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  await link.jsm.streams.add({ name: 'S', subjects: ['s.>'] });
  await link.js.publish('s.a', JSON.stringify({ n: 1 }));
  await link.js.publish('s.b', JSON.stringify({ n: 2 }));
  await link.js.publish('s.a', JSON.stringify({ n: 3 }));
  const get = (query: Parameters<typeof getStreamMessage>[2]) => getStreamMessage(link.requests, 'S', query, 2000);

  const last = await get({ last_by_subj: 's.a' });
  t.match(last, { subject: 's.a', seq: 3 }, 'the last message of a subject');
  t.same(last!.json(), { n: 3 }, 'with its data');
  t.ok(last!.time instanceof Date && Math.abs(last!.time.getTime() - Date.now()) < 60_000, 'and the time it was stored');
  const second = await get({ seq: 2 });
  t.match(second, { subject: 's.b', seq: 2 }, 'by sequence');
  t.same(second!.json(), { n: 2 }, 'with its own data');
  t.match(await get({ seq: 2, next_by_subj: 's.a' }), { seq: 3 }, 'the next of a subject from a sequence');
  t.equal(await get({ last_by_subj: 's.none' }), undefined, 'a subject without messages: none');
  t.equal(await get({ seq: 4, next_by_subj: 's.a' }), undefined, 'none after the last');
});

t.test("a stream that is not there is an error with JetStream's code, not a missing message", async (t) => {
  const nats = await startTestNats(t);
  const link = await connectNats(nats.url, { name: 'test-msg-get', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(() => link.close());
  const err = await getStreamMessage(link.requests, 'NOPE', { last_by_subj: 'x' }, 2000).catch((e: unknown) => e);
  t.ok(err instanceof JetStreamRequestError, 'an error');
  t.equal((err as JetStreamRequestError).code, JetStreamApiCodes.StreamNotFound, 'stream not found');
  t.equal((err as JetStreamRequestError).status, 404);
});

t.test('the same lookups made in one turn of the loop share one request; one made after their answer asks again and sees what changed', async (t) => {
  const nats = await startTestNats(t);
  const link = await connectNats(nats.url, { name: 'test-msg-get', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  const watcher = await connectNats(nats.url, { name: 'test-msg-get-watch', timeoutMs: 2000, log: pino({ level: 'silent' }) });
  t.teardown(async () => {
    await link.close();
    await watcher.close();
  });
  await link.jsm.streams.add({ name: 'S', subjects: ['s.>'] });
  // Every STREAM.MSG.GET request as nats-server receives it.
  const seen: string[] = [];
  watcher.nc.subscribe('$JS.API.STREAM.MSG.GET.S', { callback: (_err, msg) => void seen.push(msg.string()) });
  await watcher.nc.flush();
  const get = (query: Parameters<typeof getStreamMessage>[2]) => getStreamMessage(link.requests, 'S', query, 2000);

  const together = await Promise.all([get({ last_by_subj: 's.a' }), get({ last_by_subj: 's.a' }), get({ last_by_subj: 's.a' }), get({ last_by_subj: 's.b' })]);
  t.same(together, [undefined, undefined, undefined, undefined], 'none has a message yet');
  await link.js.publish('s.a', JSON.stringify({ n: 1 }));
  const after = await get({ last_by_subj: 's.a' });
  t.match(after, { seq: 1 }, 'a lookup after their answer is a request of its own, and sees the message stored since');
  await watcher.nc.flush();
  t.same(
    seen.map((s) => JSON.parse(s)),
    [{ last_by_subj: 's.a' }, { last_by_subj: 's.b' }, { last_by_subj: 's.a' }],
    'three requests for five lookups: the three alike in one turn were one',
  );
});
