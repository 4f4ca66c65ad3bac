import t from 'tap';
import { Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { checkStore, waitCaughtUp } from '../../chaos/checks.js';
import { httpClient, json, type Reply } from '../../chaos/http.js';
import type { Ack } from '../../chaos/load.js';
import { connectNats, type NatsLink } from '../../src/nats/connection.js';
import { EVENTS } from '../../src/store/eventStream.js';
import { LEASES_BUCKET } from '../../src/write/leases.js';
import { startCluster, waitReady, type TestCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/nats.js';
import { startTestNatsCluster } from '../helpers/natsCluster.js';
import { processesUsing } from '../helpers/processes.js';
import { parseMetrics, sample } from '../helpers/metrics.js';

t.setTimeout(420_000);

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const PARTITIONS = 64;
const TTL_MS = 3000;
const CLIENTS = 6;
const SHOPS_PER_CLIENT = 4;
/** The reference app's orders.acceptTimeoutMs here: orders placed around the host kill are rejected by their timers. */
const ACCEPT_MS = 5000;

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

/** Every commit of EVENTS with the time the store took it. */
async function storedCommits(link: NatsLink): Promise<Array<{ at: number; commit: { aggregate: string; id: string; events: Array<{ type: string; data: Record<string, unknown> }> } }>> {
  const info = await link.jsm.streams.info(EVENTS);
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const msg = await link.jsm.streams.getMessage(EVENTS, { seq });
    if (msg) out.push({ at: msg.time.getTime(), commit: msg.json<{ aggregate: string; id: string; events: Array<{ type: string; data: Record<string, unknown> }> }>() });
  }
  return out;
}

/** Who holds the reactions' lease ('' for nobody). */
async function reactionsHolder(link: NatsLink): Promise<string> {
  const e = await (await new Kvm(link.js).open(LEASES_BUCKET)).get('x.reactions');
  return e && e.operation === 'PUT' ? e.string() : '';
}

/** Each partition's lease holder as the bucket has it ('' for none). */
async function leaseHolders(link: NatsLink): Promise<string[]> {
  const kv = await new Kvm(link.js).open(LEASES_BUCKET);
  return Promise.all(
    Array.from({ length: PARTITIONS }, async (_, p) => {
      const e = await kv.get(`p.${p}`);
      return e && e.operation === 'PUT' ? e.string() : '';
    }),
  );
}

t.test('two converge hosts and a read replica on a 3-node NATS cluster lose, under load, the node leading EVENTS and one host', async (t) => {
  const nats = await startTestNatsCluster(t);
  const link = await until('the NATS cluster accepts a client', () => connectNats(nats.url, { name: 'scale-out-test', timeoutMs: 3000, log }));
  t.teardown(() => link.close());
  await until('JetStream has a meta leader', () => link.jsm.getAccountInfo());

  const dirs = { a: tempDir(t), b: tempDir(t), replica: tempDir(t) };
  const env = (hostId: string, dataDir: string) => ({
    CONVERGE_NATS_URL: nats.url,
    CONVERGE_NATS_REPLICAS: '3',
    CONVERGE_DATA_DIR: dataDir,
    CONVERGE_CLUSTER_HOST_ID: hostId,
    CONVERGE_CLUSTER_WORKERS: '1',
    CONVERGE_CLUSTER_LEASE_TTL_MS: String(TTL_MS),
    CONVERGE_ORDERS_ACCEPT_TIMEOUT_MS: String(ACCEPT_MS),
  });
  // host-b first, so that it takes the reactions' lease: the host killed below runs the timers.
  const b = await startCluster(t, env('host-b', dirs.b));
  await waitReady(b, 120_000);
  const a = await startCluster(t, env('host-a', dirs.a));
  const replica = await startCluster(t, { ...env('replica', dirs.replica), CONVERGE_CLUSTER_ROLE: 'read-replica' });
  await waitReady(a, 120_000);
  await until('the replica serves queries', async () => (await fetch(`${replica.query}/ready`)).ok);

  const shared = await until('both hosts hold leases on every partition', async () => {
    const holders = await leaseHolders(link);
    return holders.every(Boolean) && holders.some((h) => h.startsWith('host-a.')) && holders.some((h) => h.startsWith('host-b.')) && holders;
  });
  t.pass(`both hosts own a share: host-a ${shared.filter((h) => h.startsWith('host-a.')).length}, host-b ${shared.filter((h) => h.startsWith('host-b.')).length} partitions`);
  t.match(a.output(), /appends are fenced by their position/, 'on nats-server before 2.9.21 the host says that its appends are fenced');
  t.match(await until('a host holds the reactions lease', () => reactionsHolder(link)), /^host-b\./, 'host-b runs the reactions and the timers');
  // A shop to order from: orders placed around the host kill and never accepted are rejected by their timers.
  // Retried with one key while NATS elects a new leader (503 and 504 ask for a retry with the same key).
  const order = async (path: string, body: object) => {
    const headers = { 'content-type': 'application/json', 'idempotency-key': `scale${path.replaceAll('/', '-')}` };
    for (let attempt = 0; ; attempt++) {
      const status = await fetch(`${a.base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) }).then((r) => r.status);
      if ((status !== 503 && status !== 504) || attempt === 20) return status;
      await sleep(500);
    }
  };
  t.same(
    [await order('/shops/timed/register', { name: 'Timed', category: 'korean', ownerId: 'o' }), await order('/shops/timed/open', {}), await order('/shops/timed/add-menu-item', { menuId: 'm', name: 'M', price: 1000 })],
    [200, 200, 200],
  );
  const placeOrders = async (prefix: string) => {
    const ids = Array.from({ length: 5 }, (_, i) => `${prefix}${i}`);
    for (const id of ids) t.equal(await order(`/orders/${id}/place`, { shopId: 'timed', customerId: 'c', items: [{ menuId: 'm', quantity: 1 }] }), 200, `order ${id} placed`);
    return ids;
  };

  // The load: clients register shops and rename them, through either host, each command
  // with one Idempotency-Key for all its tries, retried on the other host when one fails.
  const http = httpClient(CLIENTS * 2, () => undefined);
  t.teardown(() => http.close());
  const acks: Ack[] = [];
  const unanswered = new Set<string>();
  const lastAckedName = new Map<string, { position: number; name: string }>();
  let hostBDown = false;
  let stopping = false;
  const commandHosts = (): TestCluster[] => (hostBDown ? [a] : [a, b]);
  const send = async (shop: string, key: string, verb: 'register' | 'rename', body: object): Promise<Reply | undefined> => {
    const deadline = Date.now() + 30_000;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const hosts = commandHosts();
      const host = hosts[attempt % hosts.length]!;
      const reply = await http.send({ method: 'POST', url: `${host.base}/shops/${shop}/${verb}`, body, headers: { 'idempotency-key': key }, timeoutMs: 10_000 });
      if (reply.status >= 200 && reply.status < 500 && reply.status !== 0) return reply;
      await sleep(Math.min(1000, 100 * 2 ** Math.min(attempt, 4)));
    }
    return undefined;
  };
  const client = async (c: number) => {
    for (let i = 0; !stopping; i++) {
      const shop = `so-${c}-${i % SHOPS_PER_CLIENT}`;
      const key = `k-${c}-${i}`;
      const name = `Shop ${key}`;
      const register = i < SHOPS_PER_CLIENT;
      const reply = await send(shop, key, register ? 'register' : 'rename', register ? { name, category: 'korean', ownerId: 'o' } : { name });
      if (!reply) {
        unanswered.add(shop);
        continue;
      }
      if (reply.status !== 200) throw new Error(`${shop} ${key}: ${reply.status} ${reply.body}`);
      const { position } = json<{ position: number }>(reply)!;
      acks.push({ key, aggregate: 'shop', id: shop, position, epoch: 0, at: Date.now() });
      if ((lastAckedName.get(shop)?.position ?? 0) < position) lastAckedName.set(shop, { position, name });
    }
  };
  const clients = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));

  await sleep(3000);
  const leader = (await link.jsm.streams.info(EVENTS)).cluster?.leader ?? '';
  const node = ['n1', 'n2', 'n3'].indexOf(leader);
  t.ok(node >= 0, `EVENTS is led by ${leader}`);
  const acksBeforeNodeKill = acks.length;
  // Due about 2 s after the host kill, before another host can hold the lease.
  const early = await placeOrders('early-');
  const nodeKilledAt = Date.now();
  await nats.kill(node);

  await sleep(3000);
  // Due 5 s after the host kill, once another host runs the timers.
  const late = await placeOrders('late-');
  const acksBeforeHostKill = acks.length;
  // The whole host at once, as when its machine dies: primary, worker and projector.
  const hostB = processesUsing(dirs.b);
  for (const p of hostB) process.kill(p.pid, 'SIGKILL');
  const killedAt = Date.now();
  hostBDown = true;
  const handoverMs = await until(
    'host-a holds every partition',
    async () => (await leaseHolders(link)).every((h) => h.startsWith('host-a.')) && Date.now() - killedAt,
    60_000,
  );
  t.ok(handoverMs <= 3 * TTL_MS, `host-a owns every partition ${handoverMs} ms after host-b died (lease TTL ${TTL_MS} ms)`);
  const owned = await until('host-a reports every partition', async () => {
    const n = sample(parseMetrics(await (await fetch(`${a.admin}/metrics`)).text()), 'converge_partitions_owned', {});
    return n === PARTITIONS && n;
  }, 10_000);
  t.equal(owned, PARTITIONS, "and says so in its metrics (converge_partitions_owned)");
  for (const [name, host] of [['host-a', a], ['the replica', replica]] as const) {
    const listed = (await (await fetch(`${host.admin}/admin/partitions`)).json()) as { ownership: string; owners: Record<string, number[]>; unowned: number[] };
    t.same(
      { ownership: listed.ownership, owners: Object.keys(listed.owners), count: listed.owners['host-a.0']?.length, unowned: listed.unowned },
      { ownership: 'leases', owners: ['host-a.0'], count: PARTITIONS, unowned: [] },
      `${name}'s admin API lists host-a.0 as the owner of every partition`,
    );
  }

  await sleep(3000);
  stopping = true;
  await clients;
  t.ok(acksBeforeNodeKill > 0 && acks.length > acksBeforeHostKill, `commands were acknowledged before and after both kills (${acksBeforeNodeKill}, ${acksBeforeHostKill}, ${acks.length})`);

  // The timers host-b had scheduled fire on host-a, once each.
  t.match(await until('host-a holds the reactions lease', async () => /^host-a\./.test(await reactionsHolder(link)) && reactionsHolder(link), 30_000), /^host-a\./, 'the reactions move to host-a');
  const timed = [...early, ...late];
  const rejected = await until('every timed order is rejected', async () => {
    const commits = await storedCommits(link);
    const byOrder = timed.map((id) => commits.filter((c) => c.commit.aggregate === 'order' && c.commit.id === id && c.commit.events.some((e) => e.type === 'OrderRejected')));
    return byOrder.every((r) => r.length > 0) && { commits, byOrder };
  }, 60_000);
  await sleep(2000);
  const again = await storedCommits(link);
  t.same(
    timed.map((id) => again.filter((c) => c.commit.aggregate === 'order' && c.commit.id === id && c.commit.events.some((e) => e.type === 'OrderRejected')).length),
    timed.map(() => 1),
    'each order is rejected once: no timer fired twice across the two hosts',
  );
  const instance = (id: string) => rejected.commits.filter((c) => c.commit.aggregate === '~orderAcceptance' && c.commit.id === id);
  const dueOf = (id: string) => Date.parse(String(instance(id).flatMap((c) => c.commit.events).find((e) => e.type === '~Scheduled')?.data['due']));
  const firedAt = (id: string) => instance(id).find((c) => c.commit.events.some((e) => e.type === '~Fired'))?.at ?? Infinity;
  // A timer fires when its firing is recorded in the instance's stream; the command it issues follows through the outbox.
  const lateness = timed.map((id) => firedAt(id) - Math.max(dueOf(id), killedAt));
  const rejectedAfter = timed.map((id, i) => rejected.byOrder[i]![0]!.at - firedAt(id));
  // Alone the worst is 2–5.5 s. With the whole suite on the same two cores it reached 9.9 s,
  // and once 16.2 s (its order rejected 17.3 s later): a bound on a starved machine, not a target.
  t.ok(
    lateness.every((ms) => ms <= TTL_MS + 30_000),
    `each fired within the lease TTL plus 30 s of its due time or of the host kill, whichever came later (worst ${Math.max(...lateness)} ms; its order rejected at worst ${Math.max(...rejectedAfter)} ms after the firing)`,
  );
  t.ok(timed.every((id, i) => rejected.byOrder[i]![0]!.commit.events.some((e) => e.type === 'OrderRejected' && e.data['reason'] === 'not_accepted_in_time')), 'with reason not_accepted_in_time');

  await nats.restart(node);
  await until(
    'the restarted node has caught up',
    async () => {
      const info = await link.jsm.streams.info(EVENTS);
      return info.cluster?.replicas?.length === 2 && info.cluster.replicas.every((r) => r.current);
    },
    60_000,
  );
  t.pass(`the restarted node ${leader} rejoins and catches up on EVENTS`);

  const store = await checkStore(nats.url, 0, acks);
  t.equal(store.acknowledged, acks.length);
  t.same({ missing: store.missing, duplicated: store.duplicated, misplaced: store.misplaced }, { missing: [], duplicated: [], misplaced: [] }, `each of the ${acks.length} acknowledged commands is in EVENTS once, at the position its answer gave`);

  const onA = await waitCaughtUp(a.admin, store.lastSeq, 60_000);
  const onReplica = await waitCaughtUp(replica.admin, store.lastSeq, 60_000);
  t.ok(onA.ok && onReplica.ok, `host-a's views and the replica's reach the last commit, ${store.lastSeq}`);
  const shops = [...lastAckedName.keys()];
  const docs = async (host: TestCluster) =>
    Promise.all(shops.map(async (s) => (await (await fetch(`${host.query}/shops/${s}`)).json()) as { name: string }));
  const [fromA, fromReplica] = [await docs(a), await docs(replica)];
  t.same(fromReplica, fromA, `host-a and the replica hold equal documents for all ${shops.length} shops`);
  t.ok(
    shops.every((s, i) => unanswered.has(s) || fromA[i]!.name === lastAckedName.get(s)!.name),
    'each shop has the name of its last acknowledged rename',
  );

  // The replica answers on its own once the command hosts are gone.
  for (const p of processesUsing(dirs.a)) process.kill(p.pid, 'SIGKILL');
  await until('host-a is gone', async () => (await fetch(`${a.query}/ready`).then(() => false, () => true)) || undefined, 30_000);
  const after = await fetch(`${replica.query}/shops/${shops[0]}`);
  t.equal(after.status, 200, 'with both command hosts down, the replica still serves reads');
  /** The longest time without an acknowledgement in the `ms` after `from`. */
  const longestGap = (from: number, ms: number) => {
    const times = [from, ...acks.map((x) => x.at).filter((at) => at > from && at < from + ms), from + ms].sort((x, y) => x - y);
    return Math.max(...times.slice(1).map((at, i) => at - times[i]!));
  };
  t.comment(
    `handover ${handoverMs} ms; longest pause in acknowledgements: ${longestGap(nodeKilledAt, 3000)} ms after the node kill, ${longestGap(killedAt, 3000)} ms after the host kill; ` +
      `${acks.length} commands acknowledged; ${unanswered.size} shops with a command left unanswered; timers fired ${Math.min(...lateness)}–${Math.max(...lateness)} ms after max(due, host kill)`,
  );
});
