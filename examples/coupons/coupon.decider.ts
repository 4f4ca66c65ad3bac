import { defineAggregate, emit, reject, type DecideContext, type Decision } from '@converge-es/converge';
import { couponCommands, type CouponCommand } from './coupon.commands.js';
import { couponEvents, type CouponEvent, type CouponIssued } from './coupon.events.js';

/** The terms a coupon was issued with; they never change. */
export type CouponTerms = CouponIssued['data'];

/** What every issued coupon remembers besides its terms. */
interface Redemptions {
  /** How many times it was redeemed. */
  readonly redemptions: number;
  /**
   * Customer id → the order they redeemed it on: one redemption per customer. Read it
   * through `hasRedeemed`; ids are caller-chosen and `__proto__` passes the id pattern.
   */
  readonly redeemedBy: Readonly<Record<string, string>>;
}

/**
 * An issued coupon that has been neither revoked nor marked expired. Whether it is used up is
 * a rule, not a status; so is expiry until the expiry process records it (a timer can be late).
 */
export interface ActiveCoupon extends CouponTerms, Redemptions {
  readonly status: 'active';
}

/** A revoked coupon: kept so that it cannot be issued again under the same id. */
export interface RevokedCoupon extends CouponTerms, Redemptions {
  readonly status: 'revoked';
  readonly reason: string;
}

/** A coupon past its `expiresAt`, as its expiry process recorded. */
export interface ExpiredCoupon extends CouponTerms, Redemptions {
  readonly status: 'expired';
}

/** A coupon's state: plain JSON, so it can be snapshotted. */
export type CouponState = { readonly status: 'unissued' } | ActiveCoupon | RevokedCoupon | ExpiredCoupon;

/** True when this customer has redeemed the coupon. */
export function hasRedeemed(coupon: Redemptions, customerId: string): boolean {
  return Object.hasOwn(coupon.redeemedBy, customerId);
}

/** Why a coupon command can be refused. */
export type CouponRejection =
  | 'already_issued'
  | 'coupon_not_found'
  | 'coupon_revoked'
  | 'coupon_expired'
  | 'already_redeemed_by_customer'
  | 'coupon_exhausted'
  | 'coupon_not_expired'
  | 'unknown_command';

function decide(state: CouponState, command: CouponCommand, { now }: DecideContext): Decision<CouponEvent, CouponRejection> {
  switch (command.type) {
    case 'IssueCoupon': {
      if (state.status !== 'unissued') return reject('already_issued');
      const { shopId, code, discount, minOrderAmount, expiresAt, maxRedemptions } = command.data;
      return emit({ type: 'CouponIssued', data: { shopId, code, discount, minOrderAmount, expiresAt, maxRedemptions } });
    }
    case 'RedeemCoupon':
      return redeem(state, command.data, now);
    case 'RevokeCoupon': {
      if (state.status === 'unissued') return reject('coupon_not_found');
      if (state.status === 'revoked') return reject('coupon_revoked');
      if (state.status === 'expired') return reject('coupon_expired');
      return emit({ type: 'CouponRevoked', data: { reason: command.data.reason } });
    }
    case 'ExpireCoupon': {
      if (state.status === 'unissued') return reject('coupon_not_found');
      if (state.status === 'revoked') return reject('coupon_revoked');
      if (state.status === 'expired') return reject('coupon_expired');
      // The very instant of expiry still redeems, so a coupon expires only after it.
      if (now.getTime() <= Date.parse(state.expiresAt)) return reject('coupon_not_expired');
      return emit({ type: 'CouponExpired', data: {} });
    }
    default: {
      const unhandled: never = command;
      void unhandled;
      return reject('unknown_command');
    }
  }
}

/** The redemption rules, in the order a customer would want to hear them. */
function redeem(state: CouponState, data: Extract<CouponCommand, { type: 'RedeemCoupon' }>['data'], now: Date): Decision<CouponEvent, CouponRejection> {
  switch (state.status) {
    case 'unissued':
      return reject('coupon_not_found');
    case 'revoked':
      return reject('coupon_revoked');
    case 'expired':
      return reject('coupon_expired');
    case 'active': {
      const { customerId, orderId } = data;
      // Redeeming at the very instant of expiry still counts.
      if (now.getTime() > Date.parse(state.expiresAt)) return reject('coupon_expired');
      const redeemedAt = now.toISOString();
      if (hasRedeemed(state, customerId)) return reject('already_redeemed_by_customer');
      if (state.redemptions >= state.maxRedemptions) return reject('coupon_exhausted');
      return emit({ type: 'CouponRedeemed', data: { customerId, orderId, redeemedAt } });
    }
    default: {
      const unknown: never = state;
      void unknown;
      return reject('coupon_not_found');
    }
  }
}

/** Total: an event that does not fit the state (which `decide` never emits) leaves the state as it is. */
function evolve(state: CouponState, event: CouponEvent): CouponState {
  switch (state.status) {
    case 'unissued': {
      if (event.type !== 'CouponIssued') return state;
      const { shopId, code, discount, minOrderAmount, expiresAt, maxRedemptions } = event.data;
      return { status: 'active', shopId, code, discount, minOrderAmount, expiresAt, maxRedemptions, redemptions: 0, redeemedBy: {} };
    }
    case 'active':
      switch (event.type) {
        case 'CouponIssued':
          return state;
        case 'CouponRedeemed': {
          const { customerId, orderId } = event.data;
          if (hasRedeemed(state, customerId)) return state;
          // A computed key defines an own property, even for `__proto__`.
          return { ...state, redemptions: state.redemptions + 1, redeemedBy: { ...state.redeemedBy, [customerId]: orderId } };
        }
        case 'CouponRevoked':
          return { ...state, status: 'revoked', reason: event.data.reason };
        case 'CouponExpired':
          return { ...state, status: 'expired' };
        default: {
          // Reached at run time only by event types this version does not know.
          const unknown: never = event;
          void unknown;
          return state;
        }
      }
    case 'revoked':
    case 'expired':
      return state;
    default: {
      const unknown: never = state;
      void unknown;
      return state;
    }
  }
}

/**
 * The coupon aggregate: issued once by a shop, redeemed at most once per customer and at
 * most `maxRedemptions` times in all, until it expires or is revoked. Its expiry process
 * (`couponExpiry.process.ts`) records the expiry the moment after `expiresAt`.
 *
 * No `touches`/`eventTouches`: every redemption reads the shared redemption count, and a
 * revocation changes everything, so any two coupon commands conflict under a stale
 * `If-Match` — which is what omitting them says.
 */
export const coupon = defineAggregate({
  name: 'coupon',
  commands: couponCommands,
  events: couponEvents,
  initialState: (): CouponState => ({ status: 'unissued' }),
  decide,
  evolve,
});
