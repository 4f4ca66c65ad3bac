import { Type, type Static } from 'typebox';
import { defineProjection, descending, type EventMeta, type StoredEvent } from '@converge-es/converge';
import { OrderLineSchema } from '../../actors/order/order.events.js';
import type { OrderStatus } from '../../actors/order/order.lifecycle.js';
import type { EventsOf } from '../events.js';

/** A placed order's status. */
export type PlacedStatus = Exclude<OrderStatus, 'none'>;

/** Every status a placed order can have, for the route's filter. */
export const placedStatuses = ['placed', 'accepted', 'delivered', 'rejected', 'cancelled'] as const satisfies readonly PlacedStatus[];

/** One order as its customer and its shop see it in their histories. */
export const OrderHistoryDocument = Type.Object({
  orderId: Type.String(),
  shopId: Type.String(),
  customerId: Type.String(),
  status: Type.Enum(placedStatuses),
  lines: Type.Array(OrderLineSchema),
  /** Food total, without the delivery fee. */
  total: Type.Integer(),
  deliveryFee: Type.Integer(),
  /** When the order was placed (the commit's time). */
  placedAt: Type.String(),
  /** When the order last changed. */
  updatedAt: Type.String(),
  /** Stream position of the placement: newest-first order of the histories. */
  placedPosition: Type.Integer(),
  /** Stream position of the last event applied. */
  position: Type.Integer(),
  /** The order aggregate's version. */
  version: Type.Integer(),
  /** The customer's review, once posted (recorded on the order by the reviewedOrders reactor). */
  review: Type.Optional(Type.Object({ reviewId: Type.String(), rating: Type.Integer() })),
});
export type OrderHistoryDoc = Static<typeof OrderHistoryDocument>;

const handles = ['OrderPlaced', 'OrderAccepted', 'OrderRejected', 'OrderDelivered', 'OrderCancelled', 'OrderReviewed', 'OrderReviewCleared'] as const;
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
    case 'OrderReviewed':
      return doc && { ...doc, review: { reviewId: event.data.reviewId, rating: event.data.rating }, ...moved };
    case 'OrderReviewCleared': {
      if (!doc) return undefined;
      const { review: _cleared, ...rest } = doc;
      return { ...rest, ...moved };
    }
    default:
      return doc;
  }
}

/** Order histories per customer and per shop. */
export const orderHistory = defineProjection.of(OrderHistoryDocument)<OrderHistoryEvent>({
  name: 'orderHistory',
  // 2: `review`, from the reviewedOrders reactor.
  version: 2,
  handles,
  key: (_event, meta) => (meta.aggregate === 'order' ? meta.id : undefined),
  fold,
  indexes,
});
