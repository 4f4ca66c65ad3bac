import { defineProjection, descending, type EventMeta, type StoredEvent } from '../../src/index.js';
import type { OrderLine } from '../../actors/order/order.events.js';
import type { OrderStatus } from '../../actors/order/order.lifecycle.js';
import type { EventsOf } from '../events.js';

/** A placed order's status. */
export type PlacedStatus = Exclude<OrderStatus, 'none'>;

/** Every status a placed order can have, for the route's filter. */
export const placedStatuses = ['placed', 'accepted', 'delivered', 'rejected', 'cancelled'] as const satisfies readonly PlacedStatus[];

/** One order as its customer and its shop see it in their histories. */
export interface OrderHistoryDoc {
  readonly orderId: string;
  readonly shopId: string;
  readonly customerId: string;
  readonly status: PlacedStatus;
  readonly lines: readonly OrderLine[];
  /** Food total, without the delivery fee. */
  readonly total: number;
  readonly deliveryFee: number;
  /** When the order was placed (the commit's time). */
  readonly placedAt: string;
  /** When the order last changed. */
  readonly updatedAt: string;
  /** Stream position of the placement: newest-first order of the histories. */
  readonly placedPosition: number;
  /** Stream position of the last event applied. */
  readonly position: number;
  /** The order aggregate's version. */
  readonly version: number;
}

const handles = ['OrderPlaced', 'OrderAccepted', 'OrderRejected', 'OrderDelivered', 'OrderCancelled'] as const;
type OrderHistoryEvent = EventsOf<(typeof handles)[number]>;

const statusAfter = {
  OrderAccepted: 'accepted',
  OrderRejected: 'rejected',
  OrderDelivered: 'delivered',
  OrderCancelled: 'cancelled',
} as const satisfies Partial<Record<OrderHistoryEvent['type'], PlacedStatus>>;

/** A customer's orders, a shop's orders, and a shop's orders in one status; each newest first. */
function indexes(doc: OrderHistoryDoc): (string | number)[][] {
  const newest = descending(doc.placedPosition);
  return [
    ['customer', doc.customerId, newest],
    ['shop', doc.shopId, '*', newest],
    ['shop', doc.shopId, doc.status, newest],
  ];
}

function fold(doc: OrderHistoryDoc | undefined, event: StoredEvent<OrderHistoryEvent>, meta: EventMeta): OrderHistoryDoc | undefined {
  const moved = { updatedAt: meta.at, position: meta.position, version: meta.version };
  switch (event.type) {
    case 'OrderPlaced': {
      if (doc) return doc;
      const { shopId, customerId, lines, total, deliveryFee } = event.data;
      return {
        orderId: meta.id, shopId, customerId, status: 'placed', lines, total, deliveryFee,
        placedAt: meta.at, placedPosition: meta.position, ...moved,
      };
    }
    case 'OrderAccepted':
    case 'OrderRejected':
    case 'OrderDelivered':
    case 'OrderCancelled':
      // The lifecycle was checked by the decider; a status event for an unseen order changes nothing.
      return doc && { ...doc, status: statusAfter[event.type], ...moved };
    default:
      return doc;
  }
}

/** Order histories per customer and per shop. */
export const orderHistory = defineProjection<OrderHistoryEvent, OrderHistoryDoc>({
  name: 'orderHistory',
  version: 1,
  handles,
  key: (_event, meta) => (meta.aggregate === 'order' ? meta.id : undefined),
  fold,
  indexes,
});
