import { defineProcess, type StoredEvent } from '@converge-es/converge';
import type { OrderAccepted, OrderCancelled, OrderPlaced, OrderRejected } from '../actors/order/order.events.js';
import type { ShopPlatformSettings } from './settings.js';

type Input = OrderPlaced | OrderAccepted | OrderRejected | OrderCancelled;

/** Why the process rejects an order. */
export const NOT_ACCEPTED_IN_TIME = 'not_accepted_in_time';

/**
 * Auto-reject: an order its shop has not accepted within `orders.acceptTimeoutMs` is
 * rejected with reason `not_accepted_in_time`. One instance per order: placing it starts the
 * instance and schedules the `accept` timer; the order accepted, rejected or cancelled first
 * ends the instance, which cancels the timer; the timer firing sends `RejectOrder`. Should
 * the shop accept in the moment the timer fires, the order itself refuses the rejection
 * (`invalid_transition`), and the order is left accepted.
 */
export const orderAcceptance = defineProcess({
  name: 'orderAcceptance',
  handles: ['OrderPlaced', 'OrderAccepted', 'OrderRejected', 'OrderCancelled'],
  correlate: (event: StoredEvent<Input>, meta) => ({ id: meta.id, start: event.type === 'OrderPlaced' }),
  initialState: () => ({}),
  decide(_state, input, { id, settings }: { id: string; settings: ShopPlatformSettings }) {
    if (input.kind === 'timer') {
      return { commands: [{ aggregate: 'order', id, type: 'RejectOrder', data: { reason: NOT_ACCEPTED_IN_TIME } }], end: true };
    }
    if (input.event.type === 'OrderPlaced') return { timers: [{ schedule: 'accept', after: settings.orders.acceptTimeoutMs }] };
    return { end: true };
  },
  evolve: (state) => state,
});
