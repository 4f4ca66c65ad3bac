import t from 'tap';
import { Value } from 'typebox/value';
import { orderCommands, type OrderCommand } from '../../actors/order/order.commands.js';
import { order, type OrderState } from '../../actors/order/order.decider.js';
import type { OrderEvent } from '../../actors/order/order.events.js';
import { shop, type ShopState } from '../../actors/shop/shop.decider.js';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import { deciderSpec } from '../../src/testing.js';
import { tapAssert } from '../helpers/spec.js';

const shopHistory: ShopEvent[] = [
  { type: 'ShopRegistered', data: { name: 'Kimbap Heaven', category: 'korean', ownerId: 'o1', minOrderAmount: 10000, deliveryFee: 3000 } },
  { type: 'MenuItemAdded', data: { menuId: 'bibimbap', name: 'Bibimbap', price: 9000 } },
  { type: 'MenuItemAdded', data: { menuId: 'kimbap', name: 'Kimbap', price: 3500 } },
  { type: 'MenuItemAdded', data: { menuId: 'ramyeon', name: 'Ramyeon', price: 4000 } },
  { type: 'MenuItemSoldOut', data: { menuId: 'ramyeon' } },
  { type: 'ShopOpened', data: {} },
];

function shopState(...more: ShopEvent[]): ShopState {
  return deciderSpec(shop).given([...shopHistory, ...more]).state;
}

const place = (items: { menuId: string; quantity: number }[]): OrderCommand => ({
  type: 'PlaceOrder',
  data: { shopId: 's1', customerId: 'c1', items },
});

const placed: OrderEvent = {
  type: 'OrderPlaced',
  data: {
    shopId: 's1',
    customerId: 'c1',
    lines: [
      { menuId: 'bibimbap', name: 'Bibimbap', price: 9000, quantity: 1 },
      { menuId: 'kimbap', name: 'Kimbap', price: 3500, quantity: 2 },
    ],
    total: 16000,
    deliveryFee: 3000,
  },
};
// Every lifecycle event repeats the order's shop, customer and total from its state.
const facts = { shopId: 's1', customerId: 'c1', total: 16000 };
const accepted: OrderEvent = { type: 'OrderAccepted', data: facts };
const delivered: OrderEvent = { type: 'OrderDelivered', data: facts };

function fold(events: readonly OrderEvent[]): OrderState {
  return events.reduce(order.evolve, order.initialState());
}

t.test('place', async (t) => {
  const items = [{ menuId: 'bibimbap', quantity: 1 }, { menuId: 'kimbap', quantity: 2 }];
  t.test('copies names and prices from the shop, totals the lines and keeps the delivery fee apart', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopState() }).when(place(items)).then([placed]);
  });
  t.test('the same menu item on two lines stays two lines', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopState() }).when(place([{ menuId: 'bibimbap', quantity: 1 }, { menuId: 'bibimbap', quantity: 1 }]))
      .then([{ type: 'OrderPlaced', data: {
        shopId: 's1', customerId: 'c1', total: 18000, deliveryFee: 3000,
        lines: [{ menuId: 'bibimbap', name: 'Bibimbap', price: 9000, quantity: 1 }, { menuId: 'bibimbap', name: 'Bibimbap', price: 9000, quantity: 1 }],
      } }]);
  });
  t.test('uses the price the shop has now', async (t) => {
    const shopNow = shopState({ type: 'MenuPriceChanged', data: { menuId: 'bibimbap', price: 12000 } });
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopNow }).when(place([{ menuId: 'bibimbap', quantity: 1 }]))
      .then([{ type: 'OrderPlaced', data: {
        shopId: 's1', customerId: 'c1', total: 12000, deliveryFee: 3000,
        lines: [{ menuId: 'bibimbap', name: 'Bibimbap', price: 12000, quantity: 1 }],
      } }]);
  });
  t.test('an order already placed cannot be placed again', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([placed], { shop: shopState() }).when(place(items)).rejects('already_placed');
    deciderSpec(order, { assert: tapAssert(t) }).given([placed, accepted, delivered], { shop: shopState() }).when(place(items)).rejects('already_placed');
  });
  t.test('a missing or unregistered shop is not found', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([], {}).when(place(items)).rejects('shop_not_found');
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shop.initialState() }).when(place(items)).rejects('shop_not_found');
  });
  t.test('a closed shop takes no orders', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopState({ type: 'ShopClosed', data: {} }) }).when(place(items)).rejects('shop_closed');
  });
  t.test('an item not on the menu is rejected, before any sold-out item', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopState() }).when(place([{ menuId: 'pizza', quantity: 1 }])).rejects('menu_not_found');
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopState() }).when(place([{ menuId: 'ramyeon', quantity: 3 }, { menuId: 'pizza', quantity: 1 }])).rejects('menu_not_found');
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopState({ type: 'MenuItemRemoved', data: { menuId: 'kimbap' } }) }).when(place(items)).rejects('menu_not_found');
  });
  t.test('a sold-out item is rejected, and a restocked one is accepted', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopState() }).when(place([{ menuId: 'bibimbap', quantity: 1 }, { menuId: 'ramyeon', quantity: 1 }])).rejects('menu_sold_out');
    const restocked = shopState({ type: 'MenuItemRestocked', data: { menuId: 'ramyeon' } });
    t.ok(deciderSpec(order).given([], { shop: restocked }).when(place([{ menuId: 'ramyeon', quantity: 3 }])).decision?.ok);
  });
  t.test('an order below the minimum amount is rejected; the delivery fee does not count', async (t) => {
    // 3,500 × 2 = 7,000 food, + 3,000 delivery would reach 10,000, but only the food counts.
    deciderSpec(order, { assert: tapAssert(t) }).given([], { shop: shopState() }).when(place([{ menuId: 'kimbap', quantity: 2 }])).rejects('below_min_order');
    t.ok(deciderSpec(order).given([], { shop: shopState() }).when(place([{ menuId: 'kimbap', quantity: 3 }])).decision?.ok, 'exactly the minimum or more is accepted');
  });
  t.test('requires reads the shop named in the command, and only for place', async (t) => {
    t.same(order.requires?.(place(items)), { shop: { aggregate: 'shop', id: 's1' } });
    t.equal(order.requires?.({ type: 'AcceptOrder', data: {} }), undefined);
  });
  t.test('evolve records the placed order', async (t) => {
    t.same(fold([placed]), { status: 'placed', ...placed.data });
  });
});

t.test('lifecycle commands', async (t) => {
  const rejected: OrderEvent = { type: 'OrderRejected', data: { ...facts, reason: 'too busy' } };
  const cancelled: OrderEvent = { type: 'OrderCancelled', data: { ...facts, reason: 'changed my mind' } };
  t.test('accept, reject and cancel a placed order', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([placed]).when({ type: 'AcceptOrder', data: {} }).then([accepted]);
    deciderSpec(order, { assert: tapAssert(t) }).given([placed]).when({ type: 'RejectOrder', data: { reason: 'too busy' } }).then([rejected]);
    deciderSpec(order, { assert: tapAssert(t) }).given([placed]).when({ type: 'CancelOrder', data: { reason: 'changed my mind' } }).then([cancelled]);
  });
  t.test('deliver or cancel an accepted order', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([placed, accepted]).when({ type: 'DeliverOrder', data: {} }).then([delivered]);
    deciderSpec(order, { assert: tapAssert(t) }).given([placed, accepted]).when({ type: 'CancelOrder', data: { reason: 'changed my mind' } }).then([cancelled]);
  });
  t.test('any lifecycle command on an order never placed is order_not_found', async (t) => {
    for (const command of [
      { type: 'AcceptOrder', data: {} }, { type: 'RejectOrder', data: { reason: 'r' } },
      { type: 'DeliverOrder', data: {} }, { type: 'CancelOrder', data: { reason: 'r' } },
    ] as const) deciderSpec(order, { assert: tapAssert(t) }).given([]).when(command).rejects('order_not_found');
  });
  t.test('transitions the lifecycle does not allow are invalid_transition', async (t) => {
    deciderSpec(order, { assert: tapAssert(t) }).given([placed]).when({ type: 'DeliverOrder', data: {} }).rejects('invalid_transition');
    deciderSpec(order, { assert: tapAssert(t) }).given([placed, accepted]).when({ type: 'AcceptOrder', data: {} }).rejects('invalid_transition');
    deciderSpec(order, { assert: tapAssert(t) }).given([placed, accepted]).when({ type: 'RejectOrder', data: { reason: 'r' } }).rejects('invalid_transition');
    deciderSpec(order, { assert: tapAssert(t) }).given([placed, accepted, delivered]).when({ type: 'CancelOrder', data: { reason: 'r' } }).rejects('invalid_transition');
    deciderSpec(order, { assert: tapAssert(t) }).given([placed, rejected]).when({ type: 'AcceptOrder', data: {} }).rejects('invalid_transition');
    deciderSpec(order, { assert: tapAssert(t) }).given([placed, cancelled]).when({ type: 'DeliverOrder', data: {} }).rejects('invalid_transition');
  });
  t.test('evolve moves the status and keeps the order', async (t) => {
    t.same(fold([placed, accepted]), { status: 'accepted', ...placed.data });
    t.equal(fold([placed, accepted, delivered]).status, 'delivered');
    t.equal(fold([placed, rejected]).status, 'rejected');
    t.equal(fold([placed, accepted, cancelled]).status, 'cancelled');
  });
});

t.test('evolve is total', async (t) => {
  t.test('an unknown event type leaves the state unchanged', async (t) => {
    const before = fold([placed]);
    t.equal(order.evolve(before, { type: 'OrderTeleported', data: {} } as unknown as OrderEvent), before);
  });
  t.test('status events before OrderPlaced, and a second OrderPlaced, are ignored', async (t) => {
    t.same(fold([accepted, delivered]), { status: 'none' });
    const before = fold([placed]);
    t.equal(order.evolve(before, placed), before);
  });
});

t.test('every command conflicts with every other: no touches are declared', async (t) => {
  t.equal(order.touches, undefined, 'a stale If-Match on an order is always a conflict');
  t.equal(order.eventTouches, undefined);
});

t.test('body schemas accept a valid body and reject an extra property', async (t) => {
  const valid: { [K in keyof typeof orderCommands]: Record<string, unknown> } = {
    place: { shopId: 's1', customerId: 'c1', items: [{ menuId: 'm1', quantity: 1 }] },
    accept: {},
    reject: { reason: 'busy' },
    deliver: {},
    cancel: { reason: 'late' },
    'record-review': { reviewId: 'r1', rating: 4 },
    'clear-review': { reviewId: 'r1' },
  };
  t.equal(order.commands, orderCommands);
  for (const [segment, { schema }] of Object.entries(order.commands)) {
    const body = valid[segment as keyof typeof valid];
    t.ok(Value.Check(schema, body), `${segment} accepts a valid body`);
    t.notOk(Value.Check(schema, { ...body, extra: 1 }), `${segment} rejects an extra property`);
  }
});

t.test('body schemas enforce the limits', async (t) => {
  const { place: placeSpec, cancel } = orderCommands;
  const body = (items: unknown) => ({ shopId: 's1', customerId: 'c1', items });
  t.notOk(Value.Check(placeSpec.schema, body([])), 'no items');
  t.notOk(Value.Check(placeSpec.schema, body(Array.from({ length: 51 }, () => ({ menuId: 'm', quantity: 1 })))), 'more than 50 lines');
  t.ok(Value.Check(placeSpec.schema, body(Array.from({ length: 50 }, () => ({ menuId: 'm', quantity: 99 })))), '50 lines of 99');
  t.notOk(Value.Check(placeSpec.schema, body([{ menuId: 'm', quantity: 0 }])), 'quantity 0');
  t.notOk(Value.Check(placeSpec.schema, body([{ menuId: 'm', quantity: 100 }])), 'quantity 100');
  t.notOk(Value.Check(placeSpec.schema, body([{ menuId: 'm', quantity: 1, price: 1 }])), 'a client-sent price on a line');
  t.notOk(Value.Check(cancel.schema, { reason: '' }), 'empty reason');
  t.notOk(Value.Check(cancel.schema, { reason: 'x'.repeat(501) }), 'reason over 500 chars');
});
