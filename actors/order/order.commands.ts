import { Type } from 'typebox';
import type { CommandOf } from '@converge-es/converge';
import { EmptyBody, Id, Reason } from '../shared.schemas.js';

/** One requested line: which menu item and how many. Name and price come from the shop. */
export const OrderItem = Type.Object(
  { menuId: Id, quantity: Type.Integer({ minimum: 1, maximum: 99 }) },
  { additionalProperties: false },
);

/** Body of `place`. The client sends no prices: the total is computed from the shop's menu. */
export const PlaceOrderBody = Type.Object(
  { shopId: Id, customerId: Id, items: Type.Array(OrderItem, { minItems: 1, maxItems: 50 }) },
  { additionalProperties: false },
);

/** Body of `reject` and `cancel`: why, for the customer and for support. */
export const ReasonBody = Type.Object({ reason: Reason }, { additionalProperties: false });

/** The order's HTTP surface: URL segment → command type and body schema. */
export const orderCommands = {
  place: { type: 'PlaceOrder', schema: PlaceOrderBody },
  accept: { type: 'AcceptOrder', schema: EmptyBody },
  reject: { type: 'RejectOrder', schema: ReasonBody },
  deliver: { type: 'DeliverOrder', schema: EmptyBody },
  cancel: { type: 'CancelOrder', schema: ReasonBody },
  // Sent by the reviewedOrders reactor when a review of the order is posted or deleted; not over HTTP.
  'record-review': {
    type: 'RecordOrderReview',
    schema: Type.Object({ reviewId: Id, rating: Type.Integer({ minimum: 1, maximum: 5 }) }, { additionalProperties: false }),
    internal: true,
  },
  'clear-review': { type: 'ClearOrderReview', schema: Type.Object({ reviewId: Id }, { additionalProperties: false }), internal: true },
} as const;

/** An order command as `decide` receives it, its `data` already validated against its schema. */
export type OrderCommand = CommandOf<typeof orderCommands>;
