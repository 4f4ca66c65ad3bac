import t, { type Test } from 'tap';
import { JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KvOptions } from '@nats-io/kv';
import { pino } from 'pino';
import { openBucket } from '../../src/nats/buckets.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { startTestNats } from '../helpers/nats.js';

t.setTimeout(60_000);
const log = pino({ level: 'silent' });

/** `count` connections, as many processes would have, to a nats-server of the test's own. */
async function links(t: Test, count: number): Promise<NatsLink[]> {
  const nats = await startTestNats(t);
  const all = await Promise.all(Array.from({ length: count }, (_, i) => connectNats(nats.url, { name: `p${i}`, timeoutMs: 2000, log })));
  t.teardown(() => Promise.all(all.map((l) => l.close().catch(() => undefined))));
  return all;
}

t.test('a creation refused because another process made the bucket at that moment is tried again, and opens that bucket', async (t) => {
  const [mine, other] = await links(t, 2);
  let calls = 0;
  // What nats-server answers the second of two creations at once: the first one's stream holds the subjects.
  const make = async (name: string, opts: Partial<KvOptions>) => {
    calls++;
    if (calls > 1) return new Kvm(mine!.js).create(name, opts);
    await new Kvm(other!.js).create(name, opts);
    throw new JetStreamApiError({ code: 400, err_code: 10065, description: 'subjects overlap with an existing stream ""' });
  };
  const { kv, info, rescaled } = await openBucket(mine!, 'shared', { history: 1, replicas: 1 }, make);
  t.equal(calls, 2, 'tried once more');
  t.equal(info.config.name, 'KV_shared');
  t.equal(rescaled, false, 'made with the copies asked for');
  await kv.put('k', 'from mine');
  t.equal((await (await new Kvm(other!.js).open('shared')).get('k'))?.string(), 'from mine', 'one bucket, seen by both');
});

t.test('eight processes making the same buckets at the same moment all open them', async (t) => {
  const all = await links(t, 8);
  const refused: string[] = [];
  for (let round = 0; round < 100; round++) {
    const results = await Promise.allSettled(all.map((link) => openBucket(link, `b${round}`, { history: 1, replicas: 1 })));
    for (const r of results) if (r.status === 'rejected') refused.push(`b${round}: ${String(r.reason)}`);
  }
  t.same(refused, [], 'no creation refused');
});

t.test('a refusal that lasts, a stream of another name holding the bucket subjects, is thrown after the last try', async (t) => {
  const [link] = await links(t, 1);
  await link!.jsm.streams.add({ name: 'SQUATTER', subjects: ['$KV.taken.>'] });
  let calls = 0;
  const make = (name: string, opts: Partial<KvOptions>) => {
    calls++;
    return new Kvm(link!.js).create(name, opts);
  };
  await t.rejects(openBucket(link!, 'taken', { history: 1, replicas: 1 }, make), /subjects overlap/);
  t.equal(calls, 4, 'tried four times');
});

t.test('an error that is not a refusal by nats-server, such as a timeout, is thrown at once', async (t) => {
  const [link] = await links(t, 1);
  let calls = 0;
  const make = async () => {
    calls++;
    throw new Error('TIMEOUT');
  };
  await t.rejects(openBucket(link!, 'unreached', { history: 1, replicas: 1 }, make), /TIMEOUT/);
  t.equal(calls, 1, 'not tried again');
});
