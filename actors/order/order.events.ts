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

/**
 * What every later event repeats from the placed order, so that read models (per-shop
 * stats, order history) need no lookup of the order.
 */
export interface OrderFacts {
  readonly shopId: string;
  readonly customerId: string;
  /** The food total of the order, as placed. */
  readonly total: number;
}

/** The shop accepted the order. */
export interface OrderAccepted {
  readonly type: 'OrderAccepted';
  readonly data: OrderFacts;
}

/** The shop turned the order down. */
export interface OrderRejected {
  readonly type: 'OrderRejected';
  readonly data: OrderFacts & { readonly reason: string };
}

/** The order reached the customer. */
export interface OrderDelivered {
  readonly type: 'OrderDelivered';
  readonly data: OrderFacts;
}

/** The order was called off before delivery. */
export interface OrderCancelled {
  readonly type: 'OrderCancelled';
  readonly data: OrderFacts & { readonly reason: string };
}

/** Every event an order emits. */
export type OrderEvent = OrderPlaced | OrderAccepted | OrderRejected | OrderDelivered | OrderCancelled;
