import { Type } from 'typebox';
import { defineEvents, type EventOf } from '@converge-es/converge';

const ProductId = Type.String({ minLength: 1, maxLength: 64 });
/** A line of a cart: the unit price is the price list's when the item was added. */
const PricedProductItem = Type.Object({
  productId: ProductId,
  quantity: Type.Integer({ minimum: 1 }),
  unitPrice: Type.Integer({ minimum: 0 }),
});

/** The cart's events, declared once: their types below and the check of every event emitted come from here. */
export const cartEvents = defineEvents({
  CartOpened: Type.Object({ clientId: Type.String() }),
  ProductItemAdded: Type.Object({ productItem: PricedProductItem }),
  ProductItemRemoved: Type.Object({ productItem: PricedProductItem }),
  // The client is repeated so that a client's summary needs no lookup of the cart.
  CartConfirmed: Type.Object({ clientId: Type.String(), totalAmount: Type.Integer({ minimum: 0 }) }),
  CartCancelled: Type.Object({ clientId: Type.String() }),
});

/** Every event a cart emits. */
export type CartEvent = EventOf<typeof cartEvents>;
/** One priced line. */
export type PricedProductItem = EventOf<typeof cartEvents, 'ProductItemAdded'>['data']['productItem'];
