import t, { type Test } from 'tap';
import { mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { DeliverPolicy } from '@nats-io/jetstream';
import { connectNats } from '../../src/nats/connection.js';
import { credentialsFile, type EmbeddedCredentials } from '../../src/nats/credentials.js';
import { EVENTS, ensureEventStream } from '../../src/store/eventStream.js';
import { freePort, installedNatsServerVersion, launchNatsServer, supportsSyncAlways } from '../../src/nats/server.js';
import { tempDir } from '../helpers/nats.js';
import { startCluster, waitReady, type TestCluster } from '../helpers/cluster.js';
import { eventually, natsServerPids, processes, processesUsing } from '../helpers/processes.js';

const silent = pino({ level: 'silent' });
/** Start-up is slow on a loaded 2-core machine; this is a deadline, not a performance check. */
const READY_MS = 60_000;
// Seven cluster starts in one file: more than the default per-file limit allows on a loaded machine.
t.setTimeout(480_000);

/** A data directory and the embedded settings that make two runs use the same store and port. */
async function embeddedSetup(t: Test) {
  const dataDir = realpathSync(tempDir(t));
  const natsPort = await freePort();
  const env = { CONVERGE_DATA_DIR: dataDir, CONVERGE_NATS_EMBEDDED_PORT: String(natsPort), CONVERGE_CLUSTER_WORKERS: '1' };
  const storeDir = join(dataDir, 'nats');
  // A failed test must not leave a server behind to break the next one.
  t.teardown(() => natsServerPids(storeDir).forEach((pid) => process.kill(pid, 'SIGKILL')));
  return { dataDir, storeDir, natsPort, env };
}

/** Registers `count` shops with idempotency keys; answers the keys that got a 2xx and the last position. */
async function registerShops(cluster: TestCluster, prefix: string, count: number) {
  const acknowledged: string[] = [];
  let position = 0;
  for (let i = 0; i < count; i++) {
    const key = `${prefix}-key-${i}`;
    const res = await fetch(`${cluster.base}/shops/${prefix}-${i}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ name: `Shop ${i}`, category: 'korean', ownerId: 'o1' }),
    });
    const body = (await res.json()) as { position: number };
    if (res.status === 200) {
      acknowledged.push(key);
      position = Math.max(position, body.position);
    }
  }
  return { acknowledged, position };
}

/** The embedded server's users, as converge generated them in the data directory. */
function credentialsOf(dataDir: string): EmbeddedCredentials {
  return JSON.parse(readFileSync(credentialsFile(dataDir), 'utf8')) as EmbeddedCredentials;
}

/** The command ids of every commit in `EVENTS`, read as converge's own user. */
async function commandIdsInEvents(url: string, dataDir: string): Promise<Set<string>> {
  const { user, password } = credentialsOf(dataDir).converge;
  const link = await connectNats(url, { name: 'check', timeoutMs: 2000, log: silent, auth: { user, password } });
  try {
    const info = await link.jsm.streams.info(EVENTS);
    const ids = new Set<string>();
    if (info.state.last_seq === 0) return ids;
    const consumer = await link.js.consumers.get(EVENTS, { deliver_policy: DeliverPolicy.All });
    for await (const m of await consumer.consume()) {
      ids.add(m.json<{ commandId: string }>().commandId);
      if (m.seq >= info.state.last_seq) break;
    }
    return ids;
  } finally {
    await link.close();
  }
}

const isAlive = (pid: number) => processes().some((p) => p.pid === pid);
const watchdogPids = (storeDir: string) =>
  processes()
    .filter((p) => p.args.some((a) => a.endsWith('/nats/watchdog.js')) && p.args.includes(storeDir))
    .map((p) => p.pid);

t.test('kill -9 of the primary: the embedded server goes, and the next start serves everything acknowledged before', async (t) => {
  const { dataDir, storeDir, natsPort, env } = await embeddedSetup(t);
  const first = await startCluster(t, env);
  await waitReady(first, READY_MS);
  t.equal(natsServerPids(storeDir).length, 1, 'one nats-server runs on the store');
  const { acknowledged, position } = await registerShops(first, 'before', 20);
  t.equal(acknowledged.length, 20, 'every command before the kill was acknowledged');

  first.proc.kill('SIGKILL');
  await first.exited;
  t.ok(
    await eventually(() => natsServerPids(storeDir).length === 0, 5000),
    'within 5 s of kill -9 of the primary no nats-server runs on the store',
  );
  t.ok(
    await eventually(() => processesUsing(dataDir).length === 0, 10_000),
    `no worker, projector or watchdog outlives the primary: ${JSON.stringify(processesUsing(dataDir))}`,
  );

  const second = await startCluster(t, env);
  await waitReady(second, READY_MS);
  t.equal(natsServerPids(storeDir).length, 1, 'after the restart exactly one nats-server runs on the store');
  const stored = await commandIdsInEvents(`nats://127.0.0.1:${natsPort}`, dataDir);
  t.same(acknowledged.filter((k) => !stored.has(k)), [], 'every command acknowledged before the kill is in EVENTS');
  const view = await fetch(`${second.query}/shops/before-0`, { headers: { 'x-min-position': String(position), connection: 'close' } });
  t.equal(view.status, 200, 'a shop registered before the kill is served by the query API after the restart');
  t.match(await view.json(), { id: 'before-0', name: 'Shop 0' }, 'with the data registered before the kill');
  const version = await installedNatsServerVersion();
  for (const api of [second.base, second.query]) {
    const ready = await fetch(`${api}/ready`, { headers: { connection: 'close' } });
    t.same(await ready.json(), { status: 'ready', nats: { version } }, `${api}/ready names the NATS server version`);
  }
});

t.test('a server left running by an earlier run is stopped before a new one opens the store, and the log says so', async (t) => {
  const { storeDir, natsPort, env } = await embeddedSetup(t);
  const first = await startCluster(t, env);
  await waitReady(first, READY_MS);
  const [orphan] = natsServerPids(storeDir);
  const watchdogs = watchdogPids(storeDir);
  t.equal(watchdogs.length, 1, 'the primary runs one watchdog for its server');
  await registerShops(first, 'left', 3);

  // Killing the watchdog with the primary is what leaves the server orphaned. The watchdog
  // first: killed second, it could see the primary gone and stop the server in between, when
  // this process is descheduled between the two kills (seen once with the whole suite on two cores).
  for (const pid of [...watchdogs, first.proc.pid!]) process.kill(pid, 'SIGKILL');
  await first.exited;
  // SIGHUP makes nats-server write to its log: one that logged to a pipe read by the dead
  // primary would die of SIGPIPE here, and then there would be nothing left over to stop.
  process.kill(orphan!, 'SIGHUP');
  await new Promise((r) => setTimeout(r, 1500));
  t.same(natsServerPids(storeDir), [orphan], 'with its watchdog gone too, the server outlives the primary, even when it logs');

  const second = await startCluster(t, env);
  await waitReady(second, READY_MS);
  t.match(second.output(), new RegExp(`stopped nats-server pid ${orphan} \\(port ${natsPort}\\)`), 'one log line names the pid and port it stopped');
  const now = natsServerPids(storeDir);
  t.equal(now.length, 1, 'exactly one nats-server runs on the store');
  t.not(now[0], orphan, 'and it is the new one');
  t.notOk(isAlive(orphan!), 'the earlier server is gone');
  const view = await fetch(`${second.query}/shops/left-2`, { headers: { connection: 'close' } });
  t.equal(view.status, 200, 'what the earlier run acknowledged is served');
});

t.test('an embedded nats-server that crashes is started again on its port and store, and converge goes on', async (t) => {
  const { dataDir, storeDir, natsPort, env } = await embeddedSetup(t);
  const cluster = await startCluster(t, env);
  await waitReady(cluster, READY_MS);
  const before = await registerShops(cluster, 'pre', 3);
  const [crashed] = natsServerPids(storeDir);
  process.kill(crashed!, 'SIGKILL');
  t.ok(
    await eventually(() => natsServerPids(storeDir).some((pid) => pid !== crashed), 10_000),
    'within 10 s another nats-server runs on the store',
  );
  t.equal(natsServerPids(storeDir).length, 1, 'one, not two');
  // The new server's watchdog starts once it is ready, and the old one exits with its server.
  const [restarted] = natsServerPids(storeDir);
  const watching = () =>
    processes()
      .filter((p) => p.args.some((a) => a.endsWith('/nats/watchdog.js')) && p.args.includes(storeDir))
      .map((p) => p.args[p.args.length - 2]);
  t.ok(await eventually(() => JSON.stringify(watching()) === JSON.stringify([String(restarted)]), 5000), `with one watchdog, of the new server: ${JSON.stringify(watching())}`);
  t.match(cluster.output(), new RegExp(`embedded nats-server pid ${crashed} exited \\(SIGKILL\\); starting it again on port ${natsPort}`), 'the log says what happened');
  let after = { acknowledged: [] as string[], position: 0 };
  for (let i = 0; i < 50 && after.acknowledged.length === 0; i++) {
    after = await registerShops(cluster, `post${i}`, 1);
    if (after.acknowledged.length === 0) await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(after.acknowledged.length, 1, 'commands are acknowledged again');
  const stored = await commandIdsInEvents(`nats://127.0.0.1:${natsPort}`, dataDir);
  t.same(before.acknowledged.filter((k) => !stored.has(k)), [], 'what was acknowledged before the crash is in EVENTS');
  const view = await fetch(`${cluster.query}/shops/pre-0`, { headers: { 'x-min-position': String(after.position), connection: 'close' } });
  t.equal(view.status, 200, 'and the views caught up past the crash');
});

t.test('a clean stop (SIGTERM to the primary) leaves no nats-server, watchdog or worker behind', async (t) => {
  const { dataDir, storeDir, env } = await embeddedSetup(t);
  const cluster = await startCluster(t, env);
  await waitReady(cluster, READY_MS);
  t.equal(watchdogPids(storeDir).length, 1, 'a watchdog runs while the cluster runs');
  cluster.proc.kill('SIGTERM');
  t.equal(await cluster.exited, 0, 'the primary exits cleanly');
  t.ok(await eventually(() => processesUsing(dataDir).length === 0, 3000), `nothing is left: ${JSON.stringify(processesUsing(dataDir))}`);
});

t.test('asking for fsync on every commit from a nats-server without sync_interval logs once what that means', async (t) => {
  const version = await installedNatsServerVersion();
  t.notOk(supportsSyncAlways(version), `precondition: the installed nats-server (${version}) predates 2.10`);
  const { env } = await embeddedSetup(t);
  const cluster = await startCluster(t, { ...env, CONVERGE_NATS_EMBEDDED_SYNC: 'always' });
  await waitReady(cluster, READY_MS);
  const warnings = cluster.output().split('\n').filter((l) => l.includes('nats.embeddedSync=always is not supported'));
  t.equal(warnings.length, 1, 'one warning');
  t.match(warnings[0], `nats-server ${version}`, 'naming the version');
  t.match(warnings[0], 'an OS crash or power loss can lose up to the last 2 minutes of acknowledged commands', 'and what it means');
});

t.test('a second start on a data directory in use by a running converge is refused in one line', async (t) => {
  const { storeDir, env } = await embeddedSetup(t);
  const first = await startCluster(t, env);
  await waitReady(first, READY_MS);
  const server = natsServerPids(storeDir);
  const second = await startCluster(t, env);
  t.equal(await second.exited, 1, 'the second start exits with 1');
  const out = second.output().trim();
  t.equal(out.split('\n').length, 1, `one line: ${out}`);
  t.match(out, `converge: the NATS store ${storeDir} is in use by converge pid ${first.proc.pid}`, 'naming the store and the converge using it');
  t.same(natsServerPids(storeDir), server, 'the running cluster keeps its one nats-server');
  t.equal((await fetch(`${first.base}/ready`, { headers: { connection: 'close' } })).status, 200, 'and stays ready');
});

t.test('a store opened by a nats-server that converge did not start is refused in one line', async (t) => {
  const { storeDir, env } = await embeddedSetup(t);
  const foreign = await launchNatsServer({ port: 0, storeDir });
  t.teardown(() => foreign.stop());
  const cluster = await startCluster(t, env);
  t.equal(await cluster.exited, 1, 'converge does not start');
  const out = cluster.output().trim();
  t.equal(out.split('\n').length, 1, `one line: ${out}`);
  t.match(out, `converge: the NATS store ${storeDir} is open in nats-server pid ${foreign.pid}`, 'naming the store and the server');
  t.equal(natsServerPids(storeDir).length, 1, 'no second server was started on it');
});

t.test('a store path that is not a directory is reported in one line naming it', async (t) => {
  const { dataDir, storeDir, env } = await embeddedSetup(t);
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(storeDir, 'not a directory');
  const cluster = await startCluster(t, env);
  t.equal(await cluster.exited, 1, 'converge does not start');
  const out = cluster.output().trim();
  t.equal(out.split('\n').length, 1, `one line: ${out}`);
  t.match(out, `converge: the NATS store ${storeDir} cannot be used: `, 'naming the store');
});

t.test('a damaged stream metafile stops start-up in one line instead of starting without the stream', async (t) => {
  const { storeDir, env } = await embeddedSetup(t);
  const seed = await launchNatsServer({ port: 0, storeDir });
  const link = await connectNats(seed.url, { name: 'seed', timeoutMs: 2000, log: silent });
  await ensureEventStream(link, 120_000);
  await link.js.publish('events.shop.s1', JSON.stringify({ commandId: 'c1' }));
  await link.close();
  await seed.stop();
  const streams = join(storeDir, 'jetstream', '$G', 'streams');
  t.ok(readdirSync(streams).includes(EVENTS), 'precondition: the store holds EVENTS');
  writeFileSync(join(streams, EVENTS, 'meta.inf'), '{ damaged');

  const cluster = await startCluster(t, env);
  t.equal(await cluster.exited, 1, 'converge does not start');
  const out = cluster.output().trim();
  t.equal(out.split('\n').length, 1, `one line: ${out}`);
  t.match(out, `converge: the NATS store ${storeDir} is damaged: `, 'naming the store');
  t.match(out, 'EVENTS', 'it names the stream');
  t.equal(natsServerPids(storeDir).length, 0, 'no server is left running on it');
});
