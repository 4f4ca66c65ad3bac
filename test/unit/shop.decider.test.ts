import t from 'tap';
import { Value } from 'typebox/value';
import { shopCommands } from '../../actors/shop/shop.commands.js';
import { MAX_MENU_ITEMS, shop, type ShopState } from '../../actors/shop/shop.decider.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { deciderSpec } from '../../src/testing.js';
import { tapAssert } from '../helpers/spec.js';

const registered: ShopEvent = {
  type: 'ShopRegistered',
  data: { name: 'Kimbap Heaven', category: 'korean', ownerId: 'owner-1', minOrderAmount: 12000, deliveryFee: 3000 },
};
const bibimbap: ShopEvent = { type: 'MenuItemAdded', data: { menuId: 'm1', name: 'Bibimbap', price: 9000 } };

function fold(events: readonly ShopEvent[]): ShopState {
  return events.reduce(shop.evolve, shop.initialState());
}

function menuOf(events: readonly ShopEvent[]) {
  const state = fold(events);
  return state.status === 'registered' ? state.menu : undefined;
}

t.test('register', async (t) => {
  t.test('a new shop registers with the given delivery terms', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) })
      .given([])
      .when({ type: 'RegisterShop', data: { name: 'Kimbap Heaven', category: 'korean', ownerId: 'owner-1', minOrderAmount: 12000, deliveryFee: 3000 } })
      .then([registered]);
  });
  t.test('omitted delivery terms default to zero in the event', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) })
      .given([])
      .when({ type: 'RegisterShop', data: { name: 'Pho', category: 'vietnamese', ownerId: 'o2' } })
      .then([{ type: 'ShopRegistered', data: { name: 'Pho', category: 'vietnamese', ownerId: 'o2', minOrderAmount: 0, deliveryFee: 0 } }]);
  });
  t.test('a registered shop cannot register again', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered]).when({ type: 'RegisterShop', data: { name: 'X', category: 'y', ownerId: 'z' } }).rejects('already_registered');
  });
  t.test('a registered shop starts closed with an empty menu', async (t) => {
    t.same(fold([registered]), {
      status: 'registered', name: 'Kimbap Heaven', category: 'korean', ownerId: 'owner-1',
      open: false, minOrderAmount: 12000, deliveryFee: 3000, menu: {},
    });
  });
});

t.test('shop-level commands', async (t) => {
  t.test('rename emits ShopRenamed and evolve shows the new name', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered]).when({ type: 'RenameShop', data: { name: 'Kimbap Paradise' } })
      .then([{ type: 'ShopRenamed', data: { name: 'Kimbap Paradise' } }]);
    t.match(fold([registered, { type: 'ShopRenamed', data: { name: 'Kimbap Paradise' } }]), { name: 'Kimbap Paradise' });
  });
  t.test('open emits ShopOpened, even when already open', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered]).when({ type: 'OpenShop', data: {} }).then([{ type: 'ShopOpened', data: {} }]);
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, { type: 'ShopOpened', data: {} }]).when({ type: 'OpenShop', data: {} }).then([{ type: 'ShopOpened', data: {} }]);
  });
  t.test('close emits ShopClosed', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, { type: 'ShopOpened', data: {} }]).when({ type: 'CloseShop', data: {} }).then([{ type: 'ShopClosed', data: {} }]);
  });
  t.test('evolve opens and closes the shop', async (t) => {
    t.match(fold([registered, { type: 'ShopOpened', data: {} }]), { open: true });
    t.match(fold([registered, { type: 'ShopOpened', data: {} }, { type: 'ShopClosed', data: {} }]), { open: false });
  });
  t.test('change-delivery-info emits DeliveryInfoChanged and evolve applies both terms', async (t) => {
    const changed: ShopEvent = { type: 'DeliveryInfoChanged', data: { minOrderAmount: 0, deliveryFee: 1500 } };
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered]).when({ type: 'ChangeDeliveryInfo', data: { minOrderAmount: 0, deliveryFee: 1500 } }).then([changed]);
    t.match(fold([registered, changed]), { minOrderAmount: 0, deliveryFee: 1500 });
  });
});

t.test('every command but register is rejected for an unregistered shop', async (t) => {
  const commands = [
    { type: 'RenameShop', data: { name: 'n' } },
    { type: 'OpenShop', data: {} },
    { type: 'CloseShop', data: {} },
    { type: 'ChangeDeliveryInfo', data: { minOrderAmount: 0, deliveryFee: 0 } },
    { type: 'AddMenuItem', data: { menuId: 'm1', name: 'n', price: 100 } },
    { type: 'ChangeMenuPrice', data: { menuId: 'm1', price: 100 } },
    { type: 'MarkMenuSoldOut', data: { menuId: 'm1' } },
    { type: 'RestockMenuItem', data: { menuId: 'm1' } },
    { type: 'RemoveMenuItem', data: { menuId: 'm1' } },
  ] as const;
  for (const command of commands) deciderSpec(shop, { assert: tapAssert(t) }).given([]).when(command).rejects('shop_not_registered');
});

t.test('menu', async (t) => {
  t.test('add-menu-item emits MenuItemAdded and the item starts available', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered]).when({ type: 'AddMenuItem', data: { menuId: 'm1', name: 'Bibimbap', price: 9000 } }).then([bibimbap]);
    t.same(menuOf([registered, bibimbap]), { m1: { name: 'Bibimbap', price: 9000, soldOut: false } });
  });
  t.test('an existing menu id cannot be added again', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, bibimbap]).when({ type: 'AddMenuItem', data: { menuId: 'm1', name: 'Other', price: 100 } }).rejects('menu_item_exists');
  });
  t.test('a menu with 200 items is full', async (t) => {
    const items: ShopEvent[] = Array.from({ length: MAX_MENU_ITEMS }, (_, i) => ({ type: 'MenuItemAdded', data: { menuId: `m${i}`, name: `Item ${i}`, price: 1000 } }));
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, ...items]).when({ type: 'AddMenuItem', data: { menuId: 'extra', name: 'Extra', price: 1000 } }).rejects('menu_full');
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, ...items.slice(1)]).when({ type: 'AddMenuItem', data: { menuId: 'extra', name: 'Extra', price: 1000 } })
      .then([{ type: 'MenuItemAdded', data: { menuId: 'extra', name: 'Extra', price: 1000 } }]);
  });
  t.test('menu ids that name Object.prototype members are ordinary ids', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered]).when({ type: 'AddMenuItem', data: { menuId: '__proto__', name: 'Odd', price: 100 } })
      .then([{ type: 'MenuItemAdded', data: { menuId: '__proto__', name: 'Odd', price: 100 } }]);
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered]).when({ type: 'ChangeMenuPrice', data: { menuId: 'constructor', price: 100 } }).rejects('menu_not_found');
    const menu = menuOf([registered, { type: 'MenuItemAdded', data: { menuId: '__proto__', name: 'Odd', price: 100 } }]) ?? {};
    t.same(Object.keys(menu), ['__proto__'], 'stored as an own key');
    t.equal(Object.getPrototypeOf(menu), Object.prototype, 'without replacing the prototype');
  });
  t.test('change-menu-price emits MenuPriceChanged and evolve shows the new price', async (t) => {
    const changed: ShopEvent = { type: 'MenuPriceChanged', data: { menuId: 'm1', price: 9500 } };
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, bibimbap]).when({ type: 'ChangeMenuPrice', data: { menuId: 'm1', price: 9500 } }).then([changed]);
    t.same(menuOf([registered, bibimbap, changed]), { m1: { name: 'Bibimbap', price: 9500, soldOut: false } });
  });
  t.test('mark-menu-sold-out emits MenuItemSoldOut, even when already sold out', async (t) => {
    const soldOut: ShopEvent = { type: 'MenuItemSoldOut', data: { menuId: 'm1' } };
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, bibimbap]).when({ type: 'MarkMenuSoldOut', data: { menuId: 'm1' } }).then([soldOut]);
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, bibimbap, soldOut]).when({ type: 'MarkMenuSoldOut', data: { menuId: 'm1' } }).then([soldOut]);
  });
  t.test('restock-menu-item emits MenuItemRestocked', async (t) => {
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, bibimbap, { type: 'MenuItemSoldOut', data: { menuId: 'm1' } }])
      .when({ type: 'RestockMenuItem', data: { menuId: 'm1' } }).then([{ type: 'MenuItemRestocked', data: { menuId: 'm1' } }]);
  });
  t.test('evolve marks an item sold out and restocks it', async (t) => {
    const soldOut: ShopEvent = { type: 'MenuItemSoldOut', data: { menuId: 'm1' } };
    const restocked: ShopEvent = { type: 'MenuItemRestocked', data: { menuId: 'm1' } };
    t.same(menuOf([registered, bibimbap, soldOut])?.m1, { name: 'Bibimbap', price: 9000, soldOut: true });
    t.same(menuOf([registered, bibimbap, soldOut, restocked])?.m1, { name: 'Bibimbap', price: 9000, soldOut: false });
  });
  t.test('remove-menu-item emits MenuItemRemoved and evolve drops the item', async (t) => {
    const removed: ShopEvent = { type: 'MenuItemRemoved', data: { menuId: 'm1' } };
    deciderSpec(shop, { assert: tapAssert(t) }).given([registered, bibimbap]).when({ type: 'RemoveMenuItem', data: { menuId: 'm1' } }).then([removed]);
    t.same(menuOf([registered, bibimbap, removed]), {});
  });
  t.test('commands on a missing menu item are rejected with menu_not_found', async (t) => {
    const removed: ShopEvent = { type: 'MenuItemRemoved', data: { menuId: 'm1' } };
    for (const history of [[registered], [registered, bibimbap, removed]]) {
      deciderSpec(shop, { assert: tapAssert(t) }).given(history).when({ type: 'ChangeMenuPrice', data: { menuId: 'm1', price: 1000 } }).rejects('menu_not_found');
      deciderSpec(shop, { assert: tapAssert(t) }).given(history).when({ type: 'MarkMenuSoldOut', data: { menuId: 'm1' } }).rejects('menu_not_found');
      deciderSpec(shop, { assert: tapAssert(t) }).given(history).when({ type: 'RestockMenuItem', data: { menuId: 'm1' } }).rejects('menu_not_found');
      deciderSpec(shop, { assert: tapAssert(t) }).given(history).when({ type: 'RemoveMenuItem', data: { menuId: 'm1' } }).rejects('menu_not_found');
    }
  });
});

t.test('evolve is total', async (t) => {
  t.test('an unknown event type leaves the state unchanged', async (t) => {
    const before = fold([registered, bibimbap]);
    const unknown = { type: 'ShopRepainted', data: { colour: 'red' } } as unknown as ShopEvent;
    t.equal(shop.evolve(before, unknown), before);
    t.equal(shop.evolve(shop.initialState(), unknown).status, 'unregistered');
  });
  t.test('events about a missing shop or menu item are ignored', async (t) => {
    t.same(fold([bibimbap, { type: 'ShopOpened', data: {} }]), { status: 'unregistered' });
    const before = fold([registered]);
    t.equal(shop.evolve(before, { type: 'MenuPriceChanged', data: { menuId: 'ghost', price: 100 } }), before);
    t.equal(shop.evolve(before, { type: 'MenuItemRemoved', data: { menuId: 'ghost' } }), before);
  });
  t.test('evolve does not mutate the previous state', async (t) => {
    const before = fold([registered, bibimbap]);
    const copy = structuredClone(before);
    shop.evolve(before, { type: 'MenuPriceChanged', data: { menuId: 'm1', price: 100 } });
    shop.evolve(before, { type: 'MenuItemRemoved', data: { menuId: 'm1' } });
    t.same(before, copy);
  });
});

t.test('touches', async (t) => {
  t.test('menu commands touch only their item', async (t) => {
    t.same(shop.touches?.({ type: 'ChangeMenuPrice', data: { menuId: 'm1', price: 100 } }), ['menu:m1']);
    t.same(shop.touches?.({ type: 'AddMenuItem', data: { menuId: 'm2', name: 'n', price: 100 } }), ['menu:m2']);
    t.same(shop.touches?.({ type: 'RemoveMenuItem', data: { menuId: 'm3' } }), ['menu:m3']);
  });
  t.test('shop-level commands touch their part and register touches everything', async (t) => {
    t.same(shop.touches?.({ type: 'RenameShop', data: { name: 'n' } }), ['name']);
    t.same(shop.touches?.({ type: 'OpenShop', data: {} }), ['open']);
    t.same(shop.touches?.({ type: 'CloseShop', data: {} }), ['open']);
    t.same(shop.touches?.({ type: 'ChangeDeliveryInfo', data: { minOrderAmount: 0, deliveryFee: 0 } }), ['delivery']);
    t.equal(shop.touches?.({ type: 'RegisterShop', data: { name: 'n', category: 'c', ownerId: 'o' } }), undefined);
  });
  t.test('eventTouches mirrors touches', async (t) => {
    t.same(shop.eventTouches?.(bibimbap), ['menu:m1']);
    t.same(shop.eventTouches?.({ type: 'MenuItemSoldOut', data: { menuId: 'm9' } }), ['menu:m9']);
    t.same(shop.eventTouches?.({ type: 'ShopRenamed', data: { name: 'n' } }), ['name']);
    t.same(shop.eventTouches?.({ type: 'ShopClosed', data: {} }), ['open']);
    t.same(shop.eventTouches?.({ type: 'DeliveryInfoChanged', data: { minOrderAmount: 0, deliveryFee: 0 } }), ['delivery']);
    t.equal(shop.eventTouches?.(registered), undefined);
  });
});

t.test('body schemas accept a valid body and reject an extra property', async (t) => {
  const valid: { [K in keyof typeof shopCommands]: Record<string, unknown> } = {
    register: { name: 'n', category: 'c', ownerId: 'o' },
    rename: { name: 'n' },
    open: {},
    close: {},
    'change-delivery-info': { minOrderAmount: 0, deliveryFee: 0 },
    'add-menu-item': { menuId: 'm1', name: 'n', price: 100 },
    'change-menu-price': { menuId: 'm1', price: 1_000_000 },
    'mark-menu-sold-out': { menuId: 'm1' },
    'restock-menu-item': { menuId: 'm1' },
    'remove-menu-item': { menuId: 'm1' },
  };
  t.equal(shop.commands, shopCommands);
  for (const [segment, { schema }] of Object.entries(shop.commands)) {
    const body = valid[segment as keyof typeof valid];
    t.ok(Value.Check(schema, body), `${segment} accepts a valid body`);
    t.notOk(Value.Check(schema, { ...body, extra: 1 }), `${segment} rejects an extra property`);
  }
});

t.test('body schemas enforce the limits', async (t) => {
  const { register, 'add-menu-item': add, 'change-delivery-info': delivery } = shopCommands;
  t.notOk(Value.Check(add.schema, { menuId: 'm1', name: 'n', price: 99 }), 'price below 100');
  t.notOk(Value.Check(add.schema, { menuId: 'm1', name: 'n', price: 1_000_001 }), 'price above 1,000,000');
  t.notOk(Value.Check(add.schema, { menuId: 'm1', name: 'n', price: 100.5 }), 'fractional price');
  t.notOk(Value.Check(add.schema, { menuId: 'm 1', name: 'n', price: 100 }), 'id outside [A-Za-z0-9_-]');
  t.notOk(Value.Check(add.schema, { menuId: 'x'.repeat(65), name: 'n', price: 100 }), 'id over 64 chars');
  t.notOk(Value.Check(add.schema, { menuId: 'm1', name: '', price: 100 }), 'empty name');
  t.notOk(Value.Check(add.schema, { menuId: 'm1', name: 'x'.repeat(101), price: 100 }), 'name over 100 chars');
  t.notOk(Value.Check(register.schema, { name: 'n', category: 'x'.repeat(51), ownerId: 'o' }), 'category over 50 chars');
  t.notOk(Value.Check(register.schema, { name: 'n', category: 'c', ownerId: 'o', deliveryFee: -1 }), 'negative delivery fee');
  t.notOk(Value.Check(delivery.schema, { minOrderAmount: 0 }), 'missing delivery fee');
  t.ok(Value.Check(delivery.schema, { minOrderAmount: 1_000_000, deliveryFee: 0 }), 'amounts at their bounds');
});
