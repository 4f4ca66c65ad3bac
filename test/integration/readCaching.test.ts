import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { Agent, fetch as cachedFetch, interceptors } from 'undici';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';

// Documents as stored bytes, ETags, Cache-Control and the staleness budget on the query API
// (docs/architecture.md, "Documents as stored bytes" and "Staleness"), on a real nats-server,
// real LMDB files and the worker's Fastify app.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MAX_AGE_S = 3;
/** Sleeps until `ms` after `since`. */
const sleepUntil = (since: number, ms: number) => sleep(Math.max(0, since + ms - Date.now()));

/** What reached the origin through the proxy: each request's path, its If-None-Match and the status it got. */
interface Seen {
  readonly url: string;
  readonly ifNoneMatch: string | undefined;
  readonly status: number;
}

/** A plain HTTP proxy in front of `origin` that records every request it forwards. */
async function recordingProxy(t: Test, origin: string): Promise<{ url: string; seen: Seen[] }> {
  const target = new URL(origin);
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    const out = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      seen.push({ url: req.url!, ifNoneMatch: req.headers['if-none-match'], status: answer.statusCode! });
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

t.test('the query API on real NATS and LMDB', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  // A max-age of 3 s: the cache test's steps take well under it even on a loaded machine.
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir, CONVERGE_QUERY_PUBLIC_MAX_AGE_S: String(MAX_AGE_S) });
  const projector = await startTestProjector(t, nats.url, dataDir);
  const cmd = commandUrl(worker!);
  const q = urlOf(worker!.queryApp);
  const command = async (path: string, body: unknown) => {
    const res = await post(cmd, path, body);
    t.equal(res.status, 200, `${path} succeeds`);
    return res.body['position'] as number;
  };
  const registered = await command('/shops/s1/register', { name: 'Kimbap Heaven', category: 'korean', ownerId: 'u1', minOrderAmount: 5000, deliveryFee: 3000 });
  await command('/shops/s2/register', { name: 'Pho Bar', category: 'vietnamese', ownerId: 'u2', minOrderAmount: 0, deliveryFee: 0 });
  const opened = await command('/shops/s1/open', {});
  await get(`${q}/shops/s1`, { 'x-min-position': String(opened) });

  t.test('a document read sends the stored JSON with the position of the last event that changed it as ETag, and 304 for it', async (t) => {
    const s2 = await get(`${q}/shops/s2`, { 'x-min-position': String(opened) });
    t.equal(s2.headers.get('etag'), `"${registered + 1}"`, 'the ETag of s2 is its registration, although later commits changed other shops');
    const s1 = await get(`${q}/shops/s1`);
    t.equal(s1.headers.get('etag'), `"${opened}"`);
    t.equal(s1.headers.get('content-type'), 'application/json; charset=utf-8');
    t.match(s1.body, { id: 's1', open: true, ratingAverage: 0 });
    t.notOk('ratingSum' in s1.body, 'the hidden field is not stored with the served JSON');
    t.equal((await fetch(`${q}/shops/s1`, { headers: { 'if-none-match': `"${opened}"` } })).status, 304);
    t.equal((await fetch(`${q}/shops/s1`, { headers: { 'if-none-match': `"1", W/"${opened}"` } })).status, 304, 'a weak tag in a list matches');
    t.equal((await fetch(`${q}/shops/s1`, { headers: { 'if-none-match': `"${registered}"` } })).status, 200, 'an older ETag gets the document');
  });

  t.test('a list route sends its items as stored, without hidden fields', async (t) => {
    const page = await get(`${q}/shops?sort=newest&limit=1`);
    t.equal(page.status, 200);
    const items = page.body['items'] as Array<Record<string, unknown>>;
    t.equal(items.length, 1);
    t.equal(typeof page.body['next'], 'string', 'with the cursor of the next page');
    t.notOk('ratingSum' in items[0]!);
    const rest = await get(`${q}/shops?sort=newest&limit=1&cursor=${page.body['next'] as string}`);
    t.notOk('next' in rest.body, 'the last page has no next');
    t.not((rest.body['items'] as Array<{ id: string }>)[0]!.id, items[0]!['id']);
  });

  t.test('public document reads say how long anyone may cache them; a customer\'s say only the client may', async (t) => {
    t.equal((await get(`${q}/shops/s1`)).headers.get('cache-control'), `public, max-age=${MAX_AGE_S}`, 'query.publicMaxAgeS');
    t.equal((await get(`${q}/shops?sort=newest`)).headers.get('cache-control'), `public, max-age=${MAX_AGE_S}`);
    t.equal((await get(`${q}/customers/c1/orders`)).headers.get('cache-control'), 'private, no-cache');
    t.equal((await get(`${q}/shops/nope`)).headers.get('cache-control'), null, 'a 404 says nothing about caching');
  });

  t.test('a shared HTTP cache in front serves a document for its max-age, then revalidates it with its ETag', async (t) => {
    const proxy = await recordingProxy(t, q);
    const cache = new Agent().compose(interceptors.cache());
    t.teardown(() => cache.close());
    const read = async () => {
      const res = await cachedFetch(`${proxy.url}/shops/s2`, { dispatcher: cache });
      return { etag: res.headers.get('etag'), body: (await res.json()) as { name: string } };
    };
    const firstAt = Date.now();
    const first = await read();
    t.equal(proxy.seen.length, 1, 'the first read reaches converge');
    const renamed = await command('/shops/s2/rename', { name: 'Pho Bar & Grill' });
    await get(`${q}/shops/s2`, { 'x-min-position': String(renamed) });
    const cached = await read();
    t.ok(Date.now() - firstAt < MAX_AGE_S * 1000, 'still within max-age');
    t.same(cached, first, 'within max-age the cache answers, with what it had');
    t.equal(proxy.seen.length, 1, 'and converge was not asked');
    await sleepUntil(firstAt, MAX_AGE_S * 1000 + 200);
    const changedAt = Date.now();
    const changed = await read();
    t.same([changed.etag, changed.body.name], [`"${renamed}"`, 'Pho Bar & Grill'], 'once stale, the cache fetches the change');
    t.match(proxy.seen[1], { ifNoneMatch: first.etag, status: 200 }, 'asking with the ETag it had');
    await sleepUntil(changedAt, MAX_AGE_S * 1000 + 200);
    t.same(await read(), changed, 'an unchanged document');
    t.match(proxy.seen[2], { ifNoneMatch: changed.etag, status: 304 }, 'is revalidated with a 304');
  });

  t.test('every view read says how far behind the store its view is, and X-Max-Staleness bounds it', async (t) => {
    const fresh = await get(`${q}/shops/s1`, { 'x-max-staleness': '0ms' });
    t.equal(fresh.status, 200, 'a caught-up view meets a budget of 0');
    t.equal(fresh.headers.get('x-view-lag-ms'), '0');

    await projector.stop();
    await command('/shops/s1/rename', { name: 'Kimbap Heaven II' });
    await sleep(300);
    const lagging = await get(`${q}/shops/s1`);
    t.equal(lagging.status, 200, 'without a budget the view is served');
    t.ok(Number(lagging.headers.get('x-view-lag-ms')) >= 300, `saying how old its oldest unapplied commit is (${lagging.headers.get('x-view-lag-ms')} ms)`);
    t.equal(lagging.body['name'], 'Kimbap Heaven');

    const started = Date.now();
    const stale = await fetch(`${q}/shops/s1?waitMs=200`, { headers: { 'x-max-staleness': '250ms' } });
    const body = (await stale.json()) as { error: string; lagMs: number };
    t.equal(stale.status, 503);
    t.equal(body.error, 'view_stale');
    t.ok(body.lagMs > 250, 'with the lag');
    t.equal(stale.headers.get('retry-after'), '1');
    t.ok(Date.now() - started >= 200, 'after waiting waitMs for the view');
    t.equal((await get(`${q}/shops/s1`, { 'x-max-staleness': '1m' })).status, 400, 'a budget that is no duration is a 400');
    t.equal((await get(`${q}/shops/s1`, { 'x-max-staleness': '10s' })).status, 200, 'a generous budget is met');

    await startTestProjector(t, nats.url, dataDir);
    const caughtUp = await get(`${q}/shops/s1?waitMs=5000`, { 'x-max-staleness': '100ms' });
    t.equal(caughtUp.status, 200, 'a read that waits gets the view once it is within the budget');
    t.equal(caughtUp.body['name'], 'Kimbap Heaven II');
    t.ok(Number(caughtUp.headers.get('x-view-lag-ms')) <= 100);
  });
});
