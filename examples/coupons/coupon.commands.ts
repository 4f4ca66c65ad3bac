import { Type } from 'typebox';
import type { CommandOf } from '@converge-es/converge';

// Limits live in the schemas, so bad input is a 400 at the HTTP edge and never reaches the decider.

/** An id chosen by the caller: 1–64 URL-safe characters, as converge's routes accept them. */
export const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

/** A coupon code as customers type it: 1–32 characters of A–Z and 0–9. */
export const Code = Type.String({ minLength: 1, maxLength: 32, pattern: '^[A-Z0-9]+$' });

/** An instant in ISO 8601 (`2026-12-31T23:59:59Z`). */
export const Instant = Type.String({ format: 'date-time' });

/** Body of `issue`: the coupon's terms, fixed for its lifetime. */
export const IssueCouponBody = Type.Object(
  {
    shopId: Id,
    code: Code,
    /** KRW taken off an order. */
    discount: Type.Integer({ minimum: 100, maximum: 100_000 }),
    /** The smallest order, in KRW, the coupon applies to. */
    minOrderAmount: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
    expiresAt: Instant,
    maxRedemptions: Type.Integer({ minimum: 1, maximum: 100_000 }),
  },
  { additionalProperties: false },
);

/**
 * Body of `redeem`. When it happens is the server's business, not the caller's: the decider
 * compares the time converge received the command (`now`) with `expiresAt`.
 */
export const RedeemCouponBody = Type.Object({ customerId: Id, orderId: Id }, { additionalProperties: false });

/** Body of `revoke`. */
export const RevokeCouponBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 500 }) },
  { additionalProperties: false },
);

/** Body of `expire`: nothing; the time is the server's (`now`). */
export const ExpireCouponBody = Type.Object({}, { additionalProperties: false });

/** The coupon's commands, `POST /coupons/<id>/<segment>` for all but the internal one: URL segment → command type and body schema. */
export const couponCommands = {
  issue: { type: 'IssueCoupon', schema: IssueCouponBody },
  redeem: { type: 'RedeemCoupon', schema: RedeemCouponBody },
  revoke: { type: 'RevokeCoupon', schema: RevokeCouponBody },
  /** Sent by the coupon's expiry process when its timer fires; not reached over HTTP. */
  expire: { type: 'ExpireCoupon', schema: ExpireCouponBody, internal: true },
} as const;

/** A coupon command as `decide` receives it, its `data` already validated against its schema. */
export type CouponCommand = CommandOf<typeof couponCommands>;
