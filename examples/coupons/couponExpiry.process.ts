import { defineProcess, type StoredEvent } from '@converge-es/converge';
import type { CouponEvent } from './coupon.events.js';

/**
 * A coupon expires by a durable timer. One instance per coupon: its issue starts the
 * instance and schedules `expire` for the millisecond after `expiresAt` (the very instant
 * still redeems); a revocation ends the instance, which cancels the timer. When it fires,
 * the process sends `ExpireCoupon`, and the coupon records `CouponExpired`.
 */
export const couponExpiry = defineProcess({
  name: 'couponExpiry',
  handles: ['CouponIssued', 'CouponRevoked'],
  correlate: (event: StoredEvent<CouponEvent>, meta) => ({ id: meta.id, start: event.type === 'CouponIssued' }),
  initialState: () => ({}),
  decide(_state, input, { id }) {
    if (input.kind === 'timer') return { commands: [{ aggregate: 'coupon', id, type: 'ExpireCoupon', data: {} }], end: true };
    if (input.event.type === 'CouponIssued') return { timers: [{ schedule: 'expire', at: new Date(Date.parse(input.event.data.expiresAt) + 1) }] };
    return { end: true };
  },
  evolve: (state) => state,
});
