import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { loadConfig } from '../../src/host/config.js';
import { startWorker } from '../../src/host/worker.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';
import { shopPlatform } from '../../app.js';

const COMMAND_TOKEN = 'command-token-0123456789';
const READER_TOKEN = 'reader-token-abcdefghij';
const SECRET = 'customer-token-secret-for-tests-0123456789';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const withTokens = {
  CONVERGE_HTTP_TOKENS: COMMAND_TOKEN,
  CONVERGE_HTTP_READER_TOKENS: READER_TOKEN,
  CONVERGE_HTTP_CUSTOMER_TOKEN_SECRET: SECRET,
};

type Body = Record<string, unknown>;
interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: Body;
}

/** Calls a route; `body` makes it a JSON POST. The body is parsed when it is one JSON value. */
async function call(url: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  const res = await fetch(url, body === undefined ? { headers } : { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let parsed: Body = {};
  try {
    parsed = JSON.parse(text) as Body;
  } catch {
    // NDJSON, Prometheus text
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** A customer token: an HS256 JWT whose `sub` is the customer. */
function customerToken(sub: string | undefined, opts: { secret?: string; alg?: string; exp?: number | string | null } = {}): Promise<string> {
  let jwt = new SignJWT({}).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).setIssuedAt();
  if (sub !== undefined) jwt = jwt.setSubject(sub);
  const exp = opts.exp === undefined ? '5m' : opts.exp;
  if (exp !== null) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}

/** A config folder: the repository's, with `profile` over the test profile. */
function configDir(t: Test, profile: object): string {
  const dir = tempDir(t, 'converge-config-');
  const repo = join(import.meta.dirname, '../../config');
  const test = JSON.parse(readFileSync(join(repo, 'test.json'), 'utf8')) as object;
  writeFileSync(join(dir, 'test.json'), JSON.stringify({ ...test, ...profile }));
  return dir;
}

/** Starts one worker of its own cluster whose config comes from `dir`; stopped at teardown. */
async function startWorkerFrom(t: Test, dir: string, natsUrl: string, env: Record<string, string>) {
  const config = loadConfig({
    dir,
    env: {
      NODE_ENV: 'test',
      CONVERGE_NATS_URL: natsUrl,
      CONVERGE_DATA_DIR: tempDir(t, 'converge-data-'),
      CONVERGE_HTTP_COMMAND_PORT: '0',
      CONVERGE_HTTP_QUERY_PORT: '0',
      CONVERGE_CLUSTER_WORKERS: '1',
      CONVERGE_LOG_LEVEL: 'silent',
      ...env,
    },
  });
  const worker = await startWorker(config, pino({ level: 'silent' }), shopPlatform);
  t.teardown(() => worker.stop());
  return worker;
}

const today = new Date().toISOString().slice(0, 10);

t.test('read access by route, with command, reader and customer tokens configured', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir, ...withTokens });
  await startTestProjector(t, nats.url, dataDir, { env: withTokens });
  const cmd = commandUrl(worker!);
  const q = urlOf(worker!.queryApp);
  let last = 0;
  for (const [path, body] of [
    ['/shops/s1/register', { name: 'Kimbap Heaven', category: 'korean', ownerId: 'u1', minOrderAmount: 1000, deliveryFee: 0 }],
    ['/shops/s1/open', {}],
    ['/shops/s1/add-menu-item', { menuId: 'm1', name: 'Tuna kimbap', price: 4500 }],
    ['/orders/o1/place', { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] }],
    ['/orders/o2/place', { shopId: 's1', customerId: 'c2', items: [{ menuId: 'm1', quantity: 2 }] }],
  ] as const) {
    const res = await post(cmd, path, body, bearer(COMMAND_TOKEN));
    t.equal(res.status, 200, `${path} with the command token`);
    last = res.body.position as number;
  }
  // Every view has the orders before the checks begin.
  t.equal((await call(`${q}/customers/c1/orders`, { ...bearer(READER_TOKEN), 'x-min-position': String(last) })).status, 200);
  t.equal((await call(`${q}/shops/s1/stats?from=${today}`, { ...bearer(READER_TOKEN), 'x-min-position': String(last) })).status, 200);

  const readerRoutes: [string, string, unknown?][] = [
    ['GET /orders/:id/history', `${q}/orders/o1/history`],
    ['GET /orders/:id/state', `${q}/orders/o1/state`],
    ['GET /shops/:id/orders', `${q}/shops/s1/orders`],
    ['GET /shops/:id/stats', `${q}/shops/s1/stats?from=${today}`],
    ['GET /import/shops', `${q}/import/shops`],
    ['POST /import/shops/batch', `${q}/import/shops/batch`, { ids: ['s1'] }],
    ['GET /import/shops/changed', `${q}/import/shops/changed?since=0`],
  ];

  t.test('public routes and the operational ones answer without a token', async (t) => {
    const shop = await call(`${q}/shops/s1`);
    t.same([shop.status, shop.body.name], [200, 'Kimbap Heaven'], 'GET /shops/:id');
    const list = await call(`${q}/shops`);
    t.same([list.status, (list.body.items as Body[]).map((s) => s.id)], [200, ['s1']], 'GET /shops');
    for (const path of ['/health', '/ready', '/docs', '/docs/json', '/docs/static/swagger-ui.css', '/metrics']) t.equal((await call(q + path)).status, 200, path);
    const page = await call(`${q}/docs`);
    t.match([page.headers.get('content-type'), page.text], [/^text\/html/, /swagger-ui/], '/docs is the browsable API docs page');
    t.not((await call(`${q}/ready/views`)).status, 401, '/ready/views');
    const nothing = await call(`${q}/no/such/route`);
    t.same([nothing.status, nothing.body.error], [404, 'not_found'], 'an unknown route is a 404, not a 401');
  });

  t.test('reader routes answer 401 without a token and with a wrong one', async (t) => {
    for (const [route, url, body] of readerRoutes) {
      const none = await call(url, {}, body);
      t.same([none.status, none.body.error, none.headers.get('www-authenticate')], [401, 'unauthorized', 'Bearer'], `${route} without a token`);
      const wrong = await call(url, bearer('not-a-configured-token'), body);
      t.same([wrong.status, wrong.body.error, wrong.headers.get('www-authenticate')], [401, 'unauthorized', 'Bearer'], `${route} with a wrong token`);
      const prefix = await call(url, bearer(READER_TOKEN.slice(0, -1)), body);
      t.equal(prefix.status, 401, `${route} with a reader token cut short`);
    }
  });

  t.test('reader routes answer 200 to a reader token and to a command token', async (t) => {
    for (const [route, url, body] of readerRoutes) {
      t.equal((await call(url, bearer(READER_TOKEN), body)).status, 200, `${route} with the reader token`);
      t.equal((await call(url, bearer(COMMAND_TOKEN), body)).status, 200, `${route} with the command token`);
    }
    const history = await call(`${q}/orders/o1/history`, bearer(READER_TOKEN));
    t.match(history.body, { id: 'o1', events: [{ type: 'OrderPlaced' }] }, 'the reader gets the data');
    const exported = await call(`${q}/import/shops`, bearer(READER_TOKEN));
    t.same(exported.text.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as Body).id), ['s1'], 'the export streams');
  });

  t.test('a reader token gives no access to commands', async (t) => {
    const res = await post(cmd, '/shops/s2/register', { name: 'X', category: 'c', ownerId: 'u' }, bearer(READER_TOKEN));
    t.same([res.status, res.body.error], [401, 'unauthorized']);
  });

  t.test("a customer route answers 200 to that customer's token and 403 to another customer's", async (t) => {
    const mine = await call(`${q}/customers/c1/orders`, bearer(await customerToken('c1')));
    t.same([mine.status, (mine.body.items as Body[]).map((o) => o.orderId)], [200, ['o1']], "c1's token reads c1's orders");
    const noExp = await call(`${q}/customers/c1/orders`, bearer(await customerToken('c1', { exp: null })));
    t.equal(noExp.status, 200, 'a token without exp is valid');
    const theirs = await call(`${q}/customers/c2/orders`, bearer(await customerToken('c1')));
    t.same([theirs.status, theirs.body.error], [403, 'forbidden'], "c1's token does not read c2's orders");
    t.notOk(theirs.text.includes('o2'), "the 403 says nothing of c2's orders");
  });

  t.test('a customer route answers 401 to an expired, badly signed or otherwise invalid customer token, and to none', async (t) => {
    const url = `${q}/customers/c1/orders`;
    const invalid = {
      expired: await customerToken('c1', { exp: Math.floor(Date.now() / 1000) - 60 }),
      'signed with another secret': await customerToken('c1', { secret: 'another-secret-entirely-0123456789' }),
      'signed HS512 with the secret': await customerToken('c1', { alg: 'HS512' }),
      'without sub': await customerToken(undefined),
      'not a JWT': 'header.payload.signature',
    };
    for (const [what, token] of Object.entries(invalid)) {
      const res = await call(url, bearer(token));
      t.same([res.status, res.body.error, res.headers.get('www-authenticate')], [401, 'unauthorized', 'Bearer'], what);
    }
    const none = await call(url);
    t.same([none.status, none.body.error], [401, 'unauthorized'], 'no token');
  });

  t.test('a customer route answers 200 to a reader token and to a command token', async (t) => {
    const all = await call(`${q}/customers/c2/orders`, bearer(READER_TOKEN));
    t.same([all.status, (all.body.items as Body[]).map((o) => o.orderId)], [200, ['o2']]);
    t.equal((await call(`${q}/customers/c2/orders`, bearer(COMMAND_TOKEN))).status, 200);
  });

  t.test('a customer token opens no reader route (403) and leaves public routes open', async (t) => {
    const c1 = bearer(await customerToken('c1'));
    const history = await call(`${q}/orders/o1/history`, c1);
    t.same([history.status, history.body.error], [403, 'forbidden'], 'not even the history of its own order');
    t.equal((await call(`${q}/shops/s1`, c1)).status, 200, 'a public route');
  });

  t.test('the OpenAPI document shows security on reader and customer routes and none on public ones', async (t) => {
    const docs = await call(`${q}/docs/json`);
    const paths = docs.body.paths as Record<string, Record<string, { security?: unknown }>>;
    const securityOf = (path: string, method = 'get') => paths[path]?.[method]?.security;
    for (const path of ['/orders/{id}/history', '/orders/{id}/state', '/shops/{id}/orders', '/shops/{id}/stats', '/import/shops', '/import/shops/changed']) {
      t.same(securityOf(path), [{ bearer: [] }], `${path}: reader`);
    }
    t.same(securityOf('/import/shops/batch', 'post'), [{ bearer: [] }], '/import/shops/batch: reader');
    t.same(securityOf('/customers/{id}/orders'), [{ bearer: [] }, { customerToken: [] }], '/customers/{id}/orders: reader or customer');
    t.ok(paths['/shops/{id}']?.get, '/shops/{id} is documented');
    t.equal(securityOf('/shops/{id}'), undefined, '/shops/{id}: public');
    t.equal(securityOf('/shops'), undefined, '/shops: public');
    t.notOk('security' in docs.body, 'no document-wide security');
    t.match((docs.body.components as Body).securitySchemes, {
      bearer: { type: 'http', scheme: 'bearer' },
      customerToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
    });
  });

  t.test('the rate limit is off by default', async (t) => {
    const answers = await Promise.all(Array.from({ length: 60 }, () => call(`${q}/shops/s1`)));
    t.same([...new Set(answers.map((a) => a.status))], [200], '60 quick reads from one address all succeed');
    t.equal(answers[0]!.headers.get('x-ratelimit-limit'), null, 'and carry no rate limit headers');
  });
});

t.test('a route switched in http.readPolicy takes effect without code', async (t) => {
  const nats = await startTestNats(t);
  const dir = configDir(t, { http: { readPolicy: { 'GET /shops/:id/stats': 'public', 'GET /shops': 'reader' } } });
  const worker = await startWorkerFrom(t, dir, nats.url, withTokens);
  const q = urlOf(worker.queryApp);
  t.equal((await call(`${q}/shops/s1/stats?from=${today}`)).status, 200, 'GET /shops/:id/stats is public now');
  const list = await call(`${q}/shops`);
  t.same([list.status, list.body.error], [401, 'unauthorized'], 'GET /shops needs a reader now');
  t.equal((await call(`${q}/shops`, bearer(READER_TOKEN))).status, 200, 'and a reader token opens it');
  t.equal((await call(`${q}/shops/s1`)).status, 404, 'GET /shops/:id stays public (the route declares it)');
  t.equal((await call(`${q}/orders/o1/history`)).status, 401, 'the rest stays under *: reader');
  const paths = (await call(`${q}/docs/json`)).body.paths as Record<string, Record<string, { security?: unknown }>>;
  t.equal(paths['/shops/{id}/stats']?.get?.security, undefined, 'the OpenAPI document follows: stats has no security');
  t.same(paths['/shops']?.get?.security, [{ bearer: [] }], 'and /shops has');
});

t.test('with no tokens configured every query route is open', async (t) => {
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_HTTP_CUSTOMER_TOKEN_SECRET: SECRET });
  const q = urlOf(worker!.queryApp);
  const reg = await post(commandUrl(worker!), '/shops/s1/register', { name: 'Open', category: 'c', ownerId: 'u' });
  t.equal(reg.status, 200, 'commands are open too');
  for (const [url, body] of [
    [`${q}/shops/s1/history`],
    [`${q}/shops/s1/state`],
    [`${q}/shops/s1/orders`],
    [`${q}/shops/s1/stats?from=${today}`],
    [`${q}/customers/c1/orders`],
    [`${q}/import/shops`],
    [`${q}/import/shops/batch`, { ids: ['s1'] }],
    [`${q}/shops`],
  ] as const) {
    t.equal((await call(url, {}, body)).status, 200, url.slice(q.length));
  }
  t.equal((await call(`${q}/customers/c1/orders`, bearer('anything-at-all'))).status, 200, 'a token that matches nothing is ignored');
  const paths = (await call(`${q}/docs/json`)).body.paths as Record<string, Record<string, { security?: unknown }>>;
  t.equal(paths['/customers/{id}/orders']?.get?.security, undefined, 'and the OpenAPI document asks for no token');
});

t.test('the rate limit answers 429 rate_limited with Retry-After once a client exceeds it, refused requests included', async (t) => {
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1, {
    ...withTokens,
    CONVERGE_HTTP_QUERY_RATE_LIMIT_MAX: '3',
    CONVERGE_HTTP_QUERY_RATE_LIMIT_WINDOW_MS: '60000',
  });
  const q = urlOf(worker!.queryApp);
  const first = await call(`${q}/shops`);
  t.same([first.status, first.headers.get('x-ratelimit-limit')], [200, '3'], 'under the limit: served, with the limit in a header');
  t.equal((await call(`${q}/orders/o1/history`)).status, 401, 'a refused request…');
  t.equal((await call(`${q}/shops`)).status, 200, '…counts as the second; this is the third');
  const over = await call(`${q}/orders/o1/history`, bearer(READER_TOKEN));
  t.same([over.status, over.body.error], [429, 'rate_limited'], 'the fourth is refused, a valid token or not');
  t.match(over.body.message, /more than 3 requests .* within 60000 ms; retry in \d+ s/);
  const retryAfter = Number(over.headers.get('retry-after'));
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After is the rest of the window (${retryAfter} s)`);
  t.equal(over.headers.get('content-type')?.startsWith('application/json'), true, 'in the error shape');
  t.equal((await call(`${q}/shops`)).status, 429, 'public routes too');
  for (const path of ['/health', '/ready', '/metrics', '/docs', '/docs/json', '/docs/static/swagger-ui.css']) t.equal((await call(q + path)).status, 200, `${path} is not limited`);
  t.equal((await post(commandUrl(worker!), '/shops/s1/register', { name: 'A', category: 'c', ownerId: 'u' }, bearer(COMMAND_TOKEN))).status, 200, 'the command API is not limited');
});
