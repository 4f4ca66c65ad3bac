import t from 'tap';
import type { OrderEvent } from '../../actors/order/order.events.js';
import { orderHistory } from '../../projections/orderHistory/orderHistory.projection.js';
import { foldAll, stream } from './projectionSpec.js';

const lines = [{ menuId: 'm1', name: 'Bibimbap', price: 9000, quantity: 2 }];
const placed = (shopId: string, customerId: string): OrderEvent => ({
  type: 'OrderPlaced',
  data: { shopId, customerId, lines, total: 18000, deliveryFee: 3000 },
});
const facts = { shopId: 's1', customerId: 'c1', total: 18000 };
const accepted: OrderEvent = { type: 'OrderAccepted', data: facts };
const delivered: OrderEvent = { type: 'OrderDelivered', data: facts };

t.test('a placed order is recorded with its lines, totals and placement', async (t) => {
  const s = stream().commit('order', 'o1', '2024-05-01T10:00:00.000Z', placed('s1', 'c1'));
  const view = foldAll(orderHistory, s.events);
  t.same(view.get('o1'), {
    orderId: 'o1', shopId: 's1', customerId: 'c1', status: 'placed', lines, total: 18000, deliveryFee: 3000,
    placedAt: '2024-05-01T10:00:00.000Z', updatedAt: '2024-05-01T10:00:00.000Z', placedPosition: 1, position: 1, version: 1,
  });
  t.same(view.entries(), [
    ['customer', 'c1', -1, 'o1'],
    ['shop', 's1', '*', -1, 'o1'],
    ['shop', 's1', 'placed', -1, 'o1'],
  ]);
});

t.test('the status moves along the lifecycle, and the status index follows it', async (t) => {
  const s = stream()
    .commit('order', 'o1', '2024-05-01T10:00:00.000Z', placed('s1', 'c1'))
    .commit('order', 'o1', '2024-05-01T10:05:00.000Z', accepted)
    .commit('order', 'o1', '2024-05-01T10:40:00.000Z', delivered);
  const view = foldAll(orderHistory, s.events);
  t.match(view.get('o1'), { status: 'delivered', placedAt: '2024-05-01T10:00:00.000Z', updatedAt: '2024-05-01T10:40:00.000Z', placedPosition: 1, position: 3, version: 3 });
  t.same(view.byIndex(['shop', 's1', 'placed']), []);
  t.same(view.byIndex(['shop', 's1', 'delivered']).map((d) => d.orderId), ['o1']);
});

t.test('rejected and cancelled orders are recorded as such', async (t) => {
  const s = stream()
    .commit('order', 'o1', '2024-05-01T10:00:00.000Z', placed('s1', 'c1'))
    .commit('order', 'o2', '2024-05-01T10:00:00.000Z', placed('s1', 'c1'))
    .commit('order', 'o1', '2024-05-01T10:01:00.000Z', { type: 'OrderRejected', data: { ...facts, reason: 'busy' } })
    .commit('order', 'o2', '2024-05-01T10:02:00.000Z', accepted)
    .commit('order', 'o2', '2024-05-01T10:03:00.000Z', { type: 'OrderCancelled', data: { ...facts, reason: 'late' } });
  const view = foldAll(orderHistory, s.events);
  t.equal(view.get('o1')?.status, 'rejected');
  t.equal(view.get('o2')?.status, 'cancelled');
});

t.test('histories list newest first, per customer and per shop', async (t) => {
  const s = stream()
    .commit('order', 'o1', '2024-05-01T10:00:00.000Z', placed('s1', 'c1'))
    .commit('order', 'o2', '2024-05-01T11:00:00.000Z', placed('s2', 'c1'))
    .commit('order', 'o3', '2024-05-01T12:00:00.000Z', placed('s1', 'c2'))
    .commit('order', 'o1', '2024-05-01T13:00:00.000Z', accepted);
  const view = foldAll(orderHistory, s.events);
  const orderIds = (prefix: (string | number)[]) => view.byIndex(prefix).map((d) => d.orderId);
  t.same(orderIds(['customer', 'c1']), ['o2', 'o1'], 'a later status change does not reorder');
  t.same(orderIds(['customer', 'c2']), ['o3']);
  t.same(orderIds(['shop', 's1', '*']), ['o3', 'o1']);
  t.same(orderIds(['shop', 's1', 'placed']), ['o3']);
  t.same(orderIds(['shop', 's1', 'accepted']), ['o1']);
});

t.test('status events for an order never placed create nothing; a second placement changes nothing', async (t) => {
  t.equal(foldAll(orderHistory, stream().commit('order', 'o1', '2024-05-01T10:00:00.000Z', accepted).events).docs.size, 0);
  const s = stream()
    .commit('order', 'o1', '2024-05-01T10:00:00.000Z', placed('s1', 'c1'))
    .commit('order', 'o1', '2024-05-01T11:00:00.000Z', placed('s9', 'c9'));
  t.match(foldAll(orderHistory, s.events).get('o1'), { shopId: 's1', customerId: 'c1', position: 1 });
});
