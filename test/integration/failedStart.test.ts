import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Kvm } from '@nats-io/kv';
import { pino } from 'pino';
import { createConverge } from '../../src/index.js';
import { connectNats } from '../../src/nats/connection.js';
import { freePort, launchNatsServer } from '../../src/nats/server.js';
import { REACTIONS_BUCKET } from '../../src/react/reactionStore.js';
import { LEASES_BUCKET } from '../../src/write/leases.js';
import { shopPlatform } from '../../app.js';
import { tempDir } from '../helpers/nats.js';

// A start that fails after the store, the write side and the views have started stops them
// again (docs/architecture.md, "Running"): a caller who catches the error is left with no
// connection, lease or feed running.

const log = pino({ level: 'silent' });

t.test('a createConverge that fails part way leaves no connection to NATS and no partition lease held', async (t) => {
  const storeDir = mkdtempSync(join(tmpdir(), 'converge-nats-'));
  const monitor = await freePort();
  const server = await launchNatsServer({ port: 0, storeDir, extraArgs: ['-m', String(monitor)] });
  t.teardown(async () => {
    await server.stop();
    rmSync(storeDir, { recursive: true, force: true });
  });
  const connections = async () => ((await (await fetch(`http://127.0.0.1:${monitor}/connz`)).json()) as { num_connections: number }).num_connections;
  // A stream that holds the reactions bucket's subjects: the bucket cannot be made, so the
  // start fails at the reactions, after the store, the write side and the views have started.
  const admin = await connectNats(server.url, { name: 'test-admin', timeoutMs: 5000, log });
  await admin.jsm.streams.add({ name: 'BLOCKER', subjects: [`$KV.${REACTIONS_BUCKET}.>`] });
  // A runtime left running would keep renewing its leases: the test finds them in the bucket.
  const config = { nats: { url: server.url }, logLevel: 'silent' as const };
  const failed = await createConverge(shopPlatform, { config: { ...config, dataDir: tempDir(t) }, logger: log }).then(
    (c) => c,
    (err: unknown) => err as Error,
  );
  t.match(failed, { message: /subjects overlap/ }, 'the start fails where the reactions make their bucket');
  // A closed connection leaves the server's list within moments.
  let left = await connections();
  for (const deadline = Date.now() + 5000; left > 1 && Date.now() < deadline; left = await connections()) await new Promise((r) => setTimeout(r, 50));
  t.equal(left, 1, 'only the test\'s own connection is left');

  const leases = await new Kvm(admin.js).open(LEASES_BUCKET);
  const held: string[] = [];
  for await (const key of await leases.keys()) {
    const entry = await leases.get(key);
    if (entry?.operation === 'PUT') held.push(key);
  }
  const subjects = (await admin.jsm.streams.info(`KV_${LEASES_BUCKET}`, { subjects_filter: '>' })).state.subjects ?? {};
  t.ok(Object.keys(subjects).some((s) => s.startsWith(`$KV.${LEASES_BUCKET}.p.`)), 'partition leases had been taken before the start failed');
  t.same(held, [], 'every partition lease and the membership were given back');
  await admin.close();
});
