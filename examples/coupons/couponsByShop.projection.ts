import { Type, type Static } from 'typebox';
import { defineProjection, descending, type EventMeta, type StoredEvent } from '@converge-es/converge';
import type { CouponEvent } from './coupon.events.js';

/**
 * What a listing says about a coupon. A fold has no clock: a coupon is `expired` once its
 * expiry process records `CouponExpired`, the moment after `expiresAt`.
 */
export const CouponStatus = Type.Union([Type.Literal('active'), Type.Literal('exhausted'), Type.Literal('revoked'), Type.Literal('expired')]);
export type CouponStatus = Static<typeof CouponStatus>;

/** One coupon as its shop's listing shows it, and as the routes serve it. */
export const CouponDocument = Type.Object({
  id: Type.String(),
  shopId: Type.String(),
  code: Type.String(),
  discount: Type.Integer(),
  minOrderAmount: Type.Integer(),
  expiresAt: Type.String({ format: 'date-time' }),
  maxRedemptions: Type.Integer(),
  redemptions: Type.Integer(),
  /** `maxRedemptions - redemptions`. */
  remaining: Type.Integer(),
  status: CouponStatus,
  /** When it was issued: the time of its `CouponIssued`. */
  issuedAt: Type.String({ format: 'date-time' }),
  /** Stream position of its `CouponIssued`: the listing's "newest first" order. */
  issuedPosition: Type.Integer(),
  /** Set once revoked. */
  revokedReason: Type.Optional(Type.String()),
});
export type CouponDoc = Static<typeof CouponDocument>;

function fold(doc: CouponDoc | undefined, event: StoredEvent<CouponEvent>, meta: EventMeta): CouponDoc | undefined {
  switch (event.type) {
    case 'CouponIssued': {
      if (doc) return doc;
      const { shopId, code, discount, minOrderAmount, expiresAt, maxRedemptions } = event.data;
      return {
        id: meta.id,
        shopId,
        code,
        discount,
        minOrderAmount,
        expiresAt,
        maxRedemptions,
        redemptions: 0,
        remaining: maxRedemptions,
        status: 'active',
        issuedAt: event.at,
        issuedPosition: meta.position,
      };
    }
    case 'CouponRedeemed': {
      if (!doc) return undefined;
      const redemptions = doc.redemptions + 1;
      const remaining = Math.max(0, doc.maxRedemptions - redemptions);
      const status = doc.status === 'revoked' || doc.status === 'expired' ? doc.status : remaining === 0 ? 'exhausted' : 'active';
      return { ...doc, redemptions, remaining, status };
    }
    case 'CouponRevoked':
      return doc && { ...doc, status: 'revoked', revokedReason: event.data.reason };
    case 'CouponExpired':
      return doc && (doc.status === 'revoked' ? doc : { ...doc, status: 'expired' });
    default: {
      const unknown: never = event;
      void unknown;
      return doc;
    }
  }
}

/**
 * Coupons by id, with one index entry per coupon, `[shopId, -issuedPosition]`: a shop's
 * coupons, newest issue first, are one prefix scan of `[shopId]`.
 */
export const couponsByShop = defineProjection.of(CouponDocument)<CouponEvent>({
  name: 'couponsByShop',
  version: 1,
  handles: ['CouponIssued', 'CouponRedeemed', 'CouponRevoked', 'CouponExpired'],
  key: (_event, meta) => meta.id,
  fold,
  indexes: (doc) => [[doc.shopId, descending(doc.issuedPosition)]],
});
