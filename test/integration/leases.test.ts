import t from 'tap';
import { pino } from 'pino';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { createPartitionLeases, LEASES_BUCKET, leaseOwner, preferredOwner, type PartitionLeases } from '../../src/write/leases.js';
import { createSingleLease } from '../../src/write/singleLease.js';
import { startTestNats } from '../helpers/nats.js';
import { eventually } from '../helpers/processes.js';

t.setTimeout(120_000);
const log = pino({ level: 'silent' });
const PARTITIONS = 32;
const TTL = 2000;

t.test('preferred owners spread partitions over members, and a leaving member moves only its own', async (t) => {
  const three = ['a.0', 'b.0', 'c.0'];
  const before = Array.from({ length: 300 }, (_, p) => preferredOwner(p, three));
  for (const m of three) t.ok(before.filter((o) => o === m).length > 60, `${m} gets a share`);
  for (const pair of [['host-a.0', 'host-b.0'], ['a.0', 'a.1']]) {
    const shares = pair.map((m) => Array.from({ length: 64 }, (_, p) => preferredOwner(p, pair)).filter((o) => o === m).length);
    t.ok(shares.every((n) => n >= 20), `names that differ in one character share 64 partitions evenly enough (${shares.join(' / ')})`);
  }
  const after = Array.from({ length: 300 }, (_, p) => preferredOwner(p, ['a.0', 'c.0']));
  t.ok(before.every((o, p) => o === 'b.0' || after[p] === o), 'partitions of the members that stay do not move');
  t.equal(leaseOwner('host one:7', 2), 'host_one_7.2', 'a hostId becomes a valid key token');
});

t.test('partition leases on a real nats-server', async (t) => {
  const nats = await startTestNats(t);
  const links: NatsLink[] = [];
  t.teardown(() => Promise.all(links.map((l) => l.close().catch(() => undefined))));
  const events: string[] = [];
  const start = async (owner: string, more: { instance?: string; releaseMs?: number } = {}) => {
    const link = await connectNats(nats.url, { name: owner, timeoutMs: 2000, log });
    links.push(link);
    const leases = createPartitionLeases({
      link,
      owner,
      partitions: PARTITIONS,
      ttlMs: TTL,
      replicas: 1,
      log,
      ...(more.instance ? { instance: more.instance } : {}),
      onAcquire: (p) => events.push(`${owner} +${p}`),
      onRelease: async (p) => {
        events.push(`${owner} -${p}`);
        if (more.releaseMs) await new Promise((r) => setTimeout(r, more.releaseMs));
      },
    });
    await leases.start();
    return { leases, link };
  };
  const owners = (sets: readonly PartitionLeases[]) => Array.from({ length: PARTITIONS }, (_, p) => sets.filter((l) => l.owns(p)).length);
  const everyOnce = (sets: readonly PartitionLeases[]) => owners(sets).every((n) => n === 1);

  const a = await start('a.0');
  t.same(a.leases.held(), Array.from({ length: PARTITIONS }, (_, p) => p), 'a worker alone holds every partition');
  const b = await start('b.0');
  t.ok(await eventually(() => everyOnce([a.leases, b.leases]) && b.leases.held().length > 0, 3 * TTL), 'a second worker takes its share, and each partition has one owner');
  const bShare = b.leases.held();
  t.same(bShare, Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => preferredOwner(p, ['a.0', 'b.0']) === 'b.0'), 'its share is the one rendezvous hashing gives it');
  t.ok(
    bShare.every((p) => events.includes(`a.0 -${p}`) && events.indexOf(`a.0 -${p}`) < events.indexOf(`b.0 +${p}`)),
    'the old owner lets go of each partition before the new one takes it',
  );

  const kv = await a.link.jsm.streams.info(`KV_${LEASES_BUCKET}`);
  t.equal(kv.config.max_age, TTL * 1_000_000, 'the bucket keeps a lease for its TTL');

  // A graceful stop hands over at once, without waiting for the TTL.
  const stoppedAt = Date.now();
  await b.leases.stop();
  t.ok(await eventually(() => a.leases.held().length === PARTITIONS, TTL / 2), 'a drained worker gives its leases back, and the other takes them before the TTL runs out');
  t.comment(`graceful handover of ${bShare.length} partitions: ${Date.now() - stoppedAt} ms`);

  // A crash: the worker's connection is gone and it renews nothing.
  const c = await start('c.0');
  t.ok(await eventually(() => everyOnce([a.leases, c.leases]) && c.leases.held().length > 0, 3 * TTL), 'a third worker takes its share');
  const cShare = c.leases.held();
  await c.link.close();
  const crashedAt = Date.now();
  t.ok(await eventually(() => !cShare.some((p) => c.leases.owns(p)), TTL), 'the cut-off worker stops trusting its leases within the TTL');
  t.ok(await eventually(() => a.leases.held().length === PARTITIONS, 4 * TTL), 'the survivor takes every partition of the dead worker');
  const handover = Date.now() - crashedAt;
  t.ok(handover >= TTL * 0.75, `not before the dead worker's leases could have expired (${handover} ms)`);
  t.comment(`handover after a crash, TTL ${TTL} ms: ${handover} ms`);
  await c.leases.stop();

  // A worker restarted under the same name takes its leases back at their revision, without waiting.
  await a.link.close();
  await a.leases.stop();
  const a2 = await start('a.0');
  t.equal(a2.leases.held().length, PARTITIONS, 'a restarted worker takes back its own leases at once');
  await a2.leases.stop();
});

t.test('leases on a real nats-server: who may take a lease back, and slow hand-overs', async (t) => {
  const nats = await startTestNats(t);
  const links: NatsLink[] = [];
  t.teardown(() => Promise.all(links.map((l) => l.close().catch(() => undefined))));
  const start = async (owner: string, instance: string, releaseMs = 0) => {
    const link = await connectNats(nats.url, { name: owner, timeoutMs: 2000, log });
    links.push(link);
    const leases = createPartitionLeases({
      link,
      owner,
      instance,
      partitions: PARTITIONS,
      ttlMs: TTL,
      replicas: 1,
      log,
      onAcquire: () => undefined,
      onRelease: () => new Promise((r) => setTimeout(r, releaseMs)),
    });
    await leases.start();
    return { leases, link };
  };

  // Another host under the same name (or a host started again by a new primary) waits for the old leases to expire.
  const first = await start('same.0', 'primary-1');
  t.equal(first.leases.held().length, PARTITIONS);
  await first.link.close();
  await first.leases.stop();
  const diedAt = Date.now();
  const twin = await start('same.0', 'primary-2');
  t.equal(twin.leases.held().length, 0, 'a worker of another primary under the same name does not take the leases back');
  t.ok(await eventually(() => twin.leases.held().length === PARTITIONS, 4 * TTL), 'it gets them once they expire');
  t.ok(Date.now() - diedAt >= TTL * 0.75, `and not before (${Date.now() - diedAt} ms)`);

  // Two live hosts given one hostId: one of them runs the partitions, and the clash is logged.
  await twin.leases.stop();
  const lines: string[] = [];
  const capture = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
  const clash = async (instance: string) => {
    const link = await connectNats(nats.url, { name: instance, timeoutMs: 2000, log });
    links.push(link);
    const leases = createPartitionLeases({ link, owner: 'clash.0', instance, partitions: PARTITIONS, ttlMs: TTL, replicas: 1, log: capture, onAcquire: () => undefined, onRelease: async () => undefined });
    await leases.start();
    return leases;
  };
  const [one, two] = [await clash('host-1/100'), await clash('host-2/200')];
  t.ok(await eventually(() => lines.some((l) => l.includes('another process also calls itself clash.0')), 3 * TTL), 'two live hosts with one hostId are reported as an error');
  t.same([one.held().length, two.held().length], [PARTITIONS, 0], 'and only one of them runs the partitions');
  await Promise.all([one.stop(), two.stop()]);

  // A hand-over whose queued commands take longer than a lease lives does not hold up the renewals of the rest.
  const slow = await start('slow.0', 'primary-3', 3 * TTL);
  const other = await start('other.0', 'primary-4');
  const kept = Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => preferredOwner(p, ['slow.0', 'other.0']) === 'slow.0');
  const moving = Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => !kept.includes(p));
  t.ok(await eventually(() => moving.every((p) => !slow.leases.owns(p)), 2 * TTL), 'the slow worker stops running the partitions it hands over');
  const until = Date.now() + 2 * TTL;
  let keptAll = true;
  let twice = 0;
  while (Date.now() < until) {
    if (!kept.every((p) => slow.leases.owns(p))) keptAll = false;
    twice += Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => slow.leases.owns(p) && other.leases.owns(p)).length;
    await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(keptAll, `while their drain takes ${3 * TTL} ms it keeps every other partition (${kept.length})`);
  t.equal(twice, 0, 'and no partition is owned by both at any moment');
  await Promise.all([slow.leases.stop(), other.leases.stop()]);
});

t.test('the single lease: one holder among claimants of one name, and back at once when a paused NATS applies a renewal its holder gave up on', async (t) => {
  const nats = await startTestNats(t);
  const links: NatsLink[] = [];
  t.teardown(() => Promise.all(links.map((l) => l.close().catch(() => undefined))));
  const events: string[] = [];
  // Two claimants with one owner name, as two in-process runtimes of one host have.
  const claim = async (name: string) => {
    const link = await connectNats(nats.url, { name, timeoutMs: 1000, log });
    links.push(link);
    const lease = createSingleLease({ link, key: 'x.test', owner: 'host.projector', ttlMs: 4000, replicas: 1, log, onAcquire: () => void events.push(`${name} +`), onRelease: () => void events.push(`${name} -`) });
    t.teardown(() => lease.stop());
    await lease.start();
    return lease;
  };
  const a = await claim('a');
  const b = await claim('b');
  t.ok(a.held() && !b.held(), 'the first claimant holds it, and the second, of the same name, does not');
  t.equal(b.holder(), 'host.projector', "the holder is named by its owner, as the status shows it");

  // Paused, the server keeps the renewals sent meanwhile; the holder gives up at its fence
  // (3 s), and the server applies one of them when it goes on, before the key's TTL ran out.
  nats.signal('SIGSTOP');
  t.ok(await eventually(() => events.includes('a -'), 8000), 'the holder gives the lease up while NATS is paused');
  nats.signal('SIGCONT');
  const resumed = Date.now();
  t.ok(await eventually(() => a.held() || b.held(), 10_000), 'the lease is held again');
  const gap = Date.now() - resumed;
  t.ok(gap < 2500, `within a round or two of NATS going on, not after the TTL that renewal restarted (${gap} ms)`);
  t.ok(a.held() && !b.held(), 'by the claimant whose renewal it was, and by it alone');
});
