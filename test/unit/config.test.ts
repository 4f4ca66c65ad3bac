import t from 'tap';
import { availableParallelism } from 'node:os';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { envName, loadConfig, resolveConfig } from '../../src/host/config.js';
import { configKeys } from '../../src/host/configSchema.js';
import { configTable } from '../../src/host/configTable.js';

const dir = join(import.meta.dirname, '../../config');

t.test('with no config file and no variable every key takes its default', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'converge-noconfig-'));
  const config = loadConfig({ dir: empty, env: {} });
  t.same(config, resolveConfig(), 'the same as the defaults given to createConverge');
  t.same([config.dataDir, config.logLevel, config.nats.url, config.http.commandPort], ['data', 'info', '', 8080]);
  t.same(config.http.readPolicy, {}, "the runtime's defaults name no app's routes");
});

t.test('every key of the schema has a default and a description', async (t) => {
  const missing = configKeys().filter((k) => k.default === undefined || k.description === '').map((k) => k.path.join('.'));
  t.same(missing, []);
});

t.test("the README's configuration table is the one generated from the schema", async (t) => {
  const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
  const table = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme)?.[1];
  t.equal(table, configTable(), 'run `npm run docs:config` and paste its output between the markers');
});

t.test('createConverge overrides set keys over the defaults and are validated the same way', async (t) => {
  t.equal(resolveConfig({ http: { commandPort: 9000 } }).http.commandPort, 9000);
  t.equal(resolveConfig({ http: { commandPort: 9000 } }).http.queryPort, 8081, 'the rest keeps its defaults');
  t.throws(() => resolveConfig({ actors: { mailboxSize: 0 } }), { code: 'invalid_config', message: /actors.mailboxSize/ });
  t.throws(() => resolveConfig({ colour: 'red' } as never), { message: 'config key "colour" is not a known key' });
});

t.test('defaults load, validate and freeze', async (t) => {
  const config = loadConfig({ dir, env: {} });
  t.equal(config.http.commandPort, 8080);
  t.equal(config.nats.url, '', 'no NATS URL means the embedded server');
  t.equal(config.cluster.workers, Math.max(1, availableParallelism() - 1), 'workers 0 becomes one per core but one, at least one');
  t.ok(Object.isFrozen(config.http), 'nested objects are frozen');
});

t.test('NODE_ENV file overrides defaults and CONVERGE_* variables override both', async (t) => {
  const config = loadConfig({
    dir,
    env: { NODE_ENV: 'test', CONVERGE_HTTP_COMMAND_PORT: '9999', CONVERGE_HTTP_TOKENS: 'secret-one, secret-two' },
  });
  t.equal(config.cluster.workers, 2, 'from test.json');
  t.equal(config.http.commandPort, 9999, 'from the environment');
  t.same(config.http.tokens, ['secret-one', 'secret-two'], 'lists are comma separated');
});

t.test('NATS_URL is accepted as well as CONVERGE_NATS_URL', async (t) => {
  t.equal(loadConfig({ dir, env: { NATS_URL: 'nats://a:1' } }).nats.url, 'nats://a:1');
  t.equal(loadConfig({ dir, env: { NATS_URL: 'nats://a:1', CONVERGE_NATS_URL: 'nats://b:2' } }).nats.url, 'nats://b:2');
});

t.test('a bad value stops start-up with one line naming the key', async (t) => {
  t.throws(() => loadConfig({ dir, env: { CONVERGE_HTTP_COMMAND_PORT: 'eighty' } }), {
    message: /config key "http.commandPort"/,
  });
  t.throws(() => loadConfig({ dir, env: { CONVERGE_ACTORS_MAILBOX_SIZE: '0' } }), { code: 'invalid_config', message: /actors.mailboxSize/ });
  const custom = mkdtempSync(join(tmpdir(), 'converge-config-'));
  writeFileSync(join(custom, 'default.json'), JSON.stringify({ ...loadConfig({ dir, env: {} }), colour: 'red' }));
  t.throws(() => loadConfig({ dir: custom, env: {} }), { message: 'config key "colour" is not a known key' });
  writeFileSync(join(custom, 'default.json'), '{ nope');
  t.throws(() => loadConfig({ dir: custom, env: {} }), { message: /not valid JSON/ });
});

t.test('environment names follow the key path', async (t) => {
  t.equal(envName(['cluster', 'workerIndex']), 'CONVERGE_CLUSTER_WORKER_INDEX');
  t.equal(envName(['dataDir']), 'CONVERGE_DATA_DIR');
});

t.test('a listener reachable from the network needs tokens or an explicit opt-out', async (t) => {
  const open = /http.host is 0.0.0.0 \(reachable from the network\) but http.tokens is empty.*CONVERGE_HTTP_TOKENS.*CONVERGE_HTTP_ALLOW_UNAUTHENTICATED=true/;
  t.throws(() => loadConfig({ dir, env: { NODE_ENV: 'production' } }), { code: 'invalid_config', message: open }, 'production without tokens');
  t.throws(() => loadConfig({ dir, env: { CONVERGE_HTTP_HOST: '10.1.2.3' } }), { message: /http.host is 10.1.2.3/ });
  t.throws(() => loadConfig({ dir, env: { CONVERGE_HTTP_HOST: 'shop.example.com' } }), { message: /http.host is shop.example.com/ });
  t.throws(() => loadConfig({ dir, env: { CONVERGE_HTTP_HOST: '::' } }), { message: /http.host is ::/ });
  t.equal(loadConfig({ dir, env: { NODE_ENV: 'production', CONVERGE_HTTP_TOKENS: 'a-long-token' } }).http.host, '0.0.0.0', 'tokens let it start');
  const optedOut = loadConfig({ dir, env: { NODE_ENV: 'production', CONVERGE_HTTP_ALLOW_UNAUTHENTICATED: 'true' } });
  t.equal(optedOut.http.allowUnauthenticated, true, 'the opt-out lets it start open');
  t.throws(() => loadConfig({ dir, env: { CONVERGE_HTTP_ALLOW_UNAUTHENTICATED: 'yes' } }), { message: /config key "http.allowUnauthenticated"/ });
});

t.test('loopback listeners need no tokens', async (t) => {
  for (const host of ['127.0.0.1', '127.10.0.3', 'localhost', '::1', '[::1]']) {
    t.equal(loadConfig({ dir, env: { CONVERGE_HTTP_HOST: host } }).http.host, host, host);
  }
});

t.test('telemetry is off by default; CONVERGE_TELEMETRY_OTLP_ENDPOINT turns it on, and it must be an http(s) URL', async (t) => {
  t.same(loadConfig({ dir, env: {} }).telemetry, { otlpEndpoint: '', spanDir: '', serviceName: 'converge' });
  const on = loadConfig({ dir, env: { CONVERGE_TELEMETRY_OTLP_ENDPOINT: 'http://collector:4318', CONVERGE_TELEMETRY_SPAN_DIR: '/tmp/spans' } });
  t.same([on.telemetry.otlpEndpoint, on.telemetry.spanDir], ['http://collector:4318', '/tmp/spans']);
  t.equal(envName(['telemetry', 'otlpEndpoint']), 'CONVERGE_TELEMETRY_OTLP_ENDPOINT');
  t.throws(() => loadConfig({ dir, env: { CONVERGE_TELEMETRY_OTLP_ENDPOINT: 'collector:4318' } }), { code: 'invalid_config', message: /telemetry.otlpEndpoint/ });
});

t.test("a reader that does not know the app (the CLI) leaves the app's sections out instead of refusing them", async (t) => {
  const custom = mkdtempSync(join(tmpdir(), 'converge-config-'));
  writeFileSync(join(custom, 'default.json'), JSON.stringify({ http: { adminPort: 9092 }, carts: { expireAfterMs: 60_000 } }));
  t.throws(() => loadConfig({ dir: custom, env: {} }), { message: 'config key "carts" is not a known key' }, 'refused by default');
  const config = loadConfig({ dir: custom, env: {}, otherSections: 'ignore' });
  t.equal(config.http.adminPort, 9092, "converge's own keys still read");
  t.notOk(Object.hasOwn(config, 'carts'), 'the unknown section is left out');
});

t.test("a configuration given without the app's sections gets their defaults when resolved with the app's settings", async (t) => {
  const { cartSettings } = await import('../../examples/cart/settings.js');
  const given = loadConfig({ dir, env: {} });
  const resolved = resolveConfig(given, cartSettings) as typeof given & { carts: { expireAfterMs: number } };
  t.equal(resolved.carts.expireAfterMs, 86_400_000);
  t.equal(resolved.http.commandPort, given.http.commandPort);
});
