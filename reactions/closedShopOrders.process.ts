import { Type } from 'typebox';
import { defineEvents, defineProcess, type EventOf, type StoredEvent } from '@converge-es/converge';
import type { OrderAccepted, OrderCancelled, OrderPlaced, OrderRejected } from '../actors/order/order.events.js';
import type { ShopClosed } from '../actors/shop/shop.events.js';

type Input = OrderPlaced | OrderAccepted | OrderRejected | OrderCancelled | ShopClosed;

/** The process's own events: which of the shop's orders are waiting for the shop. */
export const shopOrdersEvents = defineEvents({
  OrderWaiting: Type.Object({ orderId: Type.String() }),
  OrderSettled: Type.Object({ orderId: Type.String() }),
});
type ShopOrdersEvent = EventOf<typeof shopOrdersEvents>;

/** The orders of one shop still placed: neither accepted, rejected nor cancelled. */
interface WaitingOrders {
  readonly waiting: readonly string[];
}

/**
 * A closed shop's orders: when a shop closes, its orders still `placed` are rejected with
 * reason `shop_closed`. One instance per shop, started by its first order; it keeps, as its
 * own events, which orders wait for the shop, so that at `ShopClosed` it knows which to
 * reject from its own state rather than from a view that may lag.
 */
export const closedShopOrders = defineProcess({
  name: 'closedShopOrders',
  handles: ['OrderPlaced', 'OrderAccepted', 'OrderRejected', 'OrderCancelled', 'ShopClosed'],
  correlate: (event: StoredEvent<Input>, meta) => (event.type === 'ShopClosed' ? { id: meta.id } : { id: event.data.shopId, start: event.type === 'OrderPlaced' }),
  events: shopOrdersEvents,
  initialState: (): WaitingOrders => ({ waiting: [] }),
  decide(state: WaitingOrders, input) {
    if (input.kind !== 'event') return {};
    const { event, meta } = input;
    switch (event.type) {
      case 'OrderPlaced':
        return { events: [{ type: 'OrderWaiting', data: { orderId: meta.id } }] };
      case 'ShopClosed':
        return { commands: state.waiting.map((orderId) => ({ aggregate: 'order', id: orderId, type: 'RejectOrder', data: { reason: 'shop_closed' } })) };
      default:
        return state.waiting.includes(meta.id) ? { events: [{ type: 'OrderSettled', data: { orderId: meta.id } }] } : {};
    }
  },
  evolve(state: WaitingOrders, event: ShopOrdersEvent): WaitingOrders {
    return event.type === 'OrderWaiting' ? { waiting: [...state.waiting, event.data.orderId] } : { waiting: state.waiting.filter((id) => id !== event.data.orderId) };
  },
});
