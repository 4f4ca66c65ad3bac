/** A shop issued a coupon with these terms. */
export interface CouponIssued {
  readonly type: 'CouponIssued';
  readonly data: {
    readonly shopId: string;
    readonly code: string;
    readonly discount: number;
    readonly minOrderAmount: number;
    readonly expiresAt: string;
    readonly maxRedemptions: number;
  };
}

/** A customer used the coupon on an order. */
export interface CouponRedeemed {
  readonly type: 'CouponRedeemed';
  readonly data: { readonly customerId: string; readonly orderId: string; readonly redeemedAt: string };
}

/** The shop withdrew the coupon; it can no longer be redeemed. */
export interface CouponRevoked {
  readonly type: 'CouponRevoked';
  readonly data: { readonly reason: string };
}

/** Every event a coupon emits. */
export type CouponEvent = CouponIssued | CouponRedeemed | CouponRevoked;
