import { Type } from 'typebox';
import { defineProjection, descending } from '@converge-es/converge';
import type { CartEvent } from './cart.events.js';

const Status = Type.Union([Type.Literal('open'), Type.Literal('confirmed'), Type.Literal('cancelled')]);

/** A cart as its client sees it: declared once, it types the fold, checks every write and is the routes' response. */
export const CartDetails = Type.Object({
  id: Type.String(),
  clientId: Type.String(),
  status: Status,
  items: Type.Array(Type.Object({ productId: Type.String(), quantity: Type.Integer(), unitPrice: Type.Integer() })),
  totalAmount: Type.Integer({ minimum: 0 }),
  openedAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  /** Stream position of `CartOpened`: the order of a client's carts, newest first. */
  openedPosition: Type.Integer(),
  version: Type.Integer(),
});

/** Each cart's lines and total; listed per client, newest first, and per client and status. */
export const cartDetails = defineProjection.of(CartDetails)({
  name: 'cartDetails',
  version: 1,
  handles: ['CartOpened', 'ProductItemAdded', 'ProductItemRemoved', 'CartConfirmed', 'CartCancelled'],
  key: (_event: CartEvent, meta) => meta.id,
  fold(doc, event, meta) {
    const touched = { updatedAt: event.at, version: meta.version };
    switch (event.type) {
      case 'CartOpened':
        return doc ?? { id: meta.id, clientId: event.data.clientId, status: 'open', items: [], totalAmount: 0, openedAt: event.at, openedPosition: meta.position, ...touched };
      case 'ProductItemAdded': {
        if (!doc) return undefined;
        const { productId, quantity, unitPrice } = event.data.productItem;
        const before = doc.items.find((i) => i.productId === productId);
        const items = before
          ? doc.items.map((i) => (i.productId === productId ? { ...i, quantity: i.quantity + quantity } : i))
          : [...doc.items, { productId, quantity, unitPrice }];
        return { ...doc, items, totalAmount: doc.totalAmount + quantity * (before?.unitPrice ?? unitPrice), ...touched };
      }
      case 'ProductItemRemoved': {
        if (!doc) return undefined;
        const gone = doc.items.find((i) => i.productId === event.data.productItem.productId);
        const items = doc.items.filter((i) => i !== gone);
        return { ...doc, items, totalAmount: doc.totalAmount - (gone ? gone.quantity * gone.unitPrice : 0), ...touched };
      }
      case 'CartConfirmed':
        return doc && { ...doc, status: 'confirmed', totalAmount: event.data.totalAmount, ...touched };
      case 'CartCancelled':
        return doc && { ...doc, status: 'cancelled', ...touched };
    }
  },
  indexes: (doc) => [
    ['client', doc.clientId, descending(doc.openedPosition)],
    ['client-status', doc.clientId, doc.status, descending(doc.openedPosition)],
  ],
});
