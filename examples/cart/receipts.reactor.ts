import { defineReactor, type ReactorContext, type StoredEvent } from '@converge-es/converge';
import type { CartEvent } from './cart.events.js';
import type { ReceiptServices } from './receipts.js';

/**
 * Sends the client a receipt when a cart is confirmed, after the commit, through the app's
 * `receipts` service. The key names the event (`<position>:<index>`), so a confirmation
 * handled again after a crash is one receipt. A service that fails is retried five times
 * with backoff, then the event is parked for an operator (`converge reactions parked`).
 */
export const receipts = defineReactor({
  name: 'receipts',
  handles: ['CartConfirmed'],
  handle: (event: StoredEvent<Extract<CartEvent, { type: 'CartConfirmed' }>>, meta, { services }: ReactorContext<ReceiptServices>) =>
    services.receipts.send({ key: `${meta.position}:${meta.eventIndex}`, cartId: meta.id, clientId: event.data.clientId, totalAmount: event.data.totalAmount }),
});
