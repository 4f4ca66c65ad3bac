import { Type } from 'typebox';
import { defineProjection } from '@converge-es/converge';
import type { CartEvent } from './cart.events.js';

/** What a client has done with carts: how many are open, confirmed and cancelled, and what they spent. */
export const ClientSummary = Type.Object({
  clientId: Type.String(),
  open: Type.Integer({ minimum: 0 }),
  confirmed: Type.Integer({ minimum: 0 }),
  cancelled: Type.Integer({ minimum: 0 }),
  totalSpent: Type.Integer({ minimum: 0 }),
});

/** One document per client, keyed by the client id that the cart's events carry. */
export const clientSummary = defineProjection.of(ClientSummary)({
  name: 'clientSummary',
  version: 1,
  handles: ['CartOpened', 'CartConfirmed', 'CartCancelled'],
  key: (event: CartEvent) => ('clientId' in event.data ? event.data.clientId : undefined),
  fold(doc, event) {
    const summary = doc ?? { clientId: 'clientId' in event.data ? event.data.clientId : '', open: 0, confirmed: 0, cancelled: 0, totalSpent: 0 };
    switch (event.type) {
      case 'CartOpened':
        return { ...summary, open: summary.open + 1 };
      case 'CartConfirmed':
        return { ...summary, open: summary.open - 1, confirmed: summary.confirmed + 1, totalSpent: summary.totalSpent + event.data.totalAmount };
      case 'CartCancelled':
        return { ...summary, open: summary.open - 1, cancelled: summary.cancelled + 1 };
      default:
        return doc;
    }
  },
});
