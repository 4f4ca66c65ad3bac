import { Type } from 'typebox';
import { defineEvents, type EventOf } from '@converge-es/converge';

/** The coupon's events, declared once: their types and the check of every event emitted come from here. */
export const couponEvents = defineEvents({
  /** A shop issued a coupon with these terms. */
  CouponIssued: Type.Object({
    shopId: Type.String(),
    code: Type.String(),
    discount: Type.Integer({ minimum: 1 }),
    minOrderAmount: Type.Integer({ minimum: 0 }),
    expiresAt: Type.String({ format: 'date-time' }),
    maxRedemptions: Type.Integer({ minimum: 1 }),
  }),
  /** A customer used the coupon on an order, at `redeemedAt` (when converge received the redemption). */
  CouponRedeemed: Type.Object({ customerId: Type.String(), orderId: Type.String(), redeemedAt: Type.String({ format: 'date-time' }) }),
  /** The shop withdrew the coupon; it can no longer be redeemed. */
  CouponRevoked: Type.Object({ reason: Type.String() }),
  /** The coupon passed its `expiresAt`; recorded by its expiry process, the moment after. */
  CouponExpired: Type.Object({}),
});

/** Every event a coupon emits. */
export type CouponEvent = EventOf<typeof couponEvents>;
export type CouponIssued = EventOf<typeof couponEvents, 'CouponIssued'>;
export type CouponRedeemed = EventOf<typeof couponEvents, 'CouponRedeemed'>;
export type CouponRevoked = EventOf<typeof couponEvents, 'CouponRevoked'>;
export type CouponExpired = EventOf<typeof couponEvents, 'CouponExpired'>;
