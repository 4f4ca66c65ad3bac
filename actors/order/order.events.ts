import { Type } from 'typebox';
import { defineEvents, type EventOf } from '@converge-es/converge';

/** One line of a placed order, with the name and price the shop had when it was placed. */
export const OrderLineSchema = Type.Object({
  menuId: Type.String(),
  name: Type.String(),
  price: Type.Integer({ minimum: 1 }),
  quantity: Type.Integer({ minimum: 1 }),
});

/**
 * What every event after `OrderPlaced` repeats from the placed order, so that read models
 * (per-shop stats, order history) need no lookup of the order. `total` is the food total.
 */
const factFields = { shopId: Type.String(), customerId: Type.String(), total: Type.Integer({ minimum: 0 }) };
const Facts = Type.Object(factFields);
const FactsWithReason = Type.Object({ ...factFields, reason: Type.String() });

/** The order's events, declared once in TypeBox (see `shopEvents`). */
export const orderEvents = defineEvents({
  /**
   * An order was placed. `total` is the sum of the lines; the delivery fee is kept apart
   * so that revenue and minimum-order checks can use the food total alone.
   */
  OrderPlaced: Type.Object({
    shopId: Type.String(),
    customerId: Type.String(),
    lines: Type.Array(OrderLineSchema, { minItems: 1 }),
    total: Type.Integer({ minimum: 0 }),
    deliveryFee: Type.Integer({ minimum: 0 }),
  }),
  /** The shop accepted the order. */
  OrderAccepted: Facts,
  /** The shop turned the order down. */
  OrderRejected: FactsWithReason,
  /** The order reached the customer. */
  OrderDelivered: Facts,
  /** The order was called off before delivery. */
  OrderCancelled: FactsWithReason,
  /** Its customer's review of the delivered order was posted (told by the reviewedOrders reactor). */
  OrderReviewed: Type.Object({ ...factFields, reviewId: Type.String(), rating: Type.Integer({ minimum: 1, maximum: 5 }) }),
  /** That review was deleted. */
  OrderReviewCleared: Type.Object({ ...factFields, reviewId: Type.String() }),
});

/** Every event an order emits. */
export type OrderEvent = EventOf<typeof orderEvents>;
export type OrderPlaced = EventOf<typeof orderEvents, 'OrderPlaced'>;
export type OrderAccepted = EventOf<typeof orderEvents, 'OrderAccepted'>;
export type OrderRejected = EventOf<typeof orderEvents, 'OrderRejected'>;
export type OrderDelivered = EventOf<typeof orderEvents, 'OrderDelivered'>;
export type OrderCancelled = EventOf<typeof orderEvents, 'OrderCancelled'>;
export type OrderReviewed = EventOf<typeof orderEvents, 'OrderReviewed'>;
export type OrderReviewCleared = EventOf<typeof orderEvents, 'OrderReviewCleared'>;
/** One line of a placed order. */
export type OrderLine = OrderPlaced['data']['lines'][number];
/** The facts every later order event repeats. */
export type OrderFacts = OrderAccepted['data'];
