import { Type } from 'typebox';
import type { CommandOf } from '@converge-es/converge';

const ProductId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

/**
 * The cart's HTTP surface, in the shape its clients expect rather than converge's default
 * `POST /carts/:id/<segment>`: each command names its method, path and success status. A
 * path parameter other than `:id` is a field of the command (`:productId` below).
 */
export const cartCommands = {
  open: {
    type: 'OpenCart',
    schema: Type.Object({ clientId: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
    path: '/carts/:id',
    status: 201,
  },
  'add-item': {
    type: 'AddProductItem',
    // No price: the server's price list has it (the cart's lookup).
    schema: Type.Object({ productId: ProductId, quantity: Type.Integer({ minimum: 1, maximum: 99 }) }, { additionalProperties: false }),
    path: '/carts/:id/items',
    status: 204,
  },
  'remove-item': {
    type: 'RemoveProductItem',
    schema: Type.Object({ productId: ProductId }, { additionalProperties: false }),
    method: 'DELETE',
    path: '/carts/:id/items/:productId',
    status: 204,
  },
  confirm: { type: 'ConfirmCart', schema: Type.Object({}, { additionalProperties: false }), path: '/carts/:id/confirm', status: 204 },
  cancel: { type: 'CancelCart', schema: Type.Object({}, { additionalProperties: false }), method: 'DELETE', path: '/carts/:id', status: 204 },
} as const;

/** A cart command as `decide` receives it. */
export type CartCommand = CommandOf<typeof cartCommands>;
