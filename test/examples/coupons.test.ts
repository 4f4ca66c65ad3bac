import t from 'tap';
import { shop } from '../../actors/shop/shop.decider.js';
import type { Test } from 'tap';
import { commit, commitAt, deciderSpec, processSpec, projectionSpec, SPEC_TIME } from '../../src/testing.js';
import { couponExpiry } from '../../examples/coupons/couponExpiry.process.js';
import { coupon } from '../../examples/coupons/coupon.decider.js';
import type { CouponEvent } from '../../examples/coupons/coupon.events.js';
import { couponsByShop, type CouponDoc } from '../../examples/coupons/couponsByShop.projection.js';

// The coupons example's specifications, on converge's own rehydration and projector apply paths.

/** The tap adapter: the specs' one assertion is tap's `t.same`. */
const tapAssert = (t: Test) => ({
  assert: { deepEqual: (a: unknown, e: unknown, m?: string) => void (m === undefined ? t.same(a, e) : t.same(a, e, m)) },
});
const decider = (t: Test) => deciderSpec(coupon, tapAssert(t));
const projection = (t: Test) => projectionSpec(couponsByShop, tapAssert(t));

const terms = {
  shopId: 's1',
  code: 'WELCOME10',
  discount: 3000,
  minOrderAmount: 15000,
  expiresAt: '2026-06-30T23:59:59.000Z',
  maxRedemptions: 2,
};
const issued: CouponEvent = { type: 'CouponIssued', data: terms };
const redeemed = (customerId: string, orderId = `o-${customerId}`, redeemedAt = '2026-03-01T12:00:00.000Z'): CouponEvent => ({
  type: 'CouponRedeemed',
  data: { customerId, orderId, redeemedAt },
});
const revoked: CouponEvent = { type: 'CouponRevoked', data: { reason: 'typo in the code' } };
const redeem = (customerId: string, orderId = `o-${customerId}`) => ({ type: 'RedeemCoupon', data: { customerId, orderId } }) as const;
/** When converge receives a redemption: `decide`'s `now`, which the coupon compares with its expiry. */
const at = (time = '2026-03-01T12:00:00.000Z') => ({ now: time });

t.test('issue', async (t) => {
  t.test('a new coupon is issued with its terms', async (t) => {
    decider(t).given([]).when({ type: 'IssueCoupon', data: terms }).then([issued]);
  });
  t.test('an issued coupon cannot be issued again: already_issued', async (t) => {
    decider(t).given([issued]).when({ type: 'IssueCoupon', data: { ...terms, code: 'OTHER' } }).rejects('already_issued');
  });
  t.test('nor can a revoked one', async (t) => {
    decider(t).given([issued, revoked]).when({ type: 'IssueCoupon', data: terms }).rejects('already_issued');
  });
});

t.test('redeem', async (t) => {
  t.test('a customer redeems an active coupon', async (t) => {
    decider(t).given([issued]).when(redeem('c1'), at()).then([redeemed('c1')]);
  });
  t.test('a coupon never issued: coupon_not_found', async (t) => {
    decider(t).given([]).when(redeem('c1'), at()).rejects('coupon_not_found');
  });
  t.test('a revoked coupon: coupon_revoked', async (t) => {
    decider(t).given([issued, revoked]).when(redeem('c1'), at()).rejects('coupon_revoked');
  });
  t.test('after expiresAt: coupon_expired; at the very instant it still counts', async (t) => {
    decider(t).given([issued]).when(redeem('c1'), at('2026-07-01T00:00:00.000Z')).rejects('coupon_expired');
    decider(t).given([issued]).when(redeem('c1'), at('2026-06-30T23:59:59.001Z')).rejects('coupon_expired');
    decider(t).given([issued]).when(redeem('c1'), at(terms.expiresAt)).then([redeemed('c1', 'o-c1', terms.expiresAt)]);
  });
  t.test('the redemption is dated by the time converge received it, not by anything the caller says', async (t) => {
    decider(t).given([issued]).when(redeem('c1'), at('2026-05-05T05:05:05.000Z')).then([redeemed('c1', 'o-c1', '2026-05-05T05:05:05.000Z')]);
    decider(t).given([issued]).when({ type: 'RedeemCoupon', data: { customerId: 'c1', orderId: 'o1', redeemedAt: '2020-01-01T00:00:00Z' } } as never, at()).isInvalid('/');
  });
  t.test('one redemption per customer, even on another order: already_redeemed_by_customer', async (t) => {
    decider(t).given([issued, redeemed('c1')]).when(redeem('c1', 'o-other'), at()).rejects('already_redeemed_by_customer');
    decider(t).given([issued, redeemed('c1')]).when(redeem('c2'), at()).then([redeemed('c2')]);
  });
  t.test('maxRedemptions reached: coupon_exhausted', async (t) => {
    decider(t).given([issued, redeemed('c1'), redeemed('c2')]).when(redeem('c3'), at()).rejects('coupon_exhausted');
  });
  t.test('rules are checked in order: revoked before expired before the customer before exhaustion', async (t) => {
    const late = '2027-01-01T00:00:00.000Z';
    decider(t).given([issued, redeemed('c1'), redeemed('c2'), revoked]).when(redeem('c1'), at(late)).rejects('coupon_revoked');
    decider(t).given([issued, redeemed('c1'), redeemed('c2')]).when(redeem('c1'), at(late)).rejects('coupon_expired');
    decider(t).given([issued, redeemed('c1'), redeemed('c2')]).when(redeem('c1'), at()).rejects('already_redeemed_by_customer');
  });
  t.test('customer ids that name Object.prototype members are ordinary customers', async (t) => {
    for (const id of ['__proto__', 'constructor', 'toString']) {
      decider(t).given([issued]).when(redeem(id), at()).then([redeemed(id)]);
      decider(t).given([issued, redeemed(id)]).when(redeem(id, 'o-again'), at()).rejects('already_redeemed_by_customer');
    }
  });
});

t.test('revoke', async (t) => {
  t.test('an issued coupon is revoked with a reason, used up or not', async (t) => {
    decider(t).given([issued]).when({ type: 'RevokeCoupon', data: { reason: 'typo in the code' } }).then([revoked]);
    decider(t).given([issued, redeemed('c1'), redeemed('c2')]).when({ type: 'RevokeCoupon', data: { reason: 'typo in the code' } }).then([revoked]);
  });
  t.test('a coupon never issued: coupon_not_found', async (t) => {
    decider(t).given([]).when({ type: 'RevokeCoupon', data: { reason: 'x' } }).rejects('coupon_not_found');
  });
  t.test('twice: coupon_revoked', async (t) => {
    decider(t).given([issued, revoked]).when({ type: 'RevokeCoupon', data: { reason: 'again' } }).rejects('coupon_revoked');
  });
});

t.test('the fold', async (t) => {
  t.test('nothing until issued', async (t) => {
    t.same(decider(t).given([]).state, { status: 'unissued' });
  });
  t.test('issue, redemptions and revocation', async (t) => {
    t.same(decider(t).given([issued]).state, { status: 'active', ...terms, redemptions: 0, redeemedBy: {} });
    t.same(decider(t).given([issued, redeemed('c1'), redeemed('c2', 'o9')]).state, {
      status: 'active', ...terms, redemptions: 2, redeemedBy: { c1: 'o-c1', c2: 'o9' },
    });
    t.same(decider(t).given([issued, redeemed('c1'), revoked]).state, {
      status: 'revoked', ...terms, redemptions: 1, redeemedBy: { c1: 'o-c1' }, reason: 'typo in the code',
    });
  });
  t.test('a `__proto__` customer is an own property, not a prototype', async (t) => {
    const state = decider(t).given([issued, redeemed('__proto__')]).state;
    t.equal(state.status === 'active' && state.redemptions, 1);
    t.ok(state.status === 'active' && Object.hasOwn(state.redeemedBy, '__proto__'));
    t.equal(Object.getPrototypeOf(state.status === 'active' ? state.redeemedBy : {}), Object.prototype);
  });
  t.test('evolve is total: events that do not fit the state leave it be', async (t) => {
    t.same(decider(t).given([redeemed('c1'), revoked]).state, { status: 'unissued' }, 'facts about a coupon never issued');
    t.same(decider(t).given([issued, { type: 'CouponIssued', data: { ...terms, code: 'LATER' } }]).state, decider(t).given([issued]).state, 'a second issue');
    t.same(decider(t).given([issued, redeemed('c1'), redeemed('c1', 'o2')]).state, decider(t).given([issued, redeemed('c1')]).state, 'a second redemption by one customer');
    t.same(decider(t).given([issued, revoked, redeemed('c1'), revoked]).state, decider(t).given([issued, revoked]).state, 'anything after revocation');
    t.same(decider(t).givenStored([issued, { type: 'CouponSplit', data: {} }]).state, decider(t).given([issued]).state, 'an event type this version does not know');
  });
});

const doc: CouponDoc = {
  id: 'k1',
  ...terms,
  redemptions: 0,
  remaining: 2,
  status: 'active',
  issuedAt: '2026-02-01T09:00:00.000Z',
  issuedPosition: 1,
};

t.test('couponsByShop: the document', async (t) => {
  t.test('issue makes it, with the issue time and position', async (t) => {
    projection(t).given(commitAt('2026-02-01T09:00:00.000Z', coupon, 'k1', issued)).then('k1', doc);
  });
  t.test('redemptions count down the remaining ones; the last makes it exhausted', async (t) => {
    const first = commitAt('2026-02-01T09:00:00.000Z', coupon, 'k1', issued);
    projection(t).given(first, commit(coupon, 'k1', redeemed('c1'))).then('k1', { ...doc, redemptions: 1, remaining: 1 });
    projection(t)
      .given(first, commit(coupon, 'k1', redeemed('c1')), commit(coupon, 'k1', redeemed('c2')))
      .then('k1', { ...doc, redemptions: 2, remaining: 0, status: 'exhausted' });
  });
  t.test('revocation is the last word', async (t) => {
    const first = commitAt('2026-02-01T09:00:00.000Z', coupon, 'k1', issued);
    const outcome = projection(t)
      .given(first, commit(coupon, 'k1', redeemed('c1')), commit(coupon, 'k1', revoked))
      .then('k1', { ...doc, redemptions: 1, remaining: 1, status: 'revoked', revokedReason: 'typo in the code' });
    t.same(outcome.parked(), [], 'nothing parked');
    t.equal(outcome.position, 3);
    projection(t)
      .given(first, commit(coupon, 'k1', redeemed('c1'), redeemed('c2'), revoked))
      .then('k1', { ...doc, redemptions: 2, remaining: 0, status: 'revoked', revokedReason: 'typo in the code' });
  });
  t.test('facts about a coupon never issued make no document', async (t) => {
    const outcome = projection(t).given(commit(coupon, 'ghost', redeemed('c1'), revoked)).then('ghost', undefined);
    t.same(outcome.indexEntries(), []);
  });
  t.test('events of other aggregates are not its business', async (t) => {
    const outcome = projection(t).given(commit(shop, 's1', { type: 'ShopRegistered', data: { name: 'x', category: 'korean', ownerId: 'o1', minOrderAmount: 0, deliveryFee: 0 } }));
    t.same([outcome.indexEntries(), outcome.parked(), outcome.position], [[], [], 1]);
  });
});

t.test('couponsByShop: the index lists a shop\'s coupons, newest issue first', async (t) => {
  const issue = (shopId: string, code: string): CouponEvent => ({ type: 'CouponIssued', data: { ...terms, shopId, code } });
  const outcome = projection(t).given(
    commit(coupon, 'k1', issue('s1', 'FIRST')),
    commit(coupon, 'k2', issue('s2', 'ELSEWHERE')),
    commit(coupon, 'k3', issue('s1', 'SECOND')),
    commit(coupon, 'k1', redeemed('c1')),
    commit(coupon, 'k4', issue('s1', 'THIRD')),
    commit(coupon, 'k3', revoked),
  );
  t.same(outcome.indexEntries(), [
    ['s1', -5, 'k4'],
    ['s1', -3, 'k3'],
    ['s1', -1, 'k1'],
    ['s2', -2, 'k2'],
  ], 'one entry per coupon; redemptions and revocations do not move it');
  t.same(
    outcome.byIndex(['s1']).map((d) => [d.id, d.code, d.remaining, d.status]),
    [
      ['k4', 'THIRD', 2, 'active'],
      ['k3', 'SECOND', 2, 'revoked'],
      ['k1', 'FIRST', 1, 'active'],
    ],
  );
  t.same(outcome.byIndex(['s2']).map((d) => d.id), ['k2']);
  t.same(outcome.byIndex(['s3']), [], 'a shop with no coupons');
  t.equal(SPEC_TIME, outcome.doc('k4')?.issuedAt, 'undated commits carry the spec time');
});

t.test('expire', async (t) => {
  const expired: CouponEvent = { type: 'CouponExpired', data: {} };
  t.test('the moment after expiresAt, an active coupon expires', async (t) => {
    decider(t).given([issued]).when({ type: 'ExpireCoupon', data: {} }, at('2026-06-30T23:59:59.001Z')).then([expired]);
  });
  t.test('at the very instant it still counts: coupon_not_expired', async (t) => {
    decider(t).given([issued]).when({ type: 'ExpireCoupon', data: {} }, at('2026-06-30T23:59:59.000Z')).rejects('coupon_not_expired');
  });
  t.test('once expired, it redeems, revokes and expires no more: coupon_expired', async (t) => {
    decider(t).given([issued, expired]).when(redeem('c1'), at()).rejects('coupon_expired');
    decider(t).given([issued, expired]).when({ type: 'RevokeCoupon', data: { reason: 'late' } }, at()).rejects('coupon_expired');
    decider(t).given([issued, expired]).when({ type: 'ExpireCoupon', data: {} }, at('2026-07-01T00:00:00.000Z')).rejects('coupon_expired');
  });
  t.test('a revoked coupon does not expire: coupon_revoked', async (t) => {
    decider(t).given([issued, revoked]).when({ type: 'ExpireCoupon', data: {} }, at('2026-07-01T00:00:00.000Z')).rejects('coupon_revoked');
  });
  t.test('the listing says expired, but a revoked coupon stays revoked', async (t) => {
    const doc = projection(t).given(commit(coupon, 'k1', issued, redeemed('c1'), expired)).doc('k1');
    t.same([doc?.status, doc?.remaining], ['expired', 1]);
    t.same(projection(t).given(commit(coupon, 'k1', issued, revoked, expired)).doc('k1')?.status, 'revoked');
  });
});

t.test('couponExpiry: issuing a coupon schedules its expiry for the millisecond after expiresAt', async (t) => {
  processSpec(couponExpiry, tapAssert(t))
    .given()
    .when(commit(coupon, 'k1', issued))
    .then({ schedules: [{ name: 'expire', at: '2026-06-30T23:59:59.001Z' }], commands: [], ended: false });
});

t.test('couponExpiry: a revocation ends the instance and cancels the timer', async (t) => {
  processSpec(couponExpiry, tapAssert(t))
    .given(commit(coupon, 'k1', issued))
    .when(commit(coupon, 'k1', revoked))
    .then({ cancels: ['expire'], commands: [], ended: true });
});

t.test('couponExpiry: the timer firing sends ExpireCoupon and ends the instance', async (t) => {
  processSpec(couponExpiry, tapAssert(t))
    .given(commit(coupon, 'k1', issued))
    .whenTimer('expire')
    .then({ commands: [{ aggregate: 'coupon', id: 'k1', type: 'ExpireCoupon', data: {} }], ended: true });
});
