import t from 'tap';
import { connect, headers } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createRequester, NoRespondersError, publishAcked, PublishRefusedError, RequestTimeoutError } from '../../src/nats/requests.js';
import { startTestNats } from '../helpers/nats.js';

t.test('request-reply over one inbox subscription on a real nats-server', async (t) => {
  const nats = await startTestNats(t);
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const requests = createRequester(nc, { sweepMs: 20 });
  t.teardown(() => requests.close());
  nc.subscribe('echo', { callback: (_err, msg) => void msg.respond(`${msg.string()}:${msg.headers?.get('x-tag') ?? ''}`) });
  nc.subscribe('silent', { callback: () => undefined });
  await nc.flush();

  t.test('each request gets its own reply, headers included', async (t) => {
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        const h = headers();
        h.set('x-tag', `t${i}`);
        return requests.request('echo', `m${i}`, { timeoutMs: 2000, headers: h });
      }),
    );
    t.same(replies.map((m) => m.string()), Array.from({ length: 50 }, (_, i) => `m${i}:t${i}`));
  });

  t.test('requests made by separate tasks of one turn of the event loop reach the socket in one write', async (t) => {
    // nats.js's socket, to count writes (one per flush of what was published).
    const socket = (nc as unknown as { protocol: { transport: { socket: { write: (...args: unknown[]) => boolean } } } }).protocol.transport.socket;
    const write = socket.write;
    let writes = 0;
    socket.write = function (this: unknown, ...args: unknown[]) {
      writes++;
      return write.apply(this, args);
    };
    t.teardown(() => void (socket.write = write));
    // The answers come from another connection, so that only the requests write on this one.
    const responder = await connect({ servers: nats.url });
    t.teardown(() => responder.close());
    responder.subscribe('echo2', { callback: (_err, msg) => void msg.respond(msg.string()) });
    await responder.flush();
    await nc.flush();
    writes = 0;
    // Each setImmediate callback is a task of its own, as each HTTP request is; all run in one check phase.
    const replies = await new Promise<Promise<string>[]>((resolve) => {
      const made: Promise<string>[] = [];
      for (let i = 0; i < 20; i++) setImmediate(() => void made.push(requests.request('echo2', `s${i}`, { timeoutMs: 2000 }).then((m) => m.string())));
      setImmediate(() => resolve(made));
    });
    t.same(await Promise.all(replies), Array.from({ length: 20 }, (_, i) => `s${i}`), 'each answered, in order');
    t.equal(writes, 1, 'one write for the twenty requests');
  });

  t.test('a subject nobody listens on fails at once with NoRespondersError', async (t) => {
    const started = performance.now();
    await t.rejects(requests.request('nobody', 'x', { timeoutMs: 5000 }), NoRespondersError);
    t.ok(performance.now() - started < 2000, 'long before the timeout');
  });

  t.test('a request without a reply fails with RequestTimeoutError after its timeout', async (t) => {
    const started = performance.now();
    await t.rejects(requests.request('silent', 'x', { timeoutMs: 150 }), RequestTimeoutError);
    const took = performance.now() - started;
    t.ok(took >= 150 && took < 1500, `after ${Math.round(took)} ms`);
  });

  t.test('a JetStream publish answers its sequence, a duplicate id its original, and a refusal rejects', async (t) => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'PUB', subjects: ['pub.>'], duplicate_window: 60_000_000_000, max_msg_size: 64 });
    const first = await publishAcked(requests, 'pub.a', 'one', { msgId: 'm1', timeoutMs: 2000 });
    t.same(first, { seq: 1, duplicate: false });
    t.same(await publishAcked(requests, 'pub.a', 'one again', { msgId: 'm1', timeoutMs: 2000 }), { seq: 1, duplicate: true }, 'the same id within the window is the original');
    await t.rejects(publishAcked(requests, 'pub.b', 'x'.repeat(200), { msgId: 'm2', timeoutMs: 2000 }), PublishRefusedError, 'a message the stream refuses');
    await t.rejects(publishAcked(requests, 'nostream.a', 'x', { msgId: 'm3', timeoutMs: 2000 }), NoRespondersError, 'no stream on the subject');
  });

  t.test('closing fails what is pending and refuses new requests', async (t) => {
    const other = createRequester(nc);
    const pending = other.request('silent', 'x', { timeoutMs: 10_000 });
    other.close();
    await t.rejects(pending, /closing/);
    await t.rejects(other.request('echo', 'x', { timeoutMs: 1000 }), /closed/);
  });
});
