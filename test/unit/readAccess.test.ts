import t from 'tap';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import type { Config } from '../../src/host/config.js';
import { installReadAccess, RateLimitedError, readPolicyOf } from '../../src/http/access.js';
import { installErrorHandling } from '../../src/http/replies.js';

t.test('a route takes its own policy, else that of *, else reader', async (t) => {
  const policies = { 'GET /shops/:id': 'public', 'GET /customers/:id/orders': 'customer', '*': 'public' } as const;
  t.equal(readPolicyOf(policies, 'GET', '/shops/:id'), 'public');
  t.equal(readPolicyOf(policies, 'GET', '/customers/:id/orders'), 'customer');
  t.equal(readPolicyOf(policies, 'GET', '/orders/:id/history'), 'public', 'not listed: *');
  t.equal(readPolicyOf({ 'GET /shops/:id': 'public' }, 'GET', '/orders/:id/history'), 'reader', 'no *: reader');
  t.equal(readPolicyOf(policies, 'POST', '/shops/:id'), 'public', 'the method is part of the key: POST falls to *');
  t.equal(readPolicyOf({ 'GET /shops/:id': 'public' }, 'POST', '/shops/:id'), 'reader', 'so a GET entry does not open a POST');
  t.equal(readPolicyOf({ 'GET /customers/:id/orders': 'customer', '*': 'public' }, 'HEAD', '/customers/:id/orders'), 'customer', 'HEAD takes the GET entry');
  t.equal(readPolicyOf({ 'GET /customers/:id': 'customer' }, 'GET', '/customers/:id/orders'), 'reader', 'keys are whole routes, not prefixes');
  t.equal(readPolicyOf({ toString: 'public' } as never, 'GET', '/x'), 'reader', 'only own keys count');
});

t.test('what a route declares stands between its own config entry and *', async (t) => {
  t.equal(readPolicyOf({ '*': 'reader' }, 'GET', '/shops/:id', 'public'), 'public', 'declared beats *');
  t.equal(readPolicyOf({ 'GET /shops/:id': 'reader' }, 'GET', '/shops/:id', 'public'), 'reader', 'a config entry naming the route beats what it declares');
  t.equal(readPolicyOf({}, 'HEAD', '/shops/:id', 'public'), 'public', 'HEAD keeps the declared policy');
});

t.test('routes mounted under a prefix are looked up by the path they declare, and keep what they declare', async (t) => {
  const app = Fastify();
  await app.register(
    async (scope) => {
      installReadAccess(scope, http({ readerTokens: ['a-reader-token'], readPolicy: { 'GET /shops/:id/stats': 'public' } }));
      scope.get('/shops/:id', { config: { access: 'public' } }, async () => ({ ok: true }));
      scope.get('/shops/:id/stats', async () => ({ ok: true }));
      scope.get('/shops/:id/orders', async () => ({ ok: true }));
    },
    { prefix: '/api' },
  );
  await app.ready();
  t.equal((await app.inject('/api/shops/s1')).statusCode, 200, 'declared public');
  t.equal((await app.inject('/api/shops/s1/stats')).statusCode, 200, 'public by its config entry, though the URL has a prefix');
  t.equal((await app.inject('/api/shops/s1/orders')).statusCode, 401, 'the rest: reader');
});

t.test('routes that share a URL and differ by a version constraint keep their own policies, whichever was added last', async (t) => {
  const app = Fastify();
  installReadAccess(app, http({ readerTokens: ['a-reader-token'] }));
  app.get('/c', { constraints: { version: '1.0.0' }, config: { access: 'public' } }, async () => ({ v: 1 }));
  app.get('/c', { constraints: { version: '2.0.0' } }, async () => ({ v: 2 }));
  await app.ready();
  const get = (version: string) => app.inject({ url: '/c', headers: { 'accept-version': version } });
  t.same([(await get('1.0.0')).statusCode, (await get('1.0.0')).json()], [200, { v: 1 }], 'version 1 is public');
  t.equal((await get('2.0.0')).statusCode, 401, 'version 2 needs a reader token');
});

t.test('a rate_limited reply carries Retry-After of its window, not the catalogue default', async (t) => {
  const app = Fastify();
  installErrorHandling(app, 'invalid_query');
  app.get('/', async () => {
    throw new RateLimitedError(42, { max: 5, windowMs: 60_000 });
  });
  const res = await app.inject({ method: 'GET', url: '/' });
  t.same([res.statusCode, res.headers['retry-after'], res.json().error], [429, '42', 'rate_limited']);
  t.match(res.json().message, 'more than 5 requests from this address within 60000 ms; retry in 42 s');
});

const http = (over: Partial<Config['http']>): Config['http'] => ({
  host: '127.0.0.1',
  commandPort: 0,
  queryPort: 0,
  adminPort: 0,
  bodyLimit: 65536,
  keepAliveTimeoutMs: 5000,
  tokens: [],
  readerTokens: [],
  readPolicy: {},
  customerTokenSecret: '',
  queryRateLimit: { max: 0, windowMs: 60_000 },
  allowUnauthenticated: false,
  ...over,
});

/** An app with read access installed and two routes, its warnings captured. */
async function appWith(over: Partial<Config['http']>) {
  const lines: string[] = [];
  const log: FastifyBaseLogger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const app = Fastify({ loggerInstance: log });
  installReadAccess(app, http(over));
  app.get('/shops/:id', async () => ({ ok: true }));
  app.get('/shops/:id/stats', async () => ({ ok: true }));
  await app.ready();
  return { app, warnings: lines.map((l) => JSON.parse(l) as { msg: string; routes: string[] }) };
}

t.test('a readPolicy entry that names no route is reported at start, once tokens are configured', async (t) => {
  const policy = { 'GET /shop/:id': 'public', 'GET /shops/:id': 'public', '*': 'reader' } as const;
  const { warnings } = await appWith({ tokens: ['a-command-token'], readPolicy: policy });
  t.match(warnings, [{ msg: /http.readPolicy names routes this query API does not have/, routes: ['GET /shop/:id'] }]);
  t.same((await appWith({ readPolicy: policy })).warnings, [], 'not while the query API is open');
});

t.test('the reader token list alone turns read access on', async (t) => {
  const { app } = await appWith({ readerTokens: ['a-reader-token'], readPolicy: { 'GET /shops/:id': 'public' } });
  t.equal((await app.inject('/shops/s1')).statusCode, 200, 'public');
  t.equal((await app.inject('/shops/s1/stats')).statusCode, 401, '* absent: reader');
  t.equal((await app.inject({ url: '/shops/s1/stats', headers: { authorization: 'Bearer a-reader-token' } })).statusCode, 200);
  t.equal((await app.inject({ method: 'HEAD', url: '/shops/s1/stats' })).statusCode, 401, 'the HEAD twin of a GET route has its policy');
});
