import { spawn } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { fullImport, syncOnce, type Copy, type Notice } from '../../examples/subscriber.js';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { commandUrl, get, post, startTestProjector, startWorkers, urlOf } from '../helpers/workers.js';

type Body = Record<string, unknown>;

/**
 * Reads an NDJSON export, pausing `pauseMs` after each chunk so that the server has to wait
 * for the client (node:http, whose socket stops reading while the stream is not read).
 */
function readExport(url: string, headers: Record<string, string> = {}, pauseMs = 0): Promise<{ status: number; type: string | undefined; docs: Body[] }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, async (res) => {
        try {
          res.setEncoding('utf8');
          let text = '';
          for await (const chunk of res) {
            text += chunk as string;
            if (pauseMs) await sleep(pauseMs);
          }
          const docs = res.statusCode === 200 ? text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Body) : [];
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], docs });
        } catch (err) {
          reject(err);
        }
      })
      .on('error', reject);
  });
}

/** Reads an export until it has `lines` whole lines, then breaks the connection; returns those lines. */
function readUntilBroken(url: string, lines: number): Promise<Body[]> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (chunk: string) => {
        text += chunk;
        const whole = text.split('\n').slice(0, -1);
        if (whole.length < lines) return;
        req.destroy();
        resolve(whole.slice(0, lines).map((line) => JSON.parse(line) as Body));
      });
      res.on('end', () => reject(new Error('the export ended before the break')));
    });
    req.on('error', () => undefined);
  });
}

const ids = (docs: readonly Body[]) => docs.map((d) => d.id as string);
const pad = (i: number) => String(i).padStart(4, '0');

t.test('the import API: full export, batch, changed since, while commands arrive and while NATS is down', async (t) => {
  const nats = await startTestNats(t);
  const dataDir = tempDir(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_DATA_DIR: dataDir });
  const projector = await startTestProjector(t, nats.url, dataDir);
  const cmd = commandUrl(worker!);
  const q = urlOf(worker!.queryApp);
  const at = async (path: string, body: unknown) => {
    const res = await post(cmd, path, body);
    if (res.status !== 200) t.fail(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.position as number;
  };

  const SHOPS = 3000;
  let head = 0;
  for (let i = 0; i < SHOPS; i += 100) {
    const positions = await Promise.all(
      Array.from({ length: Math.min(100, SHOPS - i) }, (_, j) => at(`/shops/imp-${pad(i + j)}/register`, { name: `Shop ${i + j}`, category: 'c', ownerId: 'u' })),
    );
    head = Math.max(head, ...positions);
  }
  const before = Array.from({ length: SHOPS }, (_, i) => `imp-${pad(i)}`);

  t.test('a full export under concurrent commands has every earlier shop exactly once, in id order', async (t) => {
    let writing = true;
    let written = 0;
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        // New ids fall between the existing ones, ahead of and behind the export's position.
        const newId = `imp-${pad(Math.floor(Math.random() * SHOPS))}-new-${n}`;
        await Promise.all([
          at(`/shops/${newId}/register`, { name: `New ${n}`, category: 'c', ownerId: 'u' }),
          ...Array.from({ length: 4 }, (_, k) => at(`/shops/imp-${pad(Math.floor(Math.random() * SHOPS))}/rename`, { name: `Renamed ${n}.${k}` })),
        ]);
        written += 5;
      }
    })();
    // The view is changing under the export from its first chunk on.
    while (written < 50) await sleep(5);
    const res = await readExport(`${q}/import/shops`, { 'x-min-position': String(head) }, 20);
    writing = false;
    await writer;
    t.equal(res.status, 200);
    t.equal(res.type, 'application/x-ndjson');
    t.ok(written > 50, `commands were accepted before and during the export (${written})`);
    const got = ids(res.docs);
    t.equal(new Set(got).size, got.length, 'no shop twice');
    const have = new Set(got);
    t.same(before.filter((id) => !have.has(id)), [], 'every shop that existed before is there');
    t.same(got, [...got].sort(), 'in id order');
  });

  t.test('an export resumes after the last id received, and each line is the GET /shops/:id document', async (t) => {
    const full = await readExport(`${q}/import/shops`);
    const N = 700;
    const received = await readUntilBroken(`${q}/import/shops`, N);
    t.same(ids(received), ids(full.docs).slice(0, N), 'a download broken after some lines');
    const cursor = received[N - 1]!.id as string;
    const rest = await readExport(`${q}/import/shops?cursor=${cursor}`);
    t.same(ids(rest.docs), ids(full.docs).slice(N), `resumed with the id of line ${N}: exactly the rest`);
    const some = await readExport(`${q}/import/shops?cursor=${cursor}&limit=3`);
    t.same(ids(some.docs), ids(full.docs).slice(N, N + 3), 'limit caps the lines');
    const one = full.docs.find((d) => d.id === 'imp-0042')!;
    t.same(one, (await get(`${q}/shops/imp-0042`)).body, 'same shape as GET /shops/:id');
    t.notOk('ratingSum' in one, 'no internal fields');
    t.type(one.updatedAt, 'string');
    t.same((await readExport(`${q}/import/shops?cursor=zzz`)).docs, [], 'past the last id: an empty export');
  });

  t.test('batch: the found shops as GET /shops/:id serves them, the unknown ids in missing', async (t) => {
    const pos = await at('/shops/imp-batch/register', { name: 'Just registered', category: 'c', ownerId: 'u' });
    const res = await post(q, '/import/shops/batch', { ids: ['imp-0001', 'nope-1', 'imp-batch', 'imp-0001', 'nope-2'] }, { 'x-min-position': String(pos) });
    t.equal(res.status, 200);
    t.same(ids(res.body.items as Body[]), ['imp-0001', 'imp-batch'], 'in request order, once each; X-Min-Position waits for the new one');
    t.same(res.body.missing, ['nope-1', 'nope-2']);
    t.same((res.body.items as Body[])[0], (await get(`${q}/shops/imp-0001`)).body);
    const longest = Array.from({ length: 1000 }, (_, i) => `${pad(i)}${'x'.repeat(60)}`);
    const full = await post(q, '/import/shops/batch', { ids: longest });
    t.same([full.status, (full.body.missing as string[]).length], [200, 1000], '1000 ids of 64 chars fit the body limit');
    const tooMany = await post(q, '/import/shops/batch', { ids: Array.from({ length: 1001 }, (_, i) => `s${i}`) });
    t.same([tooMany.status, tooMany.body.error], [400, 'invalid_query'], '1001 ids');
  });

  t.test('changed since a position or a time: exactly the shops changed after it, each once, in order of change', async (t) => {
    await at('/shops/chg-b/register', { name: 'B', category: 'c', ownerId: 'u' });
    await at('/shops/chg-b/open', {});
    await at('/shops/chg-b/add-menu-item', { menuId: 'm1', name: 'Kimbap', price: 4000 });
    const since = await at('/shops/chg-a/register', { name: 'A', category: 'c', ownerId: 'u' });
    await sleep(5);
    const sinceTime = new Date().toISOString();
    await sleep(5);

    await at('/shops/imp-0007/rename', { name: 'changed once' });
    await at('/orders/o-chg/place', { shopId: 'chg-b', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] });
    await at('/shops/chg-a/rename', { name: 'A2' });
    await at('/shops/chg-d/register', { name: 'D', category: 'c', ownerId: 'u' });
    const last = await at('/shops/imp-0007/rename', { name: 'changed twice' });
    const expected = ['chg-b', 'chg-a', 'chg-d', 'imp-0007'];
    const wait = { 'x-min-position': String(last) };

    const byPosition = await get(`${q}/import/shops/changed?since=${since}`, wait);
    t.equal(byPosition.status, 200);
    t.same(ids(byPosition.body.items as Body[]), expected, 'an order counts as a change of its shop; the latest change places a shop');
    t.notOk(byPosition.body.next);
    t.same(byPosition.body.items as Body[], await Promise.all(expected.map(async (id) => (await get(`${q}/shops/${id}`)).body)), 'the documents');

    const byTime = await get(`${q}/import/shops/changed?since=${encodeURIComponent(sinceTime)}`, wait);
    t.same(ids(byTime.body.items as Body[]).sort(), [...expected].sort(), 'since a time: the same shops');

    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await get(`${q}/import/shops/changed?since=${since}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      t.equal(page.status, 200);
      paged.push(...ids(page.body.items as Body[]));
      cursor = page.body.next as string | undefined;
    } while (cursor);
    t.same(paged, expected, 'paged one by one with the cursor');

    t.same((await get(`${q}/import/shops/changed?since=${last}`)).body.items, [], 'nothing after the last change');
    t.same((await get(`${q}/import/shops/changed?since=2999-01-01`)).body.items, [], 'nothing in the future');
    const all = await get(`${q}/import/shops/changed?since=2000-01-01&limit=1000`);
    t.equal((all.body.items as Body[]).length, 1000, 'everything since long ago, a page at a time');
    t.type(all.body.next, 'string');
  });

  t.test('the import routes are in the OpenAPI document', async (t) => {
    const docs = await get(`${q}/docs/json`);
    const paths = docs.body.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
    t.ok(paths['/import/shops/batch']?.post && paths['/import/shops/changed']?.get, 'batch and changed');
    t.ok(paths['/import/shops']?.get?.responses['200']?.content?.['application/x-ndjson'], 'the export as NDJSON');
  });

  t.test('bad input gets a 4xx with a code', async (t) => {
    const code = async (path: string) => {
      const res = await get(`${q}${path}`);
      return [res.status, res.body.error];
    };
    const positionCursor = (await get(`${q}/import/shops/changed?since=0&limit=1`)).body.next as string;
    t.same(await code('/import/shops?limit=0'), [400, 'invalid_query']);
    t.same(await code('/import/shops?limit=1.5'), [400, 'invalid_query']);
    t.same(await code('/import/shops?cursor=bad%20id'), [400, 'invalid_query']);
    t.same(await code('/import/shops?other=1'), [400, 'invalid_query']);
    t.same(await code('/import/shops?minPosition=abc'), [400, 'invalid_query']);
    t.same(await code('/import/shops/changed'), [400, 'invalid_query'], 'since is required');
    for (const since of ['yesterday', '2024-13-01', '2024-05-01T10:00:00', '1e5', '-1', '12345678901234567890']) {
      t.same(await code(`/import/shops/changed?since=${since}`), [400, 'invalid_query'], `since=${since}`);
    }
    t.same(await code('/import/shops/changed?since=0&limit=1001'), [400, 'invalid_query']);
    t.same(await code('/import/shops/changed?since=0&cursor=bm90LW91cnM'), [400, 'invalid_cursor']);
    t.same(await code(`/import/shops/changed?since=2000-01-01&cursor=${positionCursor}`), [400, 'invalid_cursor'], "the position listing's cursor on the time listing");
    t.same(await code('/import/shops?minPosition=99999999&waitMs=20'), [504, 'not_caught_up'], 'X-Min-Position applies');
    const batch = async (body: unknown, headers: Record<string, string> = {}) => {
      const res = await post(q, '/import/shops/batch', body, headers);
      return [res.status, res.body.error];
    };
    t.same(await batch({ ids: [] }), [400, 'invalid_query']);
    t.same(await batch({ ids: ['bad id'] }), [400, 'invalid_query']);
    t.same(await batch({ ids: 'imp-0001' }), [400, 'invalid_query']);
    t.same(await batch({}), [400, 'invalid_query']);
    t.same(await batch({ ids: ['imp-0001'], more: true }), [400, 'invalid_query']);
    t.same(await batch('{"ids": ['), [400, 'invalid_json']);
    t.same(await batch('ids=1', { 'content-type': 'application/x-www-form-urlencoded' }), [415, 'unsupported_media_type']);
  });

  t.test("the example subscriber's full import and notice sync keep a copy equal to the view", async (t) => {
    const copy: Copy = new Map();
    const count = await fullImport(q, copy);
    t.equal(count, (await readExport(`${q}/import/shops`)).docs.length);
    t.same(copy.get('imp-0042'), (await get(`${q}/shops/imp-0042`)).body);
    const notice = async (aggregate: string, id: string, path: string, body: unknown): Promise<Notice> => {
      const res = await post(cmd, path, body);
      return { aggregate, id, version: res.body.version as number, position: res.body.position as number, at: new Date().toISOString() };
    };
    // No wait for the view: the sync's X-Min-Position does it.
    const notices = [
      await notice('shop', 'imp-0042', '/shops/imp-0042/rename', { name: 'Synced' }),
      await notice('shop', 'sub-new', '/shops/sub-new/register', { name: 'New', category: 'c', ownerId: 'u' }),
      await notice('order', 'o-sub', '/orders/o-sub/place', { shopId: 'chg-b', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] }),
    ];
    copy.set('gone', { id: 'gone', position: 1 });
    const synced = await syncOnce(q, copy, [...notices, { ...notices[0]!, id: 'gone' }]);
    // Two shop documents by id, and the order's shop among those changed since the order.
    const changed = (await get(`${q}/import/shops/changed?since=${notices[2]!.position - 1}&limit=100`)).body.items as Body[];
    t.same(synced, { notices: 4, shops: 2 + changed.length, position: notices[2]!.position }, 'it says what it applied');
    t.same(copy.get('imp-0042'), (await get(`${q}/shops/imp-0042`)).body, 'the renamed shop');
    t.equal(copy.get('imp-0042')?.name, 'Synced');
    t.same(copy.get('sub-new'), (await get(`${q}/shops/sub-new`)).body, 'the new shop');
    t.notOk(copy.has('gone'), 'a shop the view does not have is removed');
  });

  t.test('the example subscriber, run as a program, logs its import, then one line a batch from NOTIFY and from REPLAY', async (t) => {
    // Caught up first, so that no notice of an earlier subtest reaches the new subscriber.
    const marker = await at('/shops/sub-marker/register', { name: 'M', category: 'c', ownerId: 'u' });
    while (projector.notifier!.position() < marker) await sleep(25);
    t.equal((await post(urlOf(projector.adminApp), '/admin/subscribers', { name: 'example' })).status, 201);
    const shops = (await readExport(`${q}/import/shops`)).docs.length;
    const program = spawn(process.execPath, [join(import.meta.dirname, '../../dist/examples/subscriber.js'), 'example'], {
      env: { PATH: process.env.PATH ?? '', NATS_URL: nats.url, QUERY_URL: q, COPY_FILE: join(tempDir(t), 'copy.json') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<number | null>((resolve) => program.once('exit', resolve));
    t.teardown(() => program.kill('SIGKILL'));
    const lines = createInterface({ input: program.stdout! })[Symbol.asyncIterator]();
    const next = async () => (await Promise.race([lines.next(), sleep(20_000, { done: true, value: '(no line within 20 s)' })])).value as string;

    t.equal(await next(), `full import: ${shops} shops`);
    t.match(await next(), new RegExp(`^following NOTIFY and REPLAY as example; the copy \\(.*copy\\.json\\) has ${shops} shops$`));
    const renamed = await at('/shops/imp-0042/rename', { name: 'Followed' });
    t.equal(await next(), `NOTIFY: 1 notice applied, 1 shop fetched, up to position ${renamed}; the copy has ${shops} shops`, 'a notice applied');
    await post(urlOf(projector.adminApp), '/admin/subscribers/example/republish', { ids: [{ aggregate: 'shop', id: 'imp-0042' }] });
    t.equal(await next(), `REPLAY: 1 notice applied, 1 shop fetched, up to position ${renamed}; the copy has ${shops} shops`, 'a re-published notice applied');
    program.kill('SIGTERM');
    t.equal(await exited, 0, 'SIGTERM stops it cleanly');
  });

  t.test('the import API keeps serving from LMDB while NATS is down', async (t) => {
    const expected = (await readExport(`${q}/import/shops`)).docs.length;
    await nats.stop(true);
    const full = await readExport(`${q}/import/shops`);
    t.same([full.status, full.docs.length], [200, expected], 'the full export');
    const batch = await post(q, '/import/shops/batch', { ids: ['imp-0001'] });
    t.same([batch.status, ids(batch.body.items as Body[])], [200, ['imp-0001']], 'a batch');
    t.equal((await get(`${q}/import/shops/changed?since=0&limit=5`)).status, 200, 'changed since');
  });
});
