import t from 'tap';
import type { OrderEvent } from '../../actors/order/order.events.js';
import type { ReviewEvent } from '../../actors/review/review.events.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { ANY, shopList } from '../../projections/shopList/shopList.projection.js';
import { foldAll, stream } from './projectionSpec.js';

const at = '2024-05-01T10:00:00.000Z';
const registered = (name: string, category: string): ShopEvent => ({
  type: 'ShopRegistered',
  data: { name, category, ownerId: 'o1', minOrderAmount: 0, deliveryFee: 0 },
});
const opened: ShopEvent = { type: 'ShopOpened', data: {} };
const placed = (shopId: string): OrderEvent => ({
  type: 'OrderPlaced',
  data: { shopId, customerId: 'c1', lines: [{ menuId: 'm1', name: 'X', price: 1000, quantity: 1 }], total: 1000, deliveryFee: 0 },
});
const posted = (shopId: string, rating: number): ReviewEvent => ({
  type: 'ReviewPosted',
  data: { orderId: 'o', shopId, customerId: 'c1', rating, text: '' },
});
const deleted = (shopId: string, rating: number): ReviewEvent => ({ type: 'ReviewDeleted', data: { orderId: 'o', shopId, rating } });

/** Three shops: s1 korean open, s2 korean closed, s3 pizza open; positions 1–3 in registration order. */
function threeShops() {
  return stream()
    .commit('shop', 's1', at, registered('Kimbap Heaven', 'korean'))
    .commit('shop', 's2', at, registered('Bibim House', 'korean'))
    .commit('shop', 's3', at, registered('Pizza Planet', 'pizza'))
    .commit('shop', 's1', at, opened)
    .commit('shop', 's3', at, opened);
}
const ids = (docs: readonly { id: string }[]) => docs.map((d) => d.id);

t.test('the document carries the listing fields', async (t) => {
  const s = threeShops()
    .commit('shop', 's1', at, { type: 'ShopRenamed', data: { name: 'Kimbap Paradise' } })
    .commit('order', 'o1', at, placed('s1'))
    .commit('review', 'r1', at, posted('s1', 4))
    .commit('review', 'r2', at, posted('s1', 5));
  t.same(foldAll(shopList, s.events).get('s1'), {
    id: 's1', name: 'Kimbap Paradise', category: 'korean', open: true,
    ratingSum: 9, reviewCount: 2, ratingAverage: 4.5, orderCount: 1, registeredPosition: 1,
  });
});

t.test('each shop has 12 index entries: 3 sorts × (its category or any) × (its open state or any)', async (t) => {
  const s = stream()
    .commit('shop', 's1', at, registered('Kimbap Heaven', 'korean'))
    .commit('shop', 's1', at, opened)
    .commit('order', 'o1', at, placed('s1'))
    .commit('review', 'r1', at, posted('s1', 4));
  t.same(foldAll(shopList, s.events).entries(), [
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
  const entries = foldAll(shopList, stream().commit('shop', 's1', at, registered('A', 'korean')).events).entries();
  const zeros = entries.flat().filter((v) => typeof v === 'number' && v === 0);
  t.ok(zeros.length > 0);
  t.ok(zeros.every((v) => Object.is(v, 0)));
});

t.test('newest lists the latest registration first, filtered by category and open', async (t) => {
  const view = foldAll(shopList, threeShops().events);
  t.same(ids(view.byIndex(['newest', ANY, ANY])), ['s3', 's2', 's1']);
  t.same(ids(view.byIndex(['newest', 'korean', ANY])), ['s2', 's1']);
  t.same(ids(view.byIndex(['newest', ANY, 'true'])), ['s3', 's1']);
  t.same(ids(view.byIndex(['newest', 'korean', 'false'])), ['s2']);
  t.same(ids(view.byIndex(['newest', 'pizza', 'false'])), []);
});

t.test('closing a shop moves it between the open filters', async (t) => {
  const view = foldAll(shopList, threeShops().commit('shop', 's1', at, { type: 'ShopClosed', data: {} }).events);
  t.same(ids(view.byIndex(['newest', 'korean', 'true'])), []);
  t.same(ids(view.byIndex(['newest', 'korean', 'false'])), ['s2', 's1']);
});

t.test('rating sorts by average, then by review count; a delete re-sorts', async (t) => {
  const s = threeShops()
    .commit('review', 'r1', at, posted('s1', 4))
    .commit('review', 'r2', at, posted('s2', 5))
    .commit('review', 'r3', at, posted('s3', 4))
    .commit('review', 'r4', at, posted('s3', 4));
  t.same(ids(foldAll(shopList, s.events).byIndex(['rating', ANY, ANY])), ['s2', 's3', 's1'], '5.0, then 4.0 × 2, then 4.0 × 1');
  s.commit('review', 'r2', at, deleted('s2', 5));
  const view = foldAll(shopList, s.events);
  t.same(ids(view.byIndex(['rating', ANY, ANY])), ['s3', 's1', 's2'], 'a shop whose only review is deleted drops to 0');
  t.match(view.get('s2'), { ratingAverage: 0, reviewCount: 0, ratingSum: 0 });
});

t.test('orders sorts by order count', async (t) => {
  const s = threeShops()
    .commit('order', 'o1', at, placed('s3'))
    .commit('order', 'o2', at, placed('s2'))
    .commit('order', 'o3', at, placed('s2'));
  t.same(ids(foldAll(shopList, s.events).byIndex(['orders', ANY, ANY])), ['s2', 's3', 's1']);
});

t.test('events for a shop never registered create no document', async (t) => {
  const s = stream().commit('order', 'o1', at, placed('ghost')).commit('review', 'r1', at, posted('ghost', 5));
  t.equal(foldAll(shopList, s.events).docs.size, 0);
});

t.test('menu and delivery events do not reach the listing', async (t) => {
  for (const type of ['MenuItemAdded', 'MenuPriceChanged', 'DeliveryInfoChanged', 'OrderAccepted']) t.notOk(shopList.handles.includes(type), type);
});
