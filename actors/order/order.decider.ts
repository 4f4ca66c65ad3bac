import { defineAggregate, emit, reject, type AggregateRef, type DecideContext, type Decision } from '@converge-es/converge';
import { menuItem, type RegisteredShop, type ShopState } from '../shop/shop.decider.js';
import { orderCommands, type OrderCommand } from './order.commands.js';
import { orderEvents, type OrderEvent, type OrderFacts, type OrderLine } from './order.events.js';
import { canTransition, type OrderStatus } from './order.lifecycle.js';

/** An order that has been placed, in whatever status it has reached since. */
export interface ExistingOrder {
  readonly status: Exclude<OrderStatus, 'none'>;
  readonly shopId: string;
  readonly customerId: string;
  readonly lines: readonly OrderLine[];
  /** Sum of price × quantity over the lines, without the delivery fee. */
  readonly total: number;
  readonly deliveryFee: number;
  /** The review of the delivered order, once one is posted. */
  readonly review?: { readonly reviewId: string; readonly rating: number };
}

/** An order's state: nothing until it is placed. */
export type OrderState = { readonly status: 'none' } | ExistingOrder;

/** Current states of other aggregates an order command reads: the shop, for `place`. */
export type OrderDeps = { readonly shop?: ShopState };

type PlaceOrder = Extract<OrderCommand, { type: 'PlaceOrder' }>;

/** Why an order command can be refused. */
export type OrderRejection =
  | 'already_placed'
  | 'shop_not_found'
  | 'shop_closed'
  | 'menu_not_found'
  | 'menu_sold_out'
  | 'below_min_order'
  | 'order_not_found'
  | 'invalid_transition'
  | 'order_not_delivered'
  | 'review_not_recorded'
  | 'unknown_command';

function decide(state: OrderState, command: OrderCommand, { deps }: DecideContext<OrderDeps>): Decision<OrderEvent, OrderRejection> {
  if (command.type === 'PlaceOrder') {
    if (!canTransition(state.status, command.type)) return reject('already_placed');
    return place(command.data, deps.shop);
  }
  if (state.status === 'none') return reject('order_not_found');
  const facts: OrderFacts = { shopId: state.shopId, customerId: state.customerId, total: state.total };
  // Reviews are not steps of the lifecycle: they come after it, on a delivered order.
  if (command.type === 'RecordOrderReview') {
    if (state.status !== 'delivered') return reject('order_not_delivered');
    return emit({ type: 'OrderReviewed', data: { ...facts, reviewId: command.data.reviewId, rating: command.data.rating } });
  }
  if (command.type === 'ClearOrderReview') {
    if (state.review?.reviewId !== command.data.reviewId) return reject('review_not_recorded');
    return emit({ type: 'OrderReviewCleared', data: { ...facts, reviewId: command.data.reviewId } });
  }
  if (!canTransition(state.status, command.type)) return reject('invalid_transition');
  switch (command.type) {
    case 'AcceptOrder':
      return emit({ type: 'OrderAccepted', data: facts });
    case 'RejectOrder':
      return emit({ type: 'OrderRejected', data: { ...facts, reason: command.data.reason } });
    case 'DeliverOrder':
      return emit({ type: 'OrderDelivered', data: facts });
    case 'CancelOrder':
      return emit({ type: 'OrderCancelled', data: { ...facts, reason: command.data.reason } });
    default: {
      const unhandled: never = command;
      void unhandled;
      return reject('unknown_command');
    }
  }
}

/**
 * Prices and names are copied from the shop's current state, never taken from the client,
 * and every item is checked for existence before any is checked for stock, so the reason
 * does not depend on the order of the lines.
 */
function place(data: PlaceOrder['data'], shop: ShopState | undefined): Decision<OrderEvent, OrderRejection> {
  if (shop?.status !== 'registered') return reject('shop_not_found');
  if (!shop.open) return reject('shop_closed');
  const lines = priceLines(shop, data.items);
  if (!lines) return reject('menu_not_found');
  if (data.items.some((item) => menuItem(shop, item.menuId)?.soldOut)) return reject('menu_sold_out');
  const total = lines.reduce((sum, line) => sum + line.price * line.quantity, 0);
  if (total < shop.minOrderAmount) return reject('below_min_order');
  const { shopId, customerId } = data;
  return emit({ type: 'OrderPlaced', data: { shopId, customerId, lines, total, deliveryFee: shop.deliveryFee } });
}

/** The priced lines, or undefined when any item is not on the menu. */
function priceLines(shop: RegisteredShop, items: PlaceOrder['data']['items']): OrderLine[] | undefined {
  const lines: OrderLine[] = [];
  for (const { menuId, quantity } of items) {
    const item = menuItem(shop, menuId);
    if (!item) return undefined;
    lines.push({ menuId, name: item.name, price: item.price, quantity });
  }
  return lines;
}

function evolve(state: OrderState, event: OrderEvent): OrderState {
  if (event.type === 'OrderPlaced') {
    if (state.status !== 'none') return state;
    const { shopId, customerId, lines, total, deliveryFee } = event.data;
    return { status: 'placed', shopId, customerId, lines, total, deliveryFee };
  }
  // A fact about an order that does not exist cannot be applied; ignoring it keeps evolve total.
  if (state.status === 'none') return state;
  switch (event.type) {
    case 'OrderAccepted':
      return { ...state, status: 'accepted' };
    case 'OrderRejected':
      return { ...state, status: 'rejected' };
    case 'OrderDelivered':
      return { ...state, status: 'delivered' };
    case 'OrderCancelled':
      return { ...state, status: 'cancelled' };
    case 'OrderReviewed':
      return { ...state, review: { reviewId: event.data.reviewId, rating: event.data.rating } };
    case 'OrderReviewCleared': {
      const { review: _cleared, ...rest } = state;
      return rest;
    }
    default: {
      // Reached at run time by event types this version does not know: leave the state be.
      const unknown: never = event;
      void unknown;
      return state;
    }
  }
}

/** The customer's id, sealed with their own key. */
const customerId = { subject: 'customerId', fields: ['customerId'] } as const;

/** The order aggregate: placed against a shop's current menu, then moved along its lifecycle. */
export const order = defineAggregate({
  name: 'order',
  commands: orderCommands,
  events: orderEvents,
  initialState: (): OrderState => ({ status: 'none' }),
  decide,
  evolve,
  requires: (command): { shop: AggregateRef } | undefined =>
    command.type === 'PlaceOrder' ? { shop: { aggregate: 'shop', id: command.data.shopId } } : undefined,
  // Delivered, rejected or cancelled: no command moves it on, so after `archive.afterMs` the
  // archiver moves it out of EVENTS. A review still reads it (through the archive).
  finished: (state) => state.status === 'delivered' || state.status === 'rejected' || state.status === 'cancelled',
  // Which customer ordered is theirs to have forgotten: every order event repeats it.
  personal: Object.fromEntries(Object.keys(orderEvents).map((type) => [type, customerId])),
});

