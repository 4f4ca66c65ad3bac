/** One line of a placed order, with the name and price the shop had when it was placed. */
export interface OrderLine {
  readonly menuId: string;
  readonly name: string;
  readonly price: number;
  readonly quantity: number;
}

/**
 * An order was placed. `total` is the sum of the lines; the delivery fee is kept apart
 * so that revenue and minimum-order checks can use the food total alone.
 */
export interface OrderPlaced {
  readonly type: 'OrderPlaced';
  readonly data: {
    readonly shopId: string;
    readonly customerId: string;
    readonly lines: readonly OrderLine[];
    readonly total: number;
    readonly deliveryFee: number;
  };
}

// The later events repeat shopId so that per-shop read models need no lookup of the order.

/** The shop accepted the order. */
export interface OrderAccepted {
  readonly type: 'OrderAccepted';
  readonly data: { readonly shopId: string };
}

/** The shop turned the order down. */
export interface OrderRejected {
  readonly type: 'OrderRejected';
  readonly data: { readonly shopId: string; readonly reason: string };
}

/** The order reached the customer. */
export interface OrderDelivered {
  readonly type: 'OrderDelivered';
  readonly data: { readonly shopId: string };
}

/** The order was called off before delivery. */
export interface OrderCancelled {
  readonly type: 'OrderCancelled';
  readonly data: { readonly shopId: string; readonly reason: string };
}

/** Every event an order emits. */
export type OrderEvent = OrderPlaced | OrderAccepted | OrderRejected | OrderDelivered | OrderCancelled;
