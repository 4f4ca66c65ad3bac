import t, { type Test } from 'tap';
import { createConverge, manualClock } from '@converge-es/converge';
import { startTestNats, tempDir } from '../helpers/nats.js';
import { get, post } from '../helpers/workers.js';
import { couponsApp } from '../../examples/coupons/app.js';

type Body = Record<string, unknown>;

t.test('the coupons example runs on a real nats-server: commands over HTTP, reads that wait for them', async (t) => {
  const nats = await startTestNats(t);
  // The public API only: the app in this process on a real nats-server and LMDB, its APIs on free ports.
  const clock = manualClock('2026-03-01T12:00:00Z');
  const converge = await createConverge(couponsApp, { config: { nats: { url: nats.url }, dataDir: tempDir(t), logLevel: 'silent' }, clock });
  t.teardown(() => converge.stop());
  const { command: cmd, query: q } = (await converge.listen({ commandPort: 0, queryPort: 0 })) as { command: string; query: string };

  // Each assertion goes to the test that makes it.
  const ok = async (t: Test, path: string, body: unknown) => {
    const res = await post(cmd, path, body);
    t.equal(res.status, 200, `${path} succeeds`);
    return res.body.position as number;
  };
  const rejected = async (t: Test, path: string, body: unknown, reason: string) => {
    const res = await post(cmd, path, body);
    t.same([res.status, res.body.error, res.body.reason], [422, 'rejected', reason], `${path} is rejected: ${reason}`);
  };
  const terms = { shopId: 's1', code: 'WELCOME10', discount: 3000, minOrderAmount: 15000, expiresAt: '2026-06-30T23:59:59Z', maxRedemptions: 2 };
  const at = (customerId: string) => ({ customerId, orderId: `o-${customerId}` });

  await ok(t, '/coupons/k1/issue', terms);
  await ok(t, '/coupons/k2/issue', { ...terms, code: 'SPRING' });
  await ok(t, '/coupons/k3/issue', { ...terms, shopId: 's2', code: 'ELSEWHERE' });
  const redeemedOnce = await ok(t, '/coupons/k1/redeem', at('c1'));

  t.test('every rule answers 422 with its reason', async (t) => {
    await rejected(t, '/coupons/k1/issue', terms, 'already_issued');
    await rejected(t, '/coupons/nope/redeem', at('c1'), 'coupon_not_found');
    await rejected(t, '/coupons/k1/redeem', at('c1'), 'already_redeemed_by_customer');
    // The server's clock decides, not the caller: a coupon issued already past its expiry
    // is refused whether its expiry process has recorded CouponExpired yet or not.
    await ok(t, '/coupons/k0/issue', { ...terms, shopId: 's3', code: 'LATE', expiresAt: '2026-02-28T00:00:00Z' });
    await rejected(t, '/coupons/k0/redeem', at('c2'), 'coupon_expired');
  });

  t.test('read-your-writes: X-Min-Position waits for the redemption', async (t) => {
    const res = await get(`${q}/coupons/k1`, { 'x-min-position': String(redeemedOnce) });
    t.equal(res.status, 200);
    t.match(res.body, { id: 'k1', shopId: 's1', code: 'WELCOME10', redemptions: 1, remaining: 1, status: 'active', issuedPosition: Number });
    t.equal((await get(`${q}/coupons/k1?minPosition=999999&waitMs=50`)).status, 504, 'a position it cannot reach in time');
  });

  t.test('the last redemption exhausts the coupon; revocation ends another', async (t) => {
    await ok(t, '/coupons/k1/redeem', at('c2'));
    await rejected(t, '/coupons/k1/redeem', at('c3'), 'coupon_exhausted');
    await ok(t, '/coupons/k2/revoke', { reason: 'printed with a typo' });
    await rejected(t, '/coupons/k2/redeem', at('c1'), 'coupon_revoked');
    const last = await post(cmd, '/coupons/k2/revoke', { reason: 'again' });
    t.same(last.body.reason, 'coupon_revoked');
    const wait = { 'x-min-position': String(await ok(t, '/coupons/k4/issue', { ...terms, code: 'SUMMER', maxRedemptions: 100 })) };

    const list = await get(`${q}/shops/s1/coupons`, wait);
    t.equal(list.status, 200);
    t.same(
      (list.body.items as Body[]).map((c) => [c.id, c.code, c.remaining, c.status]),
      [
        ['k4', 'SUMMER', 100, 'active'],
        ['k2', 'SPRING', 2, 'revoked'],
        ['k1', 'WELCOME10', 0, 'exhausted'],
      ],
      'newest issue first, with remaining redemptions and status',
    );
    t.notOk(list.body.next, 'one page');
    t.same(((await get(`${q}/coupons/k2`)).body as Body).revokedReason, 'printed with a typo');
    t.same(((await get(`${q}/shops/s2/coupons`)).body.items as Body[]).map((c) => c.id), ['k3']);
    t.same((await get(`${q}/shops/s9/coupons`)).body, { items: [] }, 'a shop with no coupons');
  });

  t.test('pages follow the cursor', async (t) => {
    const first = await get(`${q}/shops/s1/coupons?limit=2`);
    t.same((first.body.items as Body[]).map((c) => c.id), ['k4', 'k2']);
    t.type(first.body.next, 'string');
    const rest = await get(`${q}/shops/s1/coupons?limit=2&cursor=${first.body.next as string}`);
    t.same((rest.body.items as Body[]).map((c) => c.id), ['k1']);
    t.notOk(rest.body.next);
    t.same((await get(`${q}/shops/s2/coupons?cursor=${first.body.next as string}`)).body.error, 'invalid_cursor', "another shop's cursor");
  });

  t.test('bad input is a 400 at the edge, an unknown coupon a 404', async (t) => {
    const bad = async (path: string, body: Body) => (await post(cmd, path, body)).status;
    t.equal(await bad('/coupons/k9/issue', { ...terms, code: 'lower' }), 400, 'code: A-Z and 0-9 only');
    t.equal(await bad('/coupons/k9/issue', { ...terms, code: 'X'.repeat(33) }), 400, 'code: at most 32');
    t.equal(await bad('/coupons/k9/issue', { ...terms, discount: 99 }), 400, 'discount: at least 100');
    t.equal(await bad('/coupons/k9/issue', { ...terms, discount: 100.5 }), 400, 'discount: whole KRW');
    t.equal(await bad('/coupons/k9/issue', { ...terms, maxRedemptions: 0 }), 400);
    t.equal(await bad('/coupons/k9/issue', { ...terms, expiresAt: 'next week' }), 400, 'expiresAt: a date-time');
    t.equal(await bad('/coupons/k1/redeem', { ...at('c9'), redeemedAt: '2026-03-01T00:00:00Z' }), 400, 'redeemedAt is not the caller\'s to say');
    t.equal(await bad('/coupons/k1/revoke', { reason: '' }), 400);
    t.equal((await post(cmd, '/coupons/k1/split', {})).body.error, 'unknown_command');
    const missing = await get(`${q}/coupons/nope`);
    t.same([missing.status, missing.body.error], [404, 'not_found']);
  });

  t.test('converge serves the history and state of every aggregate', async (t) => {
    const history = await get(`${q}/coupons/k1/history`);
    t.same((history.body.events as Body[]).map((e) => e.type), ['CouponIssued', 'CouponRedeemed', 'CouponRedeemed']);
    const state = await get(`${q}/coupons/k1/state?atVersion=2`);
    t.match(state.body, { version: 2, state: { status: 'active', redemptions: 1, redeemedBy: { c1: 'o-c1' } } });
  });

  t.test('the expiry process marks coupons expired by their durable timers, and leaves revoked ones be', async (t) => {
    await converge.settled();
    t.same(((await get(`${q}/coupons/k0`)).body as Body).status, 'expired', 'the coupon issued past its expiry, at once');
    t.same(((await get(`${q}/coupons/k3`)).body as Body).status, 'active', 'before its expiresAt');
    clock.set('2026-06-30T23:59:59Z');
    await converge.settled();
    t.same(((await get(`${q}/coupons/k3`)).body as Body).status, 'active', 'at the very instant it still counts');
    clock.set('2026-07-01T00:00:00Z');
    await converge.settled();
    const statuses = await Promise.all(['k1', 'k2', 'k3', 'k4'].map(async (id) => ((await get(`${q}/coupons/${id}`)).body as Body).status));
    t.same(statuses, ['expired', 'revoked', 'expired', 'expired'], 'exhausted and active coupons expire; a revoked one stays revoked');
    const history = await get(`${q}/coupons/k3/history`);
    t.same((history.body.events as Body[]).map((e) => e.type), ['CouponIssued', 'CouponExpired'], 'one expiry, recorded once');
    await rejected(t, '/coupons/k3/redeem', at('c1'), 'coupon_expired');
  });
});
