import { defineProjection, descending, type EventMeta, type StoredEvent } from '../../src/index.js';
import type { CouponEvent } from './coupon.events.js';

/** What a listing says about a coupon. Expiry is not a status: a fold has no clock, so readers compare `expiresAt`. */
export type CouponStatus = 'active' | 'exhausted' | 'revoked';

/** One coupon as its shop's listing shows it. */
export interface CouponDoc {
  readonly id: string;
  readonly shopId: string;
  readonly code: string;
  readonly discount: number;
  readonly minOrderAmount: number;
  readonly expiresAt: string;
  readonly maxRedemptions: number;
  readonly redemptions: number;
  /** `maxRedemptions - redemptions`. */
  readonly remaining: number;
  readonly status: CouponStatus;
  /** When it was issued: the time of its `CouponIssued`. */
  readonly issuedAt: string;
  /** Stream position of its `CouponIssued`: the listing's "newest first" order. */
  readonly issuedPosition: number;
  /** Set once revoked. */
  readonly revokedReason?: string;
}

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
      const status = doc.status === 'revoked' ? 'revoked' : remaining === 0 ? 'exhausted' : 'active';
      return { ...doc, redemptions, remaining, status };
    }
    case 'CouponRevoked':
      return doc && { ...doc, status: 'revoked', revokedReason: event.data.reason };
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
export const couponsByShop = defineProjection<CouponEvent, CouponDoc>({
  name: 'couponsByShop',
  version: 1,
  handles: ['CouponIssued', 'CouponRedeemed', 'CouponRevoked'],
  key: (_event, meta) => meta.id,
  fold,
  indexes: (doc) => [[doc.shopId, descending(doc.issuedPosition)]],
});
