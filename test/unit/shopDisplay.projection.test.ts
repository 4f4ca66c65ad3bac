import t from 'tap';
import type { OrderEvent } from '../../actors/order/order.events.js';
import type { ReviewEvent } from '../../actors/review/review.events.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { shopDisplay } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { foldAll, stream } from './projectionSpec.js';

const at = '2024-05-01T10:00:00.000Z';
const registered: ShopEvent = {
  type: 'ShopRegistered',
  data: { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1', minOrderAmount: 12000, deliveryFee: 3000 },
};
const add = (menuId: string, name: string, price: number): ShopEvent => ({ type: 'MenuItemAdded', data: { menuId, name, price } });
const placed = (shopId: string): OrderEvent => ({
  type: 'OrderPlaced',
  data: { shopId, customerId: 'c1', lines: [{ menuId: 'm1', name: 'Bibimbap', price: 9000, quantity: 2 }], total: 18000, deliveryFee: 3000 },
});
const posted = (orderId: string, rating: number): ReviewEvent => ({
  type: 'ReviewPosted',
  data: { orderId, shopId: 's1', customerId: 'c1', rating, text: '' },
});
const deleted = (orderId: string, rating: number): ReviewEvent => ({ type: 'ReviewDeleted', data: { orderId, shopId: 's1', rating } });

t.test('a registered shop starts closed, with an empty menu and no figures', async (t) => {
  const view = foldAll(shopDisplay, stream().commit('shop', 's1', at, registered).events);
  t.same(view.get('s1'), {
    id: 's1', name: 'Kimbap Heaven', category: 'korean', open: false, minOrderAmount: 12000, deliveryFee: 3000,
    menu: [], ratingSum: 0, reviewCount: 0, ratingAverage: 0, orderCount: 0, version: 1, position: 1, updatedAt: at,
  });
});

t.test('the menu keeps insertion order, prices change, sold-out flags follow, removal deletes', async (t) => {
  const s = stream()
    .commit('shop', 's1', at, registered)
    .commit('shop', 's1', at, add('m1', 'Bibimbap', 9000), add('m2', 'Kimbap', 3500))
    .commit('shop', 's1', at, add('m3', 'Ramyeon', 4000))
    .commit('shop', 's1', at, { type: 'MenuPriceChanged', data: { menuId: 'm1', price: 9500 } })
    .commit('shop', 's1', at, { type: 'MenuItemSoldOut', data: { menuId: 'm3' } })
    .commit('shop', 's1', at, { type: 'MenuItemSoldOut', data: { menuId: 'm2' } })
    .commit('shop', 's1', at, { type: 'MenuItemRestocked', data: { menuId: 'm2' } })
    .commit('shop', 's1', at, { type: 'MenuItemRemoved', data: { menuId: 'm1' } })
    .commit('shop', 's1', at, add('m1', 'Bibimbap', 10000));
  const doc = foldAll(shopDisplay, s.events).get('s1');
  t.same(doc?.menu, [
    { menuId: 'm2', name: 'Kimbap', price: 3500, soldOut: false },
    { menuId: 'm3', name: 'Ramyeon', price: 4000, soldOut: true },
    { menuId: 'm1', name: 'Bibimbap', price: 10000, soldOut: false },
  ]);
  t.equal(doc?.version, 10, 'version is the shop event count');
  t.equal(doc?.position, 9, 'position is the last commit');
});

t.test('name, opening and delivery terms follow their events', async (t) => {
  const s = stream()
    .commit('shop', 's1', at, registered)
    .commit('shop', 's1', at, { type: 'ShopRenamed', data: { name: 'Kimbap Paradise' } })
    .commit('shop', 's1', at, { type: 'ShopOpened', data: {} })
    .commit('shop', 's1', at, { type: 'DeliveryInfoChanged', data: { minOrderAmount: 15000, deliveryFee: 2000 } });
  t.match(foldAll(shopDisplay, s.events).get('s1'), { name: 'Kimbap Paradise', open: true, minOrderAmount: 15000, deliveryFee: 2000 });
  s.commit('shop', 's1', at, { type: 'ShopClosed', data: {} });
  t.match(foldAll(shopDisplay, s.events).get('s1'), { open: false });
});

t.test('orders and reviews move the figures and the position, never the shop version', async (t) => {
  const s = stream()
    .commit('shop', 's1', at, registered)
    .commit('order', 'o1', at, placed('s1'))
    .commit('order', 'o2', at, placed('s1'))
    .commit('review', 'r1', at, posted('o1', 5))
    .commit('review', 'r2', at, posted('o2', 4))
    .commit('review', 'r3', at, posted('o3', 4));
  t.match(foldAll(shopDisplay, s.events).get('s1'), { orderCount: 2, ratingSum: 13, reviewCount: 3, ratingAverage: 4.33, version: 1, position: 6 });

  s.commit('review', 'r1', at, deleted('o1', 5));
  t.match(foldAll(shopDisplay, s.events).get('s1'), { ratingSum: 8, reviewCount: 2, ratingAverage: 4, version: 1, position: 7 }, 'the average after a delete');

  s.commit('review', 'r2', at, deleted('o2', 4)).commit('review', 'r3', at, deleted('o3', 4));
  t.match(foldAll(shopDisplay, s.events).get('s1'), { ratingSum: 0, reviewCount: 0, ratingAverage: 0 }, 'no reviews left: average 0');
});

t.test('the average rounds to two decimals', async (t) => {
  const s = stream().commit('shop', 's1', at, registered);
  for (const [i, rating] of [5, 5, 4].entries()) s.commit('review', `r${i}`, at, posted(`o${i}`, rating));
  t.equal(foldAll(shopDisplay, s.events).get('s1')?.ratingAverage, 4.67);
});

t.test('a stray deletion never takes the figures below zero', async (t) => {
  const s = stream().commit('shop', 's1', at, registered).commit('review', 'r1', at, deleted('o1', 5));
  t.match(foldAll(shopDisplay, s.events).get('s1'), { ratingSum: 0, reviewCount: 0, ratingAverage: 0 });
});

t.test('events for a shop never registered create no document', async (t) => {
  const s = stream()
    .commit('order', 'o1', at, placed('ghost'))
    .commit('shop', 'ghost', at, add('m1', 'Bibimbap', 9000));
  t.equal(foldAll(shopDisplay, s.events).docs.size, 0);
});

t.test('a second registration changes nothing', async (t) => {
  const s = stream().commit('shop', 's1', at, registered).commit('shop', 's1', at, { ...registered, data: { ...registered.data, name: 'Other' } });
  t.match(foldAll(shopDisplay, s.events).get('s1'), { name: 'Kimbap Heaven', version: 1, position: 1 });
});

t.test('updatedAt is the time of the last event applied, from the shop, its orders or its reviews', async (t) => {
  const s = stream()
    .commit('shop', 's1', '2024-05-01T10:00:00.000Z', registered)
    .commit('shop', 's1', '2024-05-01T11:00:00.000Z', { type: 'ShopOpened', data: {} });
  t.equal(foldAll(shopDisplay, s.events).get('s1')?.updatedAt, '2024-05-01T11:00:00.000Z', 'a shop event moves it');
  s.commit('order', 'o1', '2024-05-02T09:00:00.000Z', placed('s1'));
  t.equal(foldAll(shopDisplay, s.events).get('s1')?.updatedAt, '2024-05-02T09:00:00.000Z', 'an order moves it');
  s.commit('review', 'r1', '2024-05-03T09:00:00.000Z', posted('o1', 5));
  t.match(foldAll(shopDisplay, s.events).get('s1'), { updatedAt: '2024-05-03T09:00:00.000Z', position: 4, version: 2 }, 'a review moves it, with the position');
  s.commit('shop', 's1', '2024-05-04T09:00:00.000Z', { ...registered, data: { ...registered.data, name: 'Other' } });
  t.equal(foldAll(shopDisplay, s.events).get('s1')?.updatedAt, '2024-05-03T09:00:00.000Z', 'an ignored second registration does not');
});

t.test('each shop has one position and one time index entry, both of its latest change', async (t) => {
  const s = stream()
    .commit('shop', 's1', '2024-05-01T10:00:00.000Z', registered)
    .commit('shop', 's2', '2024-05-01T10:00:01.000Z', registered)
    .commit('shop', 's1', '2024-05-01T10:00:02.000Z', { type: 'ShopRenamed', data: { name: 'Kimbap Paradise' } })
    .commit('order', 'o1', '2024-05-01T10:00:03.000Z', placed('s2'));
  t.same(foldAll(shopDisplay, s.events).entries(), [
    ['at', '2024-05-01T10:00:02.000Z', 's1'],
    ['at', '2024-05-01T10:00:03.000Z', 's2'],
    ['position', 3, 's1'],
    ['position', 4, 's2'],
  ]);
  const view = foldAll(shopDisplay, s.events);
  t.same(view.byIndex(['position']).map((d) => d.id), ['s1', 's2'], 'in order of last change');
  t.same(view.byIndex(['at']).map((d) => d.id), ['s1', 's2']);
});

t.test('keys: shop events by the aggregate id, orders and reviews by their shop id', async (t) => {
  const meta = (aggregate: string, id: string) => ({ aggregate, id, version: 1, position: 1, at });
  t.equal(shopDisplay.key({ ...registered, at }, meta('shop', 's1')), 's1');
  t.equal(shopDisplay.key({ ...placed('s2'), at }, meta('order', 'o1')), 's2');
  t.equal(shopDisplay.key({ ...posted('o1', 3), at }, meta('review', 'r1')), 's1');
  t.notOk(shopDisplay.handles.includes('OrderAccepted'), 'order status changes do not reach the display');
});
