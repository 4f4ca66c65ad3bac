/** A customer reviewed a delivered order; `shopId` is copied from the order for per-shop views. */
export interface ReviewPosted {
  readonly type: 'ReviewPosted';
  readonly data: {
    readonly orderId: string;
    readonly shopId: string;
    readonly customerId: string;
    readonly rating: number;
    readonly text: string;
  };
}

/**
 * A review was withdrawn. It carries the rating it removes, so a read model can adjust a
 * shop's average without keeping every review.
 */
export interface ReviewDeleted {
  readonly type: 'ReviewDeleted';
  readonly data: { readonly orderId: string; readonly shopId: string; readonly rating: number };
}

/** Every event a review emits. */
export type ReviewEvent = ReviewPosted | ReviewDeleted;
