import { setup } from 'xstate';
import type { OrderCommand } from './order.commands.js';

/** Where an order is in its life; `none` until it is placed. */
export type OrderStatus = 'none' | 'placed' | 'accepted' | 'delivered' | 'rejected' | 'cancelled';

/** Every status, in lifecycle order. */
export const orderStatuses: readonly OrderStatus[] = ['none', 'placed', 'accepted', 'delivered', 'rejected', 'cancelled'];

type LifecycleEvent = { readonly type: Exclude<OrderCommand['type'], 'RecordOrderReview' | 'ClearOrderReview'> };

/**
 * The order lifecycle as a state machine. It is never started: the decider only asks it
 * which commands a status allows, so the allowed transitions are written down once.
 */
export const orderLifecycle = setup({
  types: { events: {} as LifecycleEvent },
}).createMachine({
  id: 'order',
  initial: 'none',
  states: {
    none: { on: { PlaceOrder: 'placed' } },
    placed: { on: { AcceptOrder: 'accepted', RejectOrder: 'rejected', CancelOrder: 'cancelled' } },
    accepted: { on: { DeliverOrder: 'delivered', CancelOrder: 'cancelled' } },
    delivered: { type: 'final' },
    rejected: { type: 'final' },
    cancelled: { type: 'final' },
  },
});

// Resolved once: a snapshot is an immutable value, and `can` only reads it.
const resolve = (status: OrderStatus) => orderLifecycle.resolveState({ value: status, context: {} });
const snapshots: Readonly<Record<OrderStatus, ReturnType<typeof resolve>>> = {
  none: resolve('none'),
  placed: resolve('placed'),
  accepted: resolve('accepted'),
  delivered: resolve('delivered'),
  rejected: resolve('rejected'),
  cancelled: resolve('cancelled'),
};

/** True when the lifecycle lets a command of this type act on an order in this status. */
export function canTransition(status: OrderStatus, commandType: LifecycleEvent['type']): boolean {
  return snapshots[status].can({ type: commandType });
}
