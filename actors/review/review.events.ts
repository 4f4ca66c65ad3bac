import { Type } from 'typebox';
import { defineEvents, type EventOf } from '@converge-es/converge';

/** The review's events, declared once in TypeBox (see `shopEvents`). */
export const reviewEvents = defineEvents({
  /** A customer reviewed a delivered order; `shopId` is copied from the order for per-shop views. */
  ReviewPosted: Type.Object({
    orderId: Type.String(),
    shopId: Type.String(),
    customerId: Type.String(),
    rating: Type.Integer({ minimum: 1, maximum: 5 }),
    text: Type.String(),
  }),
  /**
   * A review was withdrawn. It carries the rating it removes, so a read model can adjust a
   * shop's average without keeping every review.
   */
  ReviewDeleted: Type.Object({ orderId: Type.String(), shopId: Type.String(), rating: Type.Integer({ minimum: 1, maximum: 5 }) }),
});

/** Every event a review emits. */
export type ReviewEvent = EventOf<typeof reviewEvents>;
export type ReviewPosted = EventOf<typeof reviewEvents, 'ReviewPosted'>;
export type ReviewDeleted = EventOf<typeof reviewEvents, 'ReviewDeleted'>;
