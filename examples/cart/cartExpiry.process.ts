import { defineProcess, type ProcessContext, type StoredEvent } from '@converge-es/converge';
import type { CartEvent } from './cart.events.js';
import type { CartSettings } from './settings.js';

/**
 * An open cart left untouched for `carts.expireAfterMs` is cancelled. One instance per cart:
 * opening it starts the instance and schedules `expire`; each item added or removed
 * schedules it again from then (replacing the pending one); the cart confirmed or cancelled
 * ends the instance, which cancels the timer. When it fires, the process sends `CancelCart`;
 * a cart confirmed in that very moment refuses it (`cart_closed`) and stays confirmed.
 */
export const cartExpiry = defineProcess({
  name: 'cartExpiry',
  handles: ['CartOpened', 'ProductItemAdded', 'ProductItemRemoved', 'CartConfirmed', 'CartCancelled'],
  correlate: (event: StoredEvent<CartEvent>, meta) => ({ id: meta.id, start: event.type === 'CartOpened' }),
  initialState: () => ({}),
  decide(_state, input, { id, settings }: ProcessContext<CartSettings>) {
    if (input.kind === 'timer') return { commands: [{ aggregate: 'cart', id, type: 'CancelCart', data: {} }], end: true };
    switch (input.event.type) {
      case 'CartConfirmed':
      case 'CartCancelled':
        return { end: true };
      default:
        return { timers: [{ schedule: 'expire', after: settings.carts.expireAfterMs }] };
    }
  },
  evolve: (state) => state,
});
