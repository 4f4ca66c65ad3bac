import t, { type Test } from 'tap';
import { shop } from '../../actors/shop/shop.decider.js';
import { review } from '../../actors/review/review.decider.js';
import { order } from '../../actors/order/order.decider.js';
import type { OrderPlaced } from '../../actors/order/order.events.js';
import type { ReviewDeleted, ReviewPosted } from '../../actors/review/review.events.js';
import type { ShopOpened, ShopRegistered } from '../../actors/shop/shop.events.js';
import { shopPlatform } from '../../app.js';
import { ANY, shopList } from '../../projections/shopList/shopList.projection.js';
import { commit, projectionSpec } from '../../src/testing.js';
import { tapAssert } from '../helpers/spec.js';

const listing = (t: Test) => projectionSpec(shopList, { assert: tapAssert(t) });

const registered = (name: string, category: string): ShopRegistered => ({
  type: 'ShopRegistered',
  data: { name, category, ownerId: 'o1', minOrderAmount: 0, deliveryFee: 0 },
});
const opened: ShopOpened = { type: 'ShopOpened', data: {} };
const placed = (shopId: string): OrderPlaced => ({
  type: 'OrderPlaced',
  data: { shopId, customerId: 'c1', lines: [{ menuId: 'm1', name: 'X', price: 1000, quantity: 1 }], total: 1000, deliveryFee: 0 },
});
const posted = (shopId: string, rating: number): ReviewPosted => ({
  type: 'ReviewPosted',
  data: { orderId: 'o', shopId, customerId: 'c1', rating, text: '' },
});
const deleted = (shopId: string, rating: number): ReviewDeleted => ({ type: 'ReviewDeleted', data: { orderId: 'o', shopId, rating } });

/** Three shops: s1 korean open, s2 korean closed, s3 pizza open; positions 1–3 in registration order. */
const threeShops = [
  commit(shop, 's1', registered('Kimbap Heaven', 'korean')),
  commit(shop, 's2', registered('Bibim House', 'korean')),
  commit(shop, 's3', registered('Pizza Planet', 'pizza')),
  commit(shop, 's1', opened),
  commit(shop, 's3', opened),
];
const ids = (docs: readonly { id: string }[]) => docs.map((d) => d.id);

t.test('the document carries the listing fields', async (t) => {
  listing(t)
    .given(
      ...threeShops,
      commit(shop, 's1', { type: 'ShopRenamed', data: { name: 'Kimbap Paradise' } }),
      commit(order, 'o1', placed('s1')),
      commit(review, 'r1', posted('s1', 4)),
      commit(review, 'r2', posted('s1', 5)),
    )
    .then('s1', {
      id: 's1', name: 'Kimbap Paradise', category: 'korean', open: true,
      ratingSum: 9, reviewCount: 2, ratingAverage: 4.5, orderCount: 1, registeredPosition: 1,
    });
});

t.test('each shop has 12 index entries: 3 sorts × (its category or any) × (its open state or any)', async (t) => {
  const outcome = listing(t).given(
    commit(shop, 's1', registered('Kimbap Heaven', 'korean')),
    commit(shop, 's1', opened),
    commit(order, 'o1', placed('s1')),
    commit(review, 'r1', posted('s1', 4)),
  );
  t.same(outcome.indexEntries(), [
    ['newest', ANY, ANY, -1, 's1'],
    ['newest', ANY, 'true', -1, 's1'],
    ['newest', 'korean', ANY, -1, 's1'],
    ['newest', 'korean', 'true', -1, 's1'],
    ['orders', ANY, ANY, -1, 's1'],
    ['orders', ANY, 'true', -1, 's1'],
    ['orders', 'korean', ANY, -1, 's1'],
    ['orders', 'korean', 'true', -1, 's1'],
    ['rating', ANY, ANY, -4, -1, 's1'],
    ['rating', ANY, 'true', -4, -1, 's1'],
    ['rating', 'korean', ANY, -4, -1, 's1'],
    ['rating', 'korean', 'true', -4, -1, 's1'],
  ]);
});

t.test('zero figures index as 0, never -0', async (t) => {
  const entries = listing(t).given(commit(shop, 's1', registered('A', 'korean'))).indexEntries();
  const zeros = entries.flat().filter((v) => typeof v === 'number' && v === 0);
  t.ok(zeros.length > 0);
  t.ok(zeros.every((v) => Object.is(v, 0)));
});

t.test('newest lists the latest registration first, filtered by category and open', async (t) => {
  const outcome = listing(t).given(...threeShops);
  t.same(ids(outcome.byIndex(['newest', ANY, ANY])), ['s3', 's2', 's1']);
  t.same(ids(outcome.byIndex(['newest', 'korean', ANY])), ['s2', 's1']);
  t.same(ids(outcome.byIndex(['newest', ANY, 'true'])), ['s3', 's1']);
  t.same(ids(outcome.byIndex(['newest', 'korean', 'false'])), ['s2']);
  t.same(ids(outcome.byIndex(['newest', 'pizza', 'false'])), []);
});

t.test('closing a shop moves it between the open filters', async (t) => {
  const outcome = listing(t).given(...threeShops, commit(shop, 's1', { type: 'ShopClosed', data: {} }));
  t.same(ids(outcome.byIndex(['newest', 'korean', 'true'])), []);
  t.same(ids(outcome.byIndex(['newest', 'korean', 'false'])), ['s2', 's1']);
});

t.test('rating sorts by average, then by review count; a delete re-sorts', async (t) => {
  const history = [
    ...threeShops,
    commit(review, 'r1', posted('s1', 4)),
    commit(review, 'r2', posted('s2', 5)),
    commit(review, 'r3', posted('s3', 4)),
    commit(review, 'r4', posted('s3', 4)),
  ];
  t.same(ids(listing(t).given(...history).byIndex(['rating', ANY, ANY])), ['s2', 's3', 's1'], '5.0, then 4.0 × 2, then 4.0 × 1');
  const outcome = listing(t).given(...history, commit(review, 'r2', deleted('s2', 5)));
  t.same(ids(outcome.byIndex(['rating', ANY, ANY])), ['s3', 's1', 's2'], 'a shop whose only review is deleted drops to 0');
  t.match(outcome.doc('s2'), { ratingAverage: 0, reviewCount: 0, ratingSum: 0 });
});

t.test('orders sorts by order count', async (t) => {
  const outcome = listing(t).given(
    ...threeShops,
    commit(order, 'o1', placed('s3')),
    commit(order, 'o2', placed('s2')),
    commit(order, 'o3', placed('s2')),
  );
  t.same(ids(outcome.byIndex(['orders', ANY, ANY])), ['s2', 's3', 's1']);
});

t.test('events for a shop never registered create no document', async (t) => {
  const outcome = listing(t)
    .given(commit(order, 'o1', placed('ghost')), commit(review, 'r1', posted('ghost', 5)))
    .then('ghost', undefined);
  // Every listing document has index entries, so none at all means no document at all.
  t.same(outcome.indexEntries(), []);
});

t.test('menu and delivery events do not reach the listing', async (t) => {
  const handled: readonly string[] = shopList.handles;
  for (const type of ['MenuItemAdded', 'MenuPriceChanged', 'DeliveryInfoChanged', 'OrderAccepted']) t.notOk(handled.includes(type), type);
});
