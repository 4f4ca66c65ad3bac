import t, { type Test } from 'tap';
import { shop } from '../../actors/shop/shop.decider.js';
import { review } from '../../actors/review/review.decider.js';
import { order } from '../../actors/order/order.decider.js';
import type { OrderPlaced } from '../../actors/order/order.events.js';
import type { ReviewDeleted, ReviewPosted } from '../../actors/review/review.events.js';
import type { MenuItemAdded, ShopRegistered } from '../../actors/shop/shop.events.js';
import { shopPlatform } from '../../app.js';
import { shopDisplay } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { commit, commitAt, projectionSpec, SPEC_TIME, type SpecCommit } from '../../src/testing.js';
import { tapAssert } from '../helpers/spec.js';

const display = (t: Test) => projectionSpec(shopDisplay, { assert: tapAssert(t) });

const registered: ShopRegistered = {
  type: 'ShopRegistered',
  data: { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1', minOrderAmount: 12000, deliveryFee: 3000 },
};
const add = (menuId: string, name: string, price: number): MenuItemAdded => ({ type: 'MenuItemAdded', data: { menuId, name, price } });
const placed = (shopId: string): OrderPlaced => ({
  type: 'OrderPlaced',
  data: { shopId, customerId: 'c1', lines: [{ menuId: 'm1', name: 'Bibimbap', price: 9000, quantity: 2 }], total: 18000, deliveryFee: 3000 },
});
const posted = (orderId: string, rating: number): ReviewPosted => ({
  type: 'ReviewPosted',
  data: { orderId, shopId: 's1', customerId: 'c1', rating, text: '' },
});
const deleted = (orderId: string, rating: number): ReviewDeleted => ({ type: 'ReviewDeleted', data: { orderId, shopId: 's1', rating } });

t.test('a registered shop starts closed, with an empty menu and no figures', async (t) => {
  display(t)
    .given(commit(shop, 's1', registered))
    .then('s1', {
      id: 's1', name: 'Kimbap Heaven', category: 'korean', open: false, minOrderAmount: 12000, deliveryFee: 3000,
      menu: [], ratingSum: 0, reviewCount: 0, ratingAverage: 0, orderCount: 0, version: 1, position: 1, updatedAt: SPEC_TIME,
    });
});

t.test('the menu keeps insertion order, prices change, sold-out flags follow, removal deletes', async (t) => {
  const doc = display(t)
    .given(
      commit(shop, 's1', registered),
      commit(shop, 's1', add('m1', 'Bibimbap', 9000), add('m2', 'Kimbap', 3500)),
      commit(shop, 's1', add('m3', 'Ramyeon', 4000)),
      commit(shop, 's1', { type: 'MenuPriceChanged', data: { menuId: 'm1', price: 9500 } }),
      commit(shop, 's1', { type: 'MenuItemSoldOut', data: { menuId: 'm3' } }),
      commit(shop, 's1', { type: 'MenuItemSoldOut', data: { menuId: 'm2' } }),
      commit(shop, 's1', { type: 'MenuItemRestocked', data: { menuId: 'm2' } }),
      commit(shop, 's1', { type: 'MenuItemRemoved', data: { menuId: 'm1' } }),
      commit(shop, 's1', add('m1', 'Bibimbap', 10000)),
    )
    .doc('s1');
  t.same(doc?.menu, [
    { menuId: 'm2', name: 'Kimbap', price: 3500, soldOut: false },
    { menuId: 'm3', name: 'Ramyeon', price: 4000, soldOut: true },
    { menuId: 'm1', name: 'Bibimbap', price: 10000, soldOut: false },
  ]);
  t.equal(doc?.version, 10, 'version is the shop event count');
  t.equal(doc?.position, 9, 'position is the last commit');
});

t.test('name, opening and delivery terms follow their events', async (t) => {
  const history = [
    commit(shop, 's1', registered),
    commit(shop, 's1', { type: 'ShopRenamed', data: { name: 'Kimbap Paradise' } }),
    commit(shop, 's1', { type: 'ShopOpened', data: {} }),
    commit(shop, 's1', { type: 'DeliveryInfoChanged', data: { minOrderAmount: 15000, deliveryFee: 2000 } }),
  ];
  t.match(display(t).given(...history).doc('s1'), { name: 'Kimbap Paradise', open: true, minOrderAmount: 15000, deliveryFee: 2000 });
  t.match(display(t).given(...history, commit(shop, 's1', { type: 'ShopClosed', data: {} })).doc('s1'), { open: false });
});

t.test('orders and reviews move the figures and the position, never the shop version', async (t) => {
  const history = [
    commit(shop, 's1', registered),
    commit(order, 'o1', placed('s1')),
    commit(order, 'o2', placed('s1')),
    commit(review, 'r1', posted('o1', 5)),
    commit(review, 'r2', posted('o2', 4)),
    commit(review, 'r3', posted('o3', 4)),
  ];
  t.match(display(t).given(...history).doc('s1'), { orderCount: 2, ratingSum: 13, reviewCount: 3, ratingAverage: 4.33, version: 1, position: 6 });

  history.push(commit(review, 'r1', deleted('o1', 5)));
  t.match(display(t).given(...history).doc('s1'), { ratingSum: 8, reviewCount: 2, ratingAverage: 4, version: 1, position: 7 }, 'the average after a delete');

  history.push(commit(review, 'r2', deleted('o2', 4)), commit(review, 'r3', deleted('o3', 4)));
  t.match(display(t).given(...history).doc('s1'), { ratingSum: 0, reviewCount: 0, ratingAverage: 0 }, 'no reviews left: average 0');
});

t.test('the average rounds to two decimals', async (t) => {
  const reviews = [5, 5, 4].map((rating, i) => commit(review, `r${i}`, posted(`o${i}`, rating)));
  t.equal(display(t).given(commit(shop, 's1', registered), ...reviews).doc('s1')?.ratingAverage, 4.67);
});

t.test('a stray deletion never takes the figures below zero', async (t) => {
  const outcome = display(t).given(commit(shop, 's1', registered), commit(review, 'r1', deleted('o1', 5)));
  t.match(outcome.doc('s1'), { ratingSum: 0, reviewCount: 0, ratingAverage: 0 });
});

t.test('events for a shop never registered create no document', async (t) => {
  const outcome = display(t)
    .given(commit(order, 'o1', placed('ghost')), commit(shop, 'ghost', add('m1', 'Bibimbap', 9000)))
    .then('ghost', undefined);
  // Every display document has index entries, so none at all means no document at all.
  t.same(outcome.indexEntries(), []);
});

t.test('a second registration changes nothing', async (t) => {
  const outcome = display(t).given(commit(shop, 's1', registered), commit(shop, 's1', { ...registered, data: { ...registered.data, name: 'Other' } }));
  t.match(outcome.doc('s1'), { name: 'Kimbap Heaven', version: 1, position: 1 });
});

t.test('updatedAt is the time of the last event applied, from the shop, its orders or its reviews', async (t) => {
  const history: SpecCommit[] = [
    commitAt('2024-05-01T10:00:00.000Z', shop, 's1', registered),
    commitAt('2024-05-01T11:00:00.000Z', shop, 's1', { type: 'ShopOpened', data: {} }),
  ];
  t.equal(display(t).given(...history).doc('s1')?.updatedAt, '2024-05-01T11:00:00.000Z', 'a shop event moves it');
  history.push(commitAt('2024-05-02T09:00:00.000Z', order, 'o1', placed('s1')));
  t.equal(display(t).given(...history).doc('s1')?.updatedAt, '2024-05-02T09:00:00.000Z', 'an order moves it');
  history.push(commitAt('2024-05-03T09:00:00.000Z', review, 'r1', posted('o1', 5)));
  t.match(display(t).given(...history).doc('s1'), { updatedAt: '2024-05-03T09:00:00.000Z', position: 4, version: 2 }, 'a review moves it, with the position');
  history.push(commitAt('2024-05-04T09:00:00.000Z', shop, 's1', { ...registered, data: { ...registered.data, name: 'Other' } }));
  t.equal(display(t).given(...history).doc('s1')?.updatedAt, '2024-05-03T09:00:00.000Z', 'an ignored second registration does not');
});

t.test('each shop has one position and one time index entry, both of its latest change', async (t) => {
  const outcome = display(t).given(
    commitAt('2024-05-01T10:00:00.000Z', shop, 's1', registered),
    commitAt('2024-05-01T10:00:01.000Z', shop, 's2', registered),
    commitAt('2024-05-01T10:00:02.000Z', shop, 's1', { type: 'ShopRenamed', data: { name: 'Kimbap Paradise' } }),
    commitAt('2024-05-01T10:00:03.000Z', order, 'o1', placed('s2')),
  );
  t.same(outcome.indexEntries(), [
    ['at', '2024-05-01T10:00:02.000Z', 's1'],
    ['at', '2024-05-01T10:00:03.000Z', 's2'],
    ['position', 3, 's1'],
    ['position', 4, 's2'],
  ]);
  t.same(outcome.byIndex(['position']).map((d) => d.id), ['s1', 's2'], 'in order of last change');
  t.same(outcome.byIndex(['at']).map((d) => d.id), ['s1', 's2']);
});

t.test('keys: shop events by the aggregate id, orders and reviews by their shop id', async (t) => {
  const meta = (aggregate: string, id: string) => ({ aggregate, id, version: 1, position: 1, at: SPEC_TIME });
  t.equal(shopDisplay.key({ ...registered, at: SPEC_TIME }, meta('shop', 's1')), 's1');
  t.equal(shopDisplay.key({ ...placed('s2'), at: SPEC_TIME }, meta('order', 'o1')), 's2');
  t.equal(shopDisplay.key({ ...posted('o1', 3), at: SPEC_TIME }, meta('review', 'r1')), 's1');
  const handled: readonly string[] = shopDisplay.handles;
  t.notOk(handled.includes('OrderAccepted'), 'order status changes do not reach the display');
});
