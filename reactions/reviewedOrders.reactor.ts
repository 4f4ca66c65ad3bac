import { defineReactor, type StoredEvent } from '@converge-es/converge';
import type { ReviewDeleted, ReviewPosted } from '../actors/review/review.events.js';

/**
 * Tells an order about its review: a review posted on a delivered order is recorded on the
 * order (`OrderReviewed`), and a deleted one cleared, so that the order's history view shows
 * it and other systems following the order's notices see it. The order refuses what does not
 * fit (a review recorded again is harmless: the command's key makes a redelivery take effect
 * once).
 */
export const reviewedOrders = defineReactor({
  name: 'reviewedOrders',
  handles: ['ReviewPosted', 'ReviewDeleted'],
  async handle(event: StoredEvent<ReviewPosted | ReviewDeleted>, meta, { dispatch }) {
    const { orderId } = event.data;
    if (event.type === 'ReviewPosted') await dispatch({ aggregate: 'order', id: orderId, type: 'RecordOrderReview', data: { reviewId: meta.id, rating: event.data.rating } });
    else await dispatch({ aggregate: 'order', id: orderId, type: 'ClearOrderReview', data: { reviewId: meta.id } });
  },
});
