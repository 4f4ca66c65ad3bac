import t from 'tap';
import { SignJWT } from 'jose';
import { createLogger } from '../../src/host/log.js';
import { startWorker } from '../../src/host/worker.js';
import { startTestNats } from '../helpers/nats.js';
import { commandUrl, post, testConfig, urlOf } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const COMMAND_TOKEN = 'command-token-never-logged-0001';
const READER_TOKEN = 'reader-token-never-logged-0002';
const SECRET = 'customer-secret-never-logged-0003';
const WRONG_TOKEN = 'wrong-token-never-logged-0004';

const sign = (sub: string, secret: string, exp: number | string = '5m') =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime(exp).sign(new TextEncoder().encode(secret));

t.test('no token, customer token, secret or Authorization header reaches a log line of a worker logging at debug', async (t) => {
  const nats = await startTestNats(t);
  const config = testConfig(t, nats.url, {
    CONVERGE_LOG_LEVEL: 'debug',
    CONVERGE_CLUSTER_WORKERS: '1',
    CONVERGE_HTTP_TOKENS: COMMAND_TOKEN,
    CONVERGE_HTTP_READER_TOKENS: READER_TOKEN,
    CONVERGE_HTTP_CUSTOMER_TOKEN_SECRET: SECRET,
  });
  const lines: string[] = [];
  const log = createLogger(config, 'worker-0', { write: (line: string) => void lines.push(line) });
  const worker = await startWorker(config, log, shopPlatform);
  t.teardown(() => worker.stop());
  const cmd = commandUrl(worker);
  const q = urlOf(worker.queryApp);

  const jwts = {
    c1: await sign('c1', SECRET),
    expired: await sign('c1', SECRET, Math.floor(Date.now() / 1000) - 60),
    forged: await sign('c1', 'a-secret-the-server-does-not-know'),
  };
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  const statuses: number[] = [];
  const read = async (path: string, headers: Record<string, string> = {}) => statuses.push((await fetch(q + path, { headers })).status);
  const command = async (path: string, body: object, headers: Record<string, string> = {}) => statuses.push((await post(cmd, path, body, headers)).status);

  await command('/shops/s1/register', { name: 'S', category: 'c', ownerId: 'u' }, auth(COMMAND_TOKEN));
  await command('/shops/s2/register', { name: 'S', category: 'c', ownerId: 'u' }, auth(WRONG_TOKEN));
  await command('/shops/s3/register', { name: 'S', category: 'c', ownerId: 'u' }, auth(READER_TOKEN));
  await command('/shops/s4/register', { name: 'S', category: 'c', ownerId: 'u' }, auth(jwts.c1));
  await read('/shops/s1/history', auth(READER_TOKEN));
  await read('/shops/s1/history', auth(COMMAND_TOKEN));
  await read('/shops/s1/history', auth(WRONG_TOKEN));
  await read('/shops/s1/history', auth(jwts.c1));
  await read('/shops/s1/history');
  await read('/customers/c1/orders', auth(jwts.c1));
  await read('/customers/c2/orders', auth(jwts.c1));
  await read('/customers/c1/orders', auth(jwts.expired));
  await read('/customers/c1/orders', auth(jwts.forged));
  await read('/customers/c1/orders', auth(WRONG_TOKEN));
  t.same(statuses, [200, 401, 401, 401, 200, 200, 401, 403, 401, 200, 403, 401, 401, 401], 'the requests were answered as expected');

  // What code elsewhere might hand the logger: the config, and a request with its headers.
  log.info({ http: config.http, nats: config.nats }, 'configuration');
  log.info({ req: { method: 'GET', url: '/x', headers: auth(READER_TOKEN) } }, 'a request');
  worker.commandApp.log.child({ reqId: 'r1' }).warn({ headers: auth(jwts.c1), err: { headers: auth(COMMAND_TOKEN) } }, 'a failure');

  const text = lines.join('');
  t.ok(lines.some((l) => l.includes('"read access refused"')), 'the refusals were logged at debug');
  t.ok(lines.filter((l) => l.includes('"read access refused"')).every((l) => /"reqId":"req-[0-9a-z]+"/.test(l) && l.includes('"role":"worker-0"')), 'each with its request’s id and the process’s bindings');
  t.ok(text.includes('"reason":"ERR_JWT_EXPIRED"'), 'with the reason, e.g. an expired customer token');
  t.ok(text.includes('"reason":"neither a configured token nor a customer token"'), 'or a wrong token');
  t.ok(text.includes('[redacted]'), 'secrets handed to the logger were censored');
  const secrets = { COMMAND_TOKEN, READER_TOKEN, SECRET, WRONG_TOKEN, ...jwts };
  for (const [name, secret] of Object.entries(secrets)) t.notOk(text.includes(secret), `${name} appears in no log line`);
  for (const [name, jwt] of Object.entries(jwts)) t.notOk(text.includes(jwt.split('.')[2]!), `the signature of the ${name} JWT appears in no log line`);
  t.notOk(/bearer /i.test(text), 'no Authorization header value appears');
});
