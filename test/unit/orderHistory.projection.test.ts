import t, { type Test } from 'tap';
import { order } from '../../actors/order/order.decider.js';
import type { OrderEvent, OrderPlaced } from '../../actors/order/order.events.js';
import { shopPlatform } from '../../app.js';
import { orderHistory } from '../../projections/orderHistory/orderHistory.projection.js';
import { commitAt, projectionSpec } from '../../src/testing.js';
import { tapAssert } from '../helpers/spec.js';

const histories = (t: Test) => projectionSpec(orderHistory, { assert: tapAssert(t) });

const lines = [{ menuId: 'm1', name: 'Bibimbap', price: 9000, quantity: 2 }];
const placed = (shopId: string, customerId: string): OrderPlaced => ({
  type: 'OrderPlaced',
  data: { shopId, customerId, lines, total: 18000, deliveryFee: 3000 },
});
const facts = { shopId: 's1', customerId: 'c1', total: 18000 };
const accepted: OrderEvent = { type: 'OrderAccepted', data: facts };
const delivered: OrderEvent = { type: 'OrderDelivered', data: facts };

t.test('a placed order is recorded with its lines, totals and placement', async (t) => {
  const outcome = histories(t)
    .given(commitAt('2024-05-01T10:00:00.000Z', order, 'o1', placed('s1', 'c1')))
    .then('o1', {
      orderId: 'o1', shopId: 's1', customerId: 'c1', status: 'placed', lines, total: 18000, deliveryFee: 3000,
      placedAt: '2024-05-01T10:00:00.000Z', updatedAt: '2024-05-01T10:00:00.000Z', placedPosition: 1, position: 1, version: 1,
    });
  t.same(outcome.indexEntries(), [
    ['customer', 'c1', -1, 'o1'],
    ['shop', 's1', '*', -1, 'o1'],
    ['shop', 's1', 'placed', -1, 'o1'],
  ]);
});

t.test('the status moves along the lifecycle, and the status index follows it', async (t) => {
  const outcome = histories(t).given(
    commitAt('2024-05-01T10:00:00.000Z', order, 'o1', placed('s1', 'c1')),
    commitAt('2024-05-01T10:05:00.000Z', order, 'o1', accepted),
    commitAt('2024-05-01T10:40:00.000Z', order, 'o1', delivered),
  );
  t.match(outcome.doc('o1'), { status: 'delivered', placedAt: '2024-05-01T10:00:00.000Z', updatedAt: '2024-05-01T10:40:00.000Z', placedPosition: 1, position: 3, version: 3 });
  t.same(outcome.byIndex(['shop', 's1', 'placed']), []);
  t.same(outcome.byIndex(['shop', 's1', 'delivered']).map((d) => d.orderId), ['o1']);
});

t.test('rejected and cancelled orders are recorded as such', async (t) => {
  const outcome = histories(t).given(
    commitAt('2024-05-01T10:00:00.000Z', order, 'o1', placed('s1', 'c1')),
    commitAt('2024-05-01T10:00:00.000Z', order, 'o2', placed('s1', 'c1')),
    commitAt('2024-05-01T10:01:00.000Z', order, 'o1', { type: 'OrderRejected', data: { ...facts, reason: 'busy' } }),
    commitAt('2024-05-01T10:02:00.000Z', order, 'o2', accepted),
    commitAt('2024-05-01T10:03:00.000Z', order, 'o2', { type: 'OrderCancelled', data: { ...facts, reason: 'late' } }),
  );
  t.equal(outcome.doc('o1')?.status, 'rejected');
  t.equal(outcome.doc('o2')?.status, 'cancelled');
});

t.test('histories list newest first, per customer and per shop', async (t) => {
  const outcome = histories(t).given(
    commitAt('2024-05-01T10:00:00.000Z', order, 'o1', placed('s1', 'c1')),
    commitAt('2024-05-01T11:00:00.000Z', order, 'o2', placed('s2', 'c1')),
    commitAt('2024-05-01T12:00:00.000Z', order, 'o3', placed('s1', 'c2')),
    commitAt('2024-05-01T13:00:00.000Z', order, 'o1', accepted),
  );
  const orderIds = (prefix: (string | number)[]) => outcome.byIndex(prefix).map((d) => d.orderId);
  t.same(orderIds(['customer', 'c1']), ['o2', 'o1'], 'a later status change does not reorder');
  t.same(orderIds(['customer', 'c2']), ['o3']);
  t.same(orderIds(['shop', 's1', '*']), ['o3', 'o1']);
  t.same(orderIds(['shop', 's1', 'placed']), ['o3']);
  t.same(orderIds(['shop', 's1', 'accepted']), ['o1']);
});

t.test('status events for an order never placed create nothing; a second placement changes nothing', async (t) => {
  const unplaced = histories(t).given(commitAt('2024-05-01T10:00:00.000Z', order, 'o1', accepted)).then('o1', undefined);
  // Every history document has index entries, so none at all means no document at all.
  t.same(unplaced.indexEntries(), []);
  const outcome = histories(t).given(
    commitAt('2024-05-01T10:00:00.000Z', order, 'o1', placed('s1', 'c1')),
    commitAt('2024-05-01T11:00:00.000Z', order, 'o1', placed('s9', 'c9')),
  );
  t.match(outcome.doc('o1'), { shopId: 's1', customerId: 'c1', position: 1 });
});
