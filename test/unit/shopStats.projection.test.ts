import t, { type Test } from 'tap';
import { order } from '../../actors/order/order.decider.js';
import type { OrderPlaced } from '../../actors/order/order.events.js';
import { shopPlatform } from '../../app.js';
import { shopStats } from '../../projections/shopStats/shopStats.projection.js';
import { commitAt, projectionSpec } from '../../src/testing.js';
import { tapAssert } from '../helpers/spec.js';

const stats = (t: Test) => projectionSpec(shopStats, { assert: tapAssert(t) });

const placed = (shopId: string, total: number): OrderPlaced => ({
  type: 'OrderPlaced',
  data: { shopId, customerId: 'c1', lines: [{ menuId: 'm1', name: 'X', price: total, quantity: 1 }], total, deliveryFee: 3000 },
});
const facts = (shopId: string, total: number) => ({ shopId, customerId: 'c1', total });
const day1 = '2024-05-01';
const day2 = '2024-05-02';

t.test('each event counts on the UTC day it happened, in a document per shop and day', async (t) => {
  const outcome = stats(t)
    .given(
      commitAt(`${day1}T09:00:00.000Z`, order, 'o1', placed('s1', 10000)),
      commitAt(`${day1}T10:00:00.000Z`, order, 'o2', placed('s1', 20000)),
      commitAt(`${day1}T11:00:00.000Z`, order, 'o3', placed('s1', 30000)),
      commitAt(`${day1}T23:59:59.999Z`, order, 'o1', { type: 'OrderAccepted', data: facts('s1', 10000) }),
      commitAt(`${day1}T12:00:00.000Z`, order, 'o2', { type: 'OrderRejected', data: { ...facts('s1', 20000), reason: 'busy' } }),
      commitAt(`${day2}T00:10:00.000Z`, order, 'o1', { type: 'OrderDelivered', data: facts('s1', 10000) }),
      commitAt(`${day2}T01:00:00.000Z`, order, 'o3', { type: 'OrderCancelled', data: { ...facts('s1', 30000), reason: 'late' } }),
      commitAt(`${day2}T02:00:00.000Z`, order, 'o4', placed('s2', 5000)),
    )
    .then(['s1', day1], { shopId: 's1', day: day1, orders: 3, delivered: 0, cancelled: 0, rejected: 1, revenue: 0 })
    .then(['s1', day2], { shopId: 's1', day: day2, orders: 0, delivered: 1, cancelled: 1, rejected: 0, revenue: 10000 })
    .then(['s2', day2], { shopId: 's2', day: day2, orders: 1, delivered: 0, cancelled: 0, rejected: 0, revenue: 0 });
  t.same(outcome.documents().map((d) => d.key), [['s1', day1], ['s1', day2], ['s2', day2]], 'and no other document');
});

t.test('revenue sums delivered food totals, without delivery fees', async (t) => {
  const outcome = stats(t).given(
    commitAt(`${day1}T09:00:00.000Z`, order, 'o1', placed('s1', 10000)),
    commitAt(`${day1}T09:00:00.000Z`, order, 'o2', placed('s1', 25000)),
    commitAt(`${day1}T10:00:00.000Z`, order, 'o1', { type: 'OrderDelivered', data: facts('s1', 10000) }),
    commitAt(`${day1}T11:00:00.000Z`, order, 'o2', { type: 'OrderDelivered', data: facts('s1', 25000) }),
  );
  t.match(outcome.doc(['s1', day1]), { orders: 2, delivered: 2, revenue: 35000 });
});

t.test('the key is [shopId, day] from the commit time; accepted orders are not counted', async (t) => {
  const meta = { aggregate: 'order', id: 'o1', version: 1, position: 1, at: `${day2}T05:00:00.000Z` };
  t.same(shopStats.key({ ...placed('s1', 1000), at: meta.at }, meta), ['s1', day2]);
  const handled: readonly string[] = shopStats.handles;
  t.notOk(handled.includes('OrderAccepted'));
});
