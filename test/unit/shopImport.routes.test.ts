import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify from 'fastify';
import t from 'tap';
import type { ShopDisplayDoc } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { changedFrom, shopImportRoutes } from '../../projections/shopDisplay/shopImport.routes.js';
import type { ViewReader } from '../../src/read/viewStore.js';

const doc = (id: string): ShopDisplayDoc => ({
  id, name: `Shop ${id}`, category: 'c', open: true, minOrderAmount: 0, deliveryFee: 0, menu: [],
  ratingSum: 0, reviewCount: 0, ratingAverage: 0, orderCount: 0, version: 1, position: 1, updatedAt: '2024-05-01T10:00:00.000Z',
});

/** A view of `total` shops `k0000000`… generated on demand, counting the range reads. */
function syntheticViews(total: number) {
  const key = (n: number) => `k${String(n).padStart(7, '0')}`;
  const reads = { scans: 0 };
  const views: Pick<ViewReader, 'scan'> = {
    scan<D extends object>(_view: unknown, after: string | undefined, limit: number) {
      reads.scans++;
      const from = after === undefined ? 0 : Number(after.slice(1)) + 1;
      return Array.from({ length: Math.max(0, Math.min(limit, total - from)) }, (_, i) => ({ key: key(from + i), doc: doc(key(from + i)) as D }));
    },
  };
  return { views: views as ViewReader, reads };
}

t.test('the export waits for a slow client and stops when the client goes away', async (t) => {
  const { views, reads } = syntheticViews(1_000_000);
  const app = Fastify();
  await app.register(shopImportRoutes, { views } as never);
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => app.close());
  const { port } = app.server.address() as AddressInfo;

  const req = http.get(`http://127.0.0.1:${port}/import/shops`);
  const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
  req.on('error', () => undefined);
  t.equal(res.headers['content-type'], 'application/x-ndjson');
  res.pause();
  await sleep(300);
  const whilePaused = reads.scans;
  await sleep(300);
  t.equal(reads.scans, whilePaused, 'no more reads while the client reads nothing');
  t.ok(whilePaused < 200, `far from the 2000 chunks of the whole view (${whilePaused} read)`);

  res.resume();
  await sleep(100);
  t.ok(reads.scans > whilePaused, 'reading goes on when the client does');
  req.destroy();
  await sleep(100);
  const atClose = reads.scans;
  await sleep(200);
  t.equal(reads.scans, atClose, 'no reads after the client went away');
});

t.test('since: a whole number is a position, an ISO time with a zone is a time, anything else is not', async (t) => {
  t.same(changedFrom('0'), { prefix: ['position'], from: [1] });
  t.same(changedFrom('41'), { prefix: ['position'], from: [42] });
  t.same(changedFrom('2024-05-01'), { prefix: ['at'], from: ['2024-05-01T00:00:00.000Z'] });
  t.same(changedFrom('2024-05-01T10:00:00Z'), { prefix: ['at'], from: ['2024-05-01T10:00:00.000Z'] }, 'normalized to the stored form');
  t.same(changedFrom('2024-05-01T19:00:00.5+09:00'), { prefix: ['at'], from: ['2024-05-01T10:00:00.500Z'] });
  t.same(changedFrom('2024-05-01T19:00:00 09:00'), { prefix: ['at'], from: ['2024-05-01T10:00:00.000Z'] }, "an offset's + decoded as a space");
  for (const bad of ['', 'yesterday', '2024-05-01T10:00:00', '2024-13-01', '1e3', '-1', '1.5', '9999999999999999', '+010000-01-01T00:00:00Z']) {
    t.equal(changedFrom(bad), undefined, JSON.stringify(bad));
  }
});
