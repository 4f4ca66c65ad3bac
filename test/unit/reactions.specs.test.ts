import t from 'tap';
import { commit, processSpec, reactorSpec } from '../../src/testing.js';
import { order } from '../../actors/order/order.decider.js';
import type { OrderPlaced } from '../../actors/order/order.events.js';
import { review } from '../../actors/review/review.decider.js';
import { shop } from '../../actors/shop/shop.decider.js';
import { closedShopOrders } from '../../reactions/closedShopOrders.process.js';
import { orderAcceptance } from '../../reactions/orderAcceptance.process.js';
import { reviewedOrders } from '../../reactions/reviewedOrders.reactor.js';
import { tapAssert } from '../helpers/spec.js';

// The reference app's reactions in the given/when/then form of converge/testing, on the
// runtime's own decision and recording path.

const settings = { orders: { acceptTimeoutMs: 600_000 } };
const placed = (shopId = 's1'): OrderPlaced => ({
  type: 'OrderPlaced',
  data: { shopId, customerId: 'c1', lines: [{ menuId: 'm1', name: 'Kimbap', price: 4500, quantity: 2 }], total: 9000, deliveryFee: 0 },
});
const facts = { shopId: 's1', customerId: 'c1', total: 9000 };

t.test('orderAcceptance: a placed order schedules the accept timer at placement + acceptTimeoutMs', async (t) => {
  processSpec(orderAcceptance, { settings, assert: tapAssert(t) })
    .given()
    .when(commit(order, 'o1', placed()))
    .then({ schedules: [{ name: 'accept', at: '2026-01-01T00:10:00.000Z' }], commands: [], ended: false });
});

t.test('orderAcceptance: the timer firing rejects the order with not_accepted_in_time and ends the instance', async (t) => {
  processSpec(orderAcceptance, { settings, assert: tapAssert(t) })
    .given(commit(order, 'o1', placed()))
    .whenTimer('accept')
    .then({ commands: [{ aggregate: 'order', id: 'o1', type: 'RejectOrder', data: { reason: 'not_accepted_in_time' } }], ended: true });
});

t.test('orderAcceptance: accepted, rejected or cancelled first, the instance ends and cancels its timer', async (t) => {
  for (const event of [
    { type: 'OrderAccepted', data: facts },
    { type: 'OrderRejected', data: { ...facts, reason: 'busy' } },
    { type: 'OrderCancelled', data: { ...facts, reason: 'changed my mind' } },
  ] as const) {
    processSpec(orderAcceptance, { settings, assert: tapAssert(t) })
      .given(commit(order, 'o1', placed()))
      .when(commit(order, 'o1', event))
      .then({ cancels: ['accept'], commands: [], ended: true });
  }
});

t.test('orderAcceptance: an order event with no placement before it starts nothing', async (t) => {
  processSpec(orderAcceptance, { settings, assert: tapAssert(t) }).given().when(commit(order, 'o1', { type: 'OrderAccepted', data: facts })).ignored();
});

t.test('closedShopOrders: the shop closing rejects the orders still waiting, not the settled ones', async (t) => {
  processSpec(closedShopOrders, { assert: tapAssert(t) })
    .given(commit(order, 'o1', placed()), commit(order, 'o2', placed()), commit(order, 'o2', { type: 'OrderAccepted', data: facts }))
    .when(commit(shop, 's1', { type: 'ShopClosed', data: {} }))
    .then({ commands: [{ aggregate: 'order', id: 'o1', type: 'RejectOrder', data: { reason: 'shop_closed' } }] });
});

t.test('closedShopOrders: a shop with no orders has no instance, so its closing is ignored', async (t) => {
  processSpec(closedShopOrders, { assert: tapAssert(t) }).given().when(commit(shop, 's9', { type: 'ShopClosed', data: {} })).ignored();
});

t.test('reviewedOrders: a posted review is recorded on its order, a deleted one cleared', async (t) => {
  const posted = { type: 'ReviewPosted', data: { orderId: 'o1', shopId: 's1', customerId: 'c1', rating: 5, text: 'great' } } as const;
  await reactorSpec(reviewedOrders, { assert: tapAssert(t) })
    .when(commit(review, 'r1', posted))
    .then([{ aggregate: 'order', id: 'o1', type: 'RecordOrderReview', data: { reviewId: 'r1', rating: 5 } }]);
  await reactorSpec(reviewedOrders, { assert: tapAssert(t) })
    .when(commit(review, 'r1', { type: 'ReviewDeleted', data: { orderId: 'o1', shopId: 's1', rating: 5 } }))
    .then([{ aggregate: 'order', id: 'o1', type: 'ClearOrderReview', data: { reviewId: 'r1' } }]);
});
