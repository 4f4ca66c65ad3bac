import t from 'tap';
import type { StoredEvent } from '../../src/core/aggregate.js';
import { menuItem, shop, type ShopState } from '../../actors/shop/shop.decider.js';
import { upcastShopEvent } from '../../actors/shop/shop.upcast.js';

const at = '2024-05-01T10:00:00.000Z';
const registered: StoredEvent = {
  type: 'ShopRegistered',
  data: { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1', minOrderAmount: 0, deliveryFee: 0 },
  at,
};
const added: StoredEvent = { type: 'MenuItemAdded', data: { menuId: 'm1', name: 'Bibimbap', price: 9000 }, at };
const legacy: StoredEvent = { type: 'MenuItemPriceChanged', data: { menuId: 'm1', amount: 11000 }, at: '2024-05-02T09:00:00.000Z' };

function rehydrate(history: readonly StoredEvent[]): ShopState {
  return history.map(upcastShopEvent).reduce(shop.evolve, shop.initialState());
}

t.test('a legacy MenuItemPriceChanged becomes MenuPriceChanged with price = amount, keeping its time', async (t) => {
  t.same(upcastShopEvent(legacy), { type: 'MenuPriceChanged', data: { menuId: 'm1', price: 11000 }, at: '2024-05-02T09:00:00.000Z' });
});

t.test('folding a history with a legacy price change gives the legacy price', async (t) => {
  const state = rehydrate([registered, added, legacy]);
  t.equal(state.status, 'registered');
  if (state.status === 'registered') t.same(menuItem(state, 'm1'), { name: 'Bibimbap', price: 11000, soldOut: false });
});

t.test('a later current-shape price change still wins over an earlier legacy one', async (t) => {
  const state = rehydrate([registered, added, legacy, { type: 'MenuPriceChanged', data: { menuId: 'm1', price: 12000 }, at }]);
  if (state.status === 'registered') t.equal(menuItem(state, 'm1')?.price, 12000);
  else t.fail('the shop is registered');
});

t.test('other events pass through unchanged, as the same object', async (t) => {
  for (const event of [registered, added, { type: 'MenuPriceChanged', data: { menuId: 'm1', price: 9500 }, at }]) {
    t.equal(upcastShopEvent(event), event, `${event.type} is returned as it is`);
  }
});

t.test('a legacy type without the legacy data shape is left alone, and evolve ignores it', async (t) => {
  const odd: StoredEvent = { type: 'MenuItemPriceChanged', data: { menuId: 'm1' }, at };
  t.equal(upcastShopEvent(odd), odd);
  t.same(rehydrate([registered, added, odd]), rehydrate([registered, added]));
});

t.test('the shop definition upcasts with upcastShopEvent', async (t) => {
  t.equal(shop.upcast, upcastShopEvent);
});
