import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { connectNats } from '../../src/nats/connection.js';
import { launchNatsServer, type NatsServerProcess } from '../../src/nats/server.js';
import type { ViewsStatus } from '../../src/read/viewsStatus.js';
import { tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';

// When nats-server's storage is full (docs/architecture.md, "Event store"): commands are
// refused with a code that says nothing was stored, readiness and status say why, lease
// renewals pause, and all of it ends once nats-server takes writes again. The server's
// store limit stands in for a full disk: nats-server sets that limit itself from the disk's
// free space at its start, and answers both with the same refusal (`insufficient
// resources`, 10023).

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await sleep(50);
  }
}

/**
 * A nats-server whose store may hold `limit` (24 MB), stopped at teardown: `fill` fills it
 * with another stream's messages and answers the refusal; `restartWithRoom` restarts it on
 * the same port and store with 256 MB.
 */
async function limitedServer(t: Test) {
  const dir = tempDir(t);
  const storeDir = join(dir, 'store');
  const config = (limit: string) => {
    const file = join(dir, `nats-${limit}.conf`);
    writeFileSync(file, `jetstream { max_file_store: ${limit} }\n`);
    return file;
  };
  let server: NatsServerProcess = await launchNatsServer({ port: 0, storeDir, configFile: config('24MB') });
  const port = Number(new URL(server.url).port);
  t.teardown(() => server.stop());
  return {
    url: server.url,
    async fill(): Promise<string> {
      const filler = await connectNats(server.url, { name: 'filler', timeoutMs: 5000, log: pino({ level: 'silent' }) });
      t.teardown(() => filler.close());
      await filler.jsm.streams.add({ name: 'FILLER', subjects: ['filler.>'] });
      const chunk = 'x'.repeat(256 * 1024);
      let refusal = '';
      for (let i = 0; i < 400 && !refusal; i++) await filler.js.publish(`filler.${i}`, chunk).catch((err: Error) => (refusal = err.message));
      return refusal;
    },
    async restartWithRoom(): Promise<void> {
      await server.stop();
      server = await launchNatsServer({ port, storeDir, configFile: config('256MB') });
    },
  };
}

t.test('a full event store: commands refused as event_store_full, readiness and status say so, and both recover after nats-server is restarted with room', async (t) => {
  const server = await limitedServer(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, server.url, 1, { CONVERGE_DATA_DIR: dataDir, CONVERGE_CLUSTER_OWNERSHIP: 'leases' });
  const projector = await startTestProjector(t, server.url, dataDir);
  const cmd = commandUrl(worker!);
  const register = (id: string) => post(cmd, `/shops/${id}/register`, { name: id, category: 'c', ownerId: 'o' });
  await until('a command accepted', async () => ((await register('before')).status === 200 ? true : undefined));

  // Fill what the server will store with another stream's messages.
  t.match(await server.fill(), /insufficient resources/, 'nats-server refuses writes once its store is full');
  const filledAt = Date.now();

  const notReady = await until('readiness to turn false', async () => {
    const res = await get(`${cmd}/ready`);
    return res.status === 503 ? res.body : undefined;
  });
  const readinessMs = Date.now() - filledAt;
  t.match(notReady, { error: 'not_ready', message: /the event store refuses writes since .*storage is full/ }, 'GET /ready on the command port says why');
  t.comment(`readiness turned false ${readinessMs} ms after the store filled, with no command sent`);

  const refused = await fetch(`${cmd}/shops/full/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'full', category: 'c', ownerId: 'o' }) });
  const refusedBody = (await refused.json()) as { error: string; message: string };
  t.same([refused.status, refusedBody.error === 'event_store_full' || refusedBody.error === 'partition_unavailable'], [503, true], `a command is refused as safe to retry (${refusedBody.error})`);
  t.equal(refused.headers.get('retry-after'), '1');

  const status = await until('the projector to report the refusal', async () => {
    const s = (await get(`${urlOf(projector.adminApp)}/admin/projections`)).body as unknown as ViewsStatus;
    return s.eventStore?.refusesWrites ? s : undefined;
  });
  t.match(status.eventStore.refusesWrites, { reason: /storage is full/ }, 'the status (and so `converge status`) says why');

  // The operator makes room and restarts nats-server.
  await server.restartWithRoom();
  const restartedAt = Date.now();
  await until('readiness to return', async () => ((await get(`${cmd}/ready`)).status === 200 ? true : undefined), 30_000);
  const readyAgainMs = Date.now() - restartedAt;
  await until('a command accepted again', async () => ((await register('after')).status === 200 ? true : undefined), 30_000);
  const commandsAgainMs = Date.now() - restartedAt;
  t.comment(`after the restart: ready again in ${readyAgainMs} ms, a command accepted in ${commandsAgainMs} ms`);
  t.pass('readiness and commands recover without restarting converge');
  t.notOk(((await get(`${cmd}/ready`)).body as { message?: string }).message, 'and readiness no longer names a refusal');
});

t.test('with static ownership (nothing else writes), a refused command turns readiness false, and the probe alone turns it true again', async (t) => {
  const server = await limitedServer(t);
  const [worker] = await startWorkers(t, server.url, 1, { CONVERGE_DATA_DIR: tempDir(t) });
  const cmd = commandUrl(worker!);
  await until('a command accepted', async () => ((await post(cmd, '/shops/s0/register', { name: 's0', category: 'c', ownerId: 'o' })).status === 200 ? true : undefined));
  t.match(await server.fill(), /insufficient resources/);

  const refused = await post(cmd, '/shops/s1/register', { name: 's1', category: 'c', ownerId: 'o' });
  t.same([refused.status, refused.body['error']], [503, 'event_store_full'], 'the command is refused: nothing was stored');
  t.equal((await get(`${cmd}/ready`)).status, 503, 'readiness turns false with it');

  await server.restartWithRoom();
  const restartedAt = Date.now();
  await until('readiness to return with no command sent', async () => ((await get(`${cmd}/ready`)).status === 200 ? true : undefined), 30_000);
  t.comment(`ready again ${Date.now() - restartedAt} ms after the restart, from the probe`);
  t.equal((await post(cmd, '/shops/s1/register', { name: 's1', category: 'c', ownerId: 'o' })).status, 200, 'and the command goes through');
});
