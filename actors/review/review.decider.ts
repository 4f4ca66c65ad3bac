import { defineAggregate, emit, reject, type AggregateRef, type DecideContext, type Decision } from '@converge-es/converge';
import type { OrderState } from '../order/order.decider.js';
import { reviewCommands, type ReviewCommand } from './review.commands.js';
import { reviewEvents, type ReviewEvent } from './review.events.js';

/** A review that was posted, and possibly deleted since. */
export interface ExistingReview {
  readonly status: 'posted' | 'deleted';
  readonly orderId: string;
  readonly shopId: string;
  readonly customerId: string;
  readonly rating: number;
  readonly text: string;
}

/** A review's state: nothing until it is posted. */
export type ReviewState = { readonly status: 'none' } | ExistingReview;

/** Current states of other aggregates a review command reads: the order, for `post`. */
export type ReviewDeps = { readonly order?: OrderState };

/** Why a review command can be refused. */
export type ReviewRejection = 'already_reviewed' | 'order_not_delivered' | 'not_order_customer' | 'review_not_found' | 'unknown_command';

function decide(state: ReviewState, command: ReviewCommand, { deps }: DecideContext<ReviewDeps>): Decision<ReviewEvent, ReviewRejection> {
  switch (command.type) {
    case 'PostReview': {
      // A deleted review stays deleted: a review id is used once.
      if (state.status !== 'none') return reject('already_reviewed');
      const { order } = deps;
      if (order?.status !== 'delivered') return reject('order_not_delivered');
      const { orderId, customerId, rating, text } = command.data;
      // Only the customer who received the order may rate it; anyone else would skew the shop's rating.
      if (order.customerId !== customerId) return reject('not_order_customer');
      return emit({ type: 'ReviewPosted', data: { orderId, shopId: order.shopId, customerId, rating, text } });
    }
    case 'DeleteReview': {
      if (state.status !== 'posted') return reject('review_not_found');
      const { orderId, shopId, rating } = state;
      return emit({ type: 'ReviewDeleted', data: { orderId, shopId, rating } });
    }
    default: {
      const unhandled: never = command;
      void unhandled;
      return reject('unknown_command');
    }
  }
}

function evolve(state: ReviewState, event: ReviewEvent): ReviewState {
  switch (event.type) {
    case 'ReviewPosted': {
      if (state.status !== 'none') return state;
      const { orderId, shopId, customerId, rating, text } = event.data;
      return { status: 'posted', orderId, shopId, customerId, rating, text };
    }
    case 'ReviewDeleted':
      return state.status === 'posted' ? { ...state, status: 'deleted' } : state;
    default: {
      // Reached at run time by event types this version does not know: leave the state be.
      const unknown: never = event;
      void unknown;
      return state;
    }
  }
}

/** The review aggregate: one customer's rating of one delivered order. */
export const review = defineAggregate({
  name: 'review',
  commands: reviewCommands,
  events: reviewEvents,
  initialState: (): ReviewState => ({ status: 'none' }),
  decide,
  evolve,
  requires: (command): { order: AggregateRef } | undefined =>
    command.type === 'PostReview' ? { order: { aggregate: 'order', id: command.data.orderId } } : undefined,
  // The customer's id and words are theirs: sealed with the customer's key, forgotten with it.
  personal: { ReviewPosted: { subject: 'customerId', fields: ['customerId', 'text'] } },
});
