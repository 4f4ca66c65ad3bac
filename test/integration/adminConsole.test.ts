import t from 'tap';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';

type Body = Record<string, unknown>;
const TOKEN = 'admin-console-token';
const auth = { authorization: `Bearer ${TOKEN}` };

/** Reads server-sent events from a fetch response until `count` have come or the stream ends. */
async function readEvents(res: Response, count: number): Promise<{ events: { event: string; data: Body }[]; ended: boolean }> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { event: string; data: Body }[] = [];
  let buffer = '';
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) return { events, ended: true };
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const lines = buffer.slice(0, end).split('\n');
      buffer = buffer.slice(end + 2);
      const field = (name: string) => lines.find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
      events.push({ event: field('event') ?? '', data: JSON.parse(field('data') ?? '{}') as Body });
    }
  }
  void reader.cancel();
  return { events, ended: false };
}

t.test('admin console routes', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const env = { CONVERGE_HTTP_TOKENS: TOKEN, CONVERGE_PROJECTIONS_STATUS_INTERVAL_MS: '200' };
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir, ...env });
  const projector = await startTestProjector(t, nats.url, dataDir, { env });
  const cmd = commandUrl(worker!);
  const q = urlOf(worker!.queryApp);
  const admin = urlOf(projector.adminApp);
  const registered = await post(cmd, '/shops/s1/register', { name: 'Kimbap Heaven', category: 'korean', ownerId: 'u1' }, auth);
  t.equal(registered.status, 200);
  const renamed = await post(cmd, '/shops/s1/rename', { name: 'Kimbap Palace' }, auth);
  const position = registered.body.position as number;

  t.test('the console page and its assets are open, with a content security policy; every /admin route needs the token', async (t) => {
    const page = await fetch(`${admin}/`);
    t.equal(page.status, 200);
    t.match(page.headers.get('content-type'), /^text\/html/);
    t.match(page.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'.*connect-src 'self'/);
    t.match(await page.text(), /<script type="module" src="\/console\/console.js">/);
    for (const file of ['console.js', 'api.js', 'charts.js', 'console.css']) {
      const res = await fetch(`${admin}/console/${file}`);
      t.same([res.status, res.headers.get('content-type')?.split(';')[0]], [200, file.endsWith('.css') ? 'text/css' : 'text/javascript'], file);
    }
    t.same((await get(`${admin}/console/missing.js`)).body.error, 'not_found', 'a file the console does not have: 404');
    const escape = await fetch(`${admin}/console/..%2Fpackage.json`);
    t.equal(escape.status, 400, 'a name that is not a console file is refused by the schema, never read from disk');
    const docs = await fetch(`${admin}/docs`);
    t.match([docs.status, docs.headers.get('content-type')], [200, /^text\/html/], 'the admin API has its docs page too');
    const paths = (await get(`${admin}/docs/json`)).body.paths as Record<string, Record<string, { security?: unknown }>>;
    for (const path of ['/admin/projections', '/admin/events', '/admin/commits/{position}', '/admin/aggregates/{aggregate}/{id}/state']) {
      t.same(paths[path]?.get?.security, [{ bearer: [] }], `${path} is documented as needing the token`);
    }
    for (const path of ['/admin/events', `/admin/commits/${position}`, '/admin/aggregates', '/admin/aggregates/shops/s1/history', '/admin/aggregates/shops/s1/state']) {
      const res = await get(admin + path);
      t.same([res.status, res.body.error], [401, 'unauthorized'], `${path} needs the token`);
    }
  });

  t.test('GET /admin/commits/:position answers the commit at that position; bad or unknown positions are 4xx', async (t) => {
    const res = await get(`${admin}/admin/commits/${position}`, auth);
    t.equal(res.status, 200);
    t.match(res.body, { position, aggregate: 'shop', id: 's1', version: 1, commandType: 'RegisterShop', events: [{ type: 'ShopRegistered', data: { name: 'Kimbap Heaven' } }] });
    t.ok(!Number.isNaN(Date.parse(res.body.storedAt as string)), 'storedAt is a time');
    for (const bad of ['0', '-1', 'abc', '1.5', '99999999999999999999']) {
      const r = await get(`${admin}/admin/commits/${bad}`, auth);
      t.same([r.status, r.body.error], [400, 'invalid_request'], `position ${bad}`);
    }
    const missing = await get(`${admin}/admin/commits/999999`, auth);
    t.same([missing.status, missing.body.error], [404, 'commit_not_found'], 'a position past the stream');
  });

  t.test('the event browser reads an aggregate history and its state at a version exactly as the query API does', async (t) => {
    t.same((await get(`${admin}/admin/aggregates`, auth)).body, { aggregates: [{ name: 'shop', plural: 'shops' }, { name: 'order', plural: 'orders' }, { name: 'review', plural: 'reviews' }] });
    const history = await get(`${admin}/admin/aggregates/shops/s1/history`, auth);
    t.equal(history.status, 200);
    t.same(history.body, (await get(`${q}/shops/s1/history`, auth)).body, 'the same history');
    t.match(history.body.events, [{ version: 1, type: 'ShopRegistered' }, { version: 2, type: 'ShopRenamed', position: renamed.body.position }]);
    const asOf1 = await get(`${admin}/admin/aggregates/shops/s1/state?atVersion=1`, auth);
    t.same(asOf1.body, (await get(`${q}/shops/s1/state?atVersion=1`, auth)).body, 'the same state as of version 1');
    t.match(asOf1.body, { version: 1, state: { name: 'Kimbap Heaven' } });
    t.match((await get(`${admin}/admin/aggregates/shop/s1/state`, auth)).body, { version: 2, state: { name: 'Kimbap Palace' } }, 'the singular name too, latest by default');
    const cases: [string, number, string][] = [
      ['/admin/aggregates/ships/s1/history', 404, 'unknown_aggregate'],
      ['/admin/aggregates/ships/s1/state', 404, 'unknown_aggregate'],
      ['/admin/aggregates/shops/nobody/history', 404, 'not_found'],
      ['/admin/aggregates/shops/s1/state?atVersion=9', 404, 'version_not_found'],
      ['/admin/aggregates/shops/s1/state?atVersion=0', 400, 'invalid_request'],
      ['/admin/aggregates/shops/s1/history?fromVersion=x', 400, 'invalid_request'],
      ['/admin/aggregates/shops/s1/history?limit=100000', 400, 'invalid_request'],
      ['/admin/aggregates/shops/s1/history?other=1', 400, 'invalid_request'],
      [`/admin/aggregates/shops/${'x'.repeat(65)}/state`, 400, 'invalid_request'],
      ['/admin/aggregates/sh%20ops/s1/state', 400, 'invalid_request'],
    ];
    for (const [path, status, error] of cases) {
      const res = await get(admin + path, auth);
      t.same([res.status, res.body.error], [status, error], path);
    }
  });

  t.test('GET /admin/events streams the views status at once and then every status interval', async (t) => {
    const res = await fetch(`${admin}/admin/events`, { headers: auth });
    t.equal(res.status, 200);
    t.match(res.headers.get('content-type'), /^text\/event-stream/);
    const started = Date.now();
    const { events } = await readEvents(res, 3);
    t.ok(Date.now() - started < 2000, `three statuses within 2 s at a 200 ms interval (${Date.now() - started} ms)`);
    t.same(events.map((e) => e.event), ['status', 'status', 'status']);
    t.match(events[0]!.data, { projections: [{ name: 'shopDisplay' }, { name: 'shopList' }, { name: 'orderHistory' }, { name: 'shopStats' }], eventStore: { reachable: Boolean } });
    t.not(events[0]!.data.at, events[2]!.data.at, 'each a fresh status');
  });
});

t.test('stopping the projector ends open status streams instead of waiting for their clients', async (t) => {
  const nats = await startTestNats(t);
  const projector = await startTestProjector(t, nats.url, tempDir(t), { env: { CONVERGE_PROJECTIONS_STATUS_INTERVAL_MS: '200' } });
  const admin = urlOf(projector.adminApp);
  const streams = await Promise.all([1, 2, 3].map(() => fetch(`${admin}/admin/events`)));
  t.same(streams.map((s) => s.status), [200, 200, 200]);
  const reading = streams.map((s) => readEvents(s, 1000));
  const started = Date.now();
  await projector.stop();
  const took = Date.now() - started;
  t.ok(took < 3000, `the projector stopped in ${took} ms with three streams open`);
  const ends = await Promise.all(reading);
  t.ok(ends.every((e) => e.ended && e.events.length >= 1), 'every stream got a status and then ended');
});
