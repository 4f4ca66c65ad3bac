import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { partitionOf } from '../../src/core/partition.js';
import { credentialsFile, type EmbeddedCredentials } from '../../src/nats/credentials.js';
import { freePort, launchNatsServer } from '../../src/nats/server.js';
import { startCluster, waitReady, type TestCluster } from '../helpers/cluster.js';
import { tempDir } from '../helpers/nats.js';
import { processes } from '../helpers/processes.js';

// Two cluster starts on a loaded 2-core machine, and their probes.
t.setTimeout(300_000);

const CLI = join(import.meta.dirname, '../../dist/src/host/cli.js');
const SAMPLE = join(import.meta.dirname, '../../docs/nats-auth.sample.conf');

async function post(cluster: TestCluster, path: string, body: object) {
  const res = await fetch(`${cluster.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Connects as `auth` (no retries: a refused connection is an answer here). */
function as(url: string, auth: { user?: string; pass?: string; inboxPrefix?: string } = {}): Promise<NatsConnection> {
  return connect({ servers: url, maxReconnectAttempts: 0, timeout: 3000, ...auth });
}

/**
 * Whether a publish of `subject` by `nc` is refused by the server. A refused publish is
 * never delivered: a subscriber of converge's own on the subject would see it otherwise.
 */
async function publishRefused(nc: NatsConnection, subject: string, watcher: NatsConnection): Promise<boolean> {
  const seen = watcher.subscribe(subject, { max: 1 });
  await watcher.flush();
  nc.publish(subject, '{"forged":true}');
  await nc.flush().catch(() => undefined);
  const delivered = await Promise.race([
    (async () => {
      for await (const _ of seen) return true;
      return false;
    })(),
    new Promise<boolean>((r) => setTimeout(() => r(false), 1000)),
  ]);
  seen.unsubscribe();
  return !delivered;
}

t.test('the embedded nats-server takes only converge’s users; the subscriber user pulls notices and can do nothing else', async (t) => {
  const dataDir = realpathSync(tempDir(t));
  const natsPort = await freePort();
  const cluster = await startCluster(t, { CONVERGE_DATA_DIR: dataDir, CONVERGE_NATS_EMBEDDED_PORT: String(natsPort), CONVERGE_CLUSTER_WORKERS: '1', CONVERGE_LOG_LEVEL: 'debug' });
  await waitReady(cluster, 60_000);
  const url = `nats://127.0.0.1:${natsPort}`;

  await t.rejects(as(url), /Authorization Violation/, 'a client without credentials cannot connect');
  await t.rejects(as(url, { user: 'converge', pass: 'guessed-password' }), /Authorization Violation/, 'nor one with a wrong password');

  const file = credentialsFile(dataDir);
  const credentials = JSON.parse(readFileSync(file, 'utf8')) as EmbeddedCredentials;
  t.equal(statSync(file).mode & 0o777, 0o600, 'the credentials file is 0600');
  t.equal(statSync(join(dataDir, 'run', 'nats.conf')).mode & 0o777, 0o600, 'so is the server config that holds them');
  const secrets = [credentials.converge.password, credentials.subscriber.password];
  const onCommandLines = processes().filter((p) => secrets.some((s) => p.args.some((a) => a.includes(s))));
  t.same(onCommandLines.map((p) => p.pid), [], 'no process has a password on its command line');

  // The CLI finds the data directory in the config it is given, as an operator's `--config` would say it.
  const cliConfig = join(tempDir(t), 'cli.json');
  writeFileSync(cliConfig, JSON.stringify({ dataDir }));
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, '--config', cliConfig, 'nats-credentials', '--env'], { env: { PATH: process.env.PATH ?? '' }, timeout: 10_000 });
  const env = Object.fromEntries([...stdout.matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!]));
  t.same(env, { NATS_URL: url, NATS_USER: 'subscriber', NATS_PASSWORD: credentials.subscriber.password, NATS_INBOX_PREFIX: '_INBOX_subscriber' }, 'nats-credentials --env prints the subscriber user as shell exports');

  t.equal((await fetch(`${cluster.admin}/admin/subscribers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"search"}' })).status, 201, 'converge creates a subscriber on the authenticated server');
  const registered = await post(cluster, '/shops/real/register', { name: 'Real', category: 'c', ownerId: 'o' });
  t.equal(registered.status, 200, 'and serves commands on it');

  const subscriber = await as(url, { user: env['NATS_USER'], pass: env['NATS_PASSWORD'], inboxPrefix: env['NATS_INBOX_PREFIX'] });
  t.teardown(() => subscriber.close());
  const watcher = await as(url, { user: credentials.converge.user, pass: credentials.converge.password });
  t.teardown(() => watcher.close());
  const consumer = await jetstream(subscriber).consumers.get('NOTIFY', 'search');
  const notice = await consumer.next({ expires: 5000 });
  t.equal(notice?.subject, 'notify.shop.real', 'the subscriber user pulls its notice');
  notice?.ack();

  t.ok(await publishRefused(subscriber, 'events.shop.forged', watcher), 'it cannot append to EVENTS');
  t.ok(await publishRefused(subscriber, 'converge.cmd.0', watcher), 'it cannot send a command on the internal bus');
  t.ok(await publishRefused(subscriber, 'notify.shop.forged', watcher), 'it cannot publish a notice');
  const snoop = await as(url, { user: env['NATS_USER'], pass: env['NATS_PASSWORD'] });
  t.teardown(() => snoop.close());
  const errors: string[] = [];
  void (async () => {
    for await (const s of snoop.status()) if (s.type === 'error') errors.push(String(s.error?.message));
  })();
  snoop.subscribe('_INBOX.>');
  await snoop.flush().catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300));
  t.match(errors.join(' '), /Permissions Violation for Subscription to "_INBOX\.>"/, 'it cannot read other clients’ inboxes');
  t.equal((await fetch(`${cluster.query}/shops/forged`)).status, 404, 'nothing forged reached the views');

  const output = cluster.output();
  t.ok(output.length > 1000, 'the cluster logged, at debug level');
  t.same(secrets.filter((s) => output.includes(s)), [], 'no password appears in the logs');
});

t.test('on a server configured with the sample users, converge works as its user, and a subscriber reaches only its own consumers', async (t) => {
  const dir = tempDir(t);
  const passwords = { converge: 'converge-password-of-the-test', search: 'search-password-of-the-test' };
  copyFileSync(SAMPLE, join(dir, 'nats-auth.conf'));
  writeFileSync(join(dir, 'nats.conf'), 'include ./nats-auth.conf\n');
  // The sample reads its passwords from the server's environment.
  const saved = { c: process.env['CONVERGE_NATS_PASSWORD'], s: process.env['SEARCH_NATS_PASSWORD'] };
  process.env['CONVERGE_NATS_PASSWORD'] = passwords.converge;
  process.env['SEARCH_NATS_PASSWORD'] = passwords.search;
  const server = await launchNatsServer({ port: 0, storeDir: join(dir, 'store'), configFile: join(dir, 'nats.conf') }).finally(() => {
    process.env['CONVERGE_NATS_PASSWORD'] = saved.c;
    process.env['SEARCH_NATS_PASSWORD'] = saved.s;
  });
  t.teardown(() => server.stop());

  const cluster = await startCluster(t, {
    CONVERGE_DATA_DIR: tempDir(t),
    CONVERGE_NATS_URL: server.url,
    CONVERGE_NATS_USER: 'converge',
    CONVERGE_NATS_PASSWORD: passwords.converge,
    CONVERGE_CLUSTER_WORKERS: '2',
  });
  await waitReady(cluster, 60_000);
  for (const name of ['search', 'other']) {
    t.equal((await fetch(`${cluster.admin}/admin/subscribers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) })).status, 201, `converge’s user creates subscriber ${name}`);
  }
  // Two workers: half the shops are forwarded to the other worker, over the internal bus, with converge's user.
  for (let i = 0; i < 6; i++) t.equal((await post(cluster, `/shops/s${i}/register`, { name: `S${i}`, category: 'c', ownerId: 'o' })).status, 200, `shop s${i} registered`);
  const view = await fetch(`${cluster.query}/shops/s5`, { headers: { 'x-min-position': '6' } });
  t.equal(view.status, 200, 'the projector follows EVENTS as converge’s user');

  const search = await as(server.url, { user: 'search', pass: passwords.search, inboxPrefix: '_INBOX_search' });
  t.teardown(() => search.close());
  const own = await jetstream(search).consumers.get('NOTIFY', 'search');
  t.match((await own.next({ expires: 5000 }))?.subject, /^notify\.shop\.s\d$/, 'a subscriber pulls from its own consumer');
  await t.rejects(jetstream(search, { timeout: 1500 }).consumers.get('NOTIFY', 'other'), 'it cannot read another subscriber’s consumer');
  // What a forged commit and a forged command would do if they got through: a shop on the query API.
  const commit = { commandId: 'forged', commandType: 'RegisterShop', aggregate: 'shop', id: 'forged-event', version: 1, events: [{ type: 'ShopRegistered', data: { name: 'FORGED', category: 'c', ownerId: 'o', minOrderAmount: 0, deliveryFee: 0 }, at: new Date().toISOString() }] };
  search.publish('events.shop.forged-event', JSON.stringify(commit));
  const command = { commandId: 'forged', aggregate: 'shop', id: 'forged-command', type: 'RegisterShop', data: { name: 'FORGED', category: 'c', ownerId: 'o' }, at: new Date().toISOString() };
  await t.rejects(
    search.request(`converge.cmd.${partitionOf('shop', 'forged-command', 64)}`, JSON.stringify({ op: 'command', command }), { timeout: 1500 }),
    'a command sent on the internal bus gets no answer',
  );
  await new Promise((r) => setTimeout(r, 1000));
  t.equal((await fetch(`${cluster.query}/shops/forged-event`)).status, 404, 'a commit it publishes to EVENTS is refused: no shop appears');
  t.equal((await fetch(`${cluster.query}/shops/forged-command`)).status, 404, 'nor does the shop of the command it sent');
  await t.rejects(as(server.url), /Authorization Violation/, 'a client without credentials cannot connect');
});
