import t from 'tap';
import type { OrderEvent } from '../../actors/order/order.events.js';
import { shopStats } from '../../projections/shopStats/shopStats.projection.js';
import { foldAll, stream } from './projectionSpec.js';

const placed = (shopId: string, total: number): OrderEvent => ({
  type: 'OrderPlaced',
  data: { shopId, customerId: 'c1', lines: [{ menuId: 'm1', name: 'X', price: total, quantity: 1 }], total, deliveryFee: 3000 },
});
const facts = (shopId: string, total: number) => ({ shopId, customerId: 'c1', total });
const day1 = '2024-05-01';
const day2 = '2024-05-02';

t.test('each event counts on the UTC day it happened, in a document per shop and day', async (t) => {
  const s = stream()
    .commit('order', 'o1', `${day1}T09:00:00.000Z`, placed('s1', 10000))
    .commit('order', 'o2', `${day1}T10:00:00.000Z`, placed('s1', 20000))
    .commit('order', 'o3', `${day1}T11:00:00.000Z`, placed('s1', 30000))
    .commit('order', 'o1', `${day1}T23:59:59.999Z`, { type: 'OrderAccepted', data: facts('s1', 10000) })
    .commit('order', 'o2', `${day1}T12:00:00.000Z`, { type: 'OrderRejected', data: { ...facts('s1', 20000), reason: 'busy' } })
    .commit('order', 'o1', `${day2}T00:10:00.000Z`, { type: 'OrderDelivered', data: facts('s1', 10000) })
    .commit('order', 'o3', `${day2}T01:00:00.000Z`, { type: 'OrderCancelled', data: { ...facts('s1', 30000), reason: 'late' } })
    .commit('order', 'o4', `${day2}T02:00:00.000Z`, placed('s2', 5000));
  const view = foldAll(shopStats, s.events);
  t.same(view.get(['s1', day1]), { shopId: 's1', day: day1, orders: 3, delivered: 0, cancelled: 0, rejected: 1, revenue: 0 });
  t.same(view.get(['s1', day2]), { shopId: 's1', day: day2, orders: 0, delivered: 1, cancelled: 1, rejected: 0, revenue: 10000 });
  t.same(view.get(['s2', day2]), { shopId: 's2', day: day2, orders: 1, delivered: 0, cancelled: 0, rejected: 0, revenue: 0 });
  t.equal(view.docs.size, 3);
});

t.test('revenue sums delivered food totals, without delivery fees', async (t) => {
  const s = stream()
    .commit('order', 'o1', `${day1}T09:00:00.000Z`, placed('s1', 10000))
    .commit('order', 'o2', `${day1}T09:00:00.000Z`, placed('s1', 25000))
    .commit('order', 'o1', `${day1}T10:00:00.000Z`, { type: 'OrderDelivered', data: facts('s1', 10000) })
    .commit('order', 'o2', `${day1}T11:00:00.000Z`, { type: 'OrderDelivered', data: facts('s1', 25000) });
  t.match(foldAll(shopStats, s.events).get(['s1', day1]), { orders: 2, delivered: 2, revenue: 35000 });
});

t.test('the key is [shopId, day] from the commit time; accepted orders are not counted', async (t) => {
  const meta = { aggregate: 'order', id: 'o1', version: 1, position: 1, at: `${day2}T05:00:00.000Z` };
  t.same(shopStats.key({ ...placed('s1', 1000), at: meta.at }, meta), ['s1', day2]);
  t.notOk(shopStats.handles.includes('OrderAccepted'));
});
