import t from 'tap';
import { apiSpec, commit } from '@converge-es/converge/testing';
import { shopPlatform } from '../../app.js';
import { order } from '../../actors/order/order.decider.js';
import type { OrderPlaced } from '../../actors/order/order.events.js';
import { shop } from '../../actors/shop/shop.decider.js';
import { tapAssert } from '../helpers/spec.js';

// The reference app on the in-process runtime, through the public API only: the same app
// `npm start` runs as a cluster, here on the in-memory store with Fastify's inject.

const registered = { type: 'ShopRegistered', data: { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1', minOrderAmount: 5000, deliveryFee: 2000 } } as const;
const menu = [
  { type: 'ShopOpened', data: {} },
  { type: 'MenuItemAdded', data: { menuId: 'm1', name: 'Tuna kimbap', price: 4500 } },
] as const;

t.test('an order is placed against the shop state the actors hold, priced from its menu', async (t) => {
  const outcome = await apiSpec(shopPlatform, { assert: tapAssert(t) })
    .given(commit(shop, 's1', registered, ...menu))
    .when({ method: 'POST', url: '/orders/o1/place', body: { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] } })
    .then({
      status: 200,
      events: [commit(order, 'o1', { type: 'OrderPlaced', data: { shopId: 's1', customerId: 'c1', lines: [{ menuId: 'm1', name: 'Tuna kimbap', price: 4500, quantity: 2 }], total: 9000, deliveryFee: 2000 } })],
    });
  t.match(outcome.body, { id: 'o1', version: 1, events: ['OrderPlaced'] });
});

t.test("a closed shop's order is rejected with shop_closed and nothing is appended", async (t) => {
  await apiSpec(shopPlatform, { assert: tapAssert(t) })
    .given(commit(shop, 's1', registered, ...menu, { type: 'ShopClosed', data: {} }))
    .when({ method: 'POST', url: '/orders/o1/place', body: { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 2 }] } })
    .then({ status: 422, events: [] });
});

t.test('the shop display is read back from its view, with the menu and the order count', async (t) => {
  const placed: OrderPlaced = { type: 'OrderPlaced', data: { shopId: 's1', customerId: 'c1', lines: [{ menuId: 'm1', name: 'Tuna kimbap', price: 4500, quantity: 2 }], total: 9000, deliveryFee: 2000 } };
  const outcome = await apiSpec(shopPlatform, { assert: tapAssert(t) })
    .given(commit(shop, 's1', registered, ...menu), commit(order, 'o1', placed))
    .when({ method: 'GET', url: '/shops/s1' })
    .then({ status: 200 });
  t.match(outcome.body, { id: 's1', name: 'Kimbap Heaven', open: true, orderCount: 1, menu: [{ menuId: 'm1', price: 4500, soldOut: false }], version: 3, position: 2 });
  t.equal(outcome.headers['etag'], '"2"', 'its ETag is the position of its last change');
});
