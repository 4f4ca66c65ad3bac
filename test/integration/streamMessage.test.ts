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
