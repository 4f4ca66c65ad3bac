import t from 'tap';
import { Value } from 'typebox/value';
import { order, type OrderState } from '../../actors/order/order.decider.js';
import type { OrderEvent } from '../../actors/order/order.events.js';
import { reviewCommands, type ReviewCommand } from '../../actors/review/review.commands.js';
import { review } from '../../actors/review/review.decider.js';
import type { ReviewEvent } from '../../actors/review/review.events.js';
import { deciderSpec } from '../../src/testing.js';
import { tapAssert } from '../helpers/spec.js';

const orderPlaced: OrderEvent = {
  type: 'OrderPlaced',
  data: { shopId: 's1', customerId: 'c1', lines: [{ menuId: 'm1', name: 'Bibimbap', price: 9000, quantity: 2 }], total: 18000, deliveryFee: 0 },
};
const orderState = (...events: OrderEvent[]): OrderState => deciderSpec(order).given([orderPlaced, ...events]).state;
const facts = { shopId: 's1', customerId: 'c1', total: 18000 };
const deliveredOrder = orderState({ type: 'OrderAccepted', data: facts }, { type: 'OrderDelivered', data: facts });

const post: ReviewCommand = { type: 'PostReview', data: { orderId: 'o1', customerId: 'c1', rating: 4, text: 'Good, but cold.' } };
const posted: ReviewEvent = { type: 'ReviewPosted', data: { orderId: 'o1', shopId: 's1', customerId: 'c1', rating: 4, text: 'Good, but cold.' } };
const deleted: ReviewEvent = { type: 'ReviewDeleted', data: { orderId: 'o1', shopId: 's1', rating: 4 } };

t.test('post', async (t) => {
  t.test('a review of a delivered order takes the shop from the order', async (t) => {
    deciderSpec(review, { assert: tapAssert(t) }).given([], { order: deliveredOrder }).when(post).then([posted]);
  });
  t.test('a review id can be posted only once, even after deletion', async (t) => {
    deciderSpec(review, { assert: tapAssert(t) }).given([posted], { order: deliveredOrder }).when(post).rejects('already_reviewed');
    deciderSpec(review, { assert: tapAssert(t) }).given([posted, deleted], { order: deliveredOrder }).when(post).rejects('already_reviewed');
  });
  t.test('a missing or undelivered order cannot be reviewed', async (t) => {
    deciderSpec(review, { assert: tapAssert(t) }).given([], {}).when(post).rejects('order_not_delivered');
    deciderSpec(review, { assert: tapAssert(t) }).given([], { order: order.initialState() }).when(post).rejects('order_not_delivered');
    deciderSpec(review, { assert: tapAssert(t) }).given([], { order: orderState() }).when(post).rejects('order_not_delivered');
    deciderSpec(review, { assert: tapAssert(t) }).given([], { order: orderState({ type: 'OrderAccepted', data: facts }) }).when(post).rejects('order_not_delivered');
    deciderSpec(review, { assert: tapAssert(t) }).given([], { order: orderState({ type: 'OrderCancelled', data: { ...facts, reason: 'r' } }) }).when(post).rejects('order_not_delivered');
  });
  t.test('only the customer of the order can review it', async (t) => {
    deciderSpec(review, { assert: tapAssert(t) })
      .given([], { order: deliveredOrder })
      .when({ type: 'PostReview', data: { ...post.data, customerId: 'c2' } })
      .rejects('not_order_customer');
  });
  t.test('requires reads the order named in the command, and only for post', async (t) => {
    t.same(review.requires?.(post), { order: { aggregate: 'order', id: 'o1' } });
    t.equal(review.requires?.({ type: 'DeleteReview', data: {} }), undefined);
  });
  t.test('evolve records the posted review', async (t) => {
    t.same([posted].reduce(review.evolve, review.initialState()), { status: 'posted', ...posted.data });
  });
});

t.test('delete', async (t) => {
  t.test('deleting a posted review carries the rating it removes', async (t) => {
    deciderSpec(review, { assert: tapAssert(t) }).given([posted]).when({ type: 'DeleteReview', data: {} }).then([deleted]);
  });
  t.test('a review never posted, or already deleted, is not found', async (t) => {
    deciderSpec(review, { assert: tapAssert(t) }).given([]).when({ type: 'DeleteReview', data: {} }).rejects('review_not_found');
    deciderSpec(review, { assert: tapAssert(t) }).given([posted, deleted]).when({ type: 'DeleteReview', data: {} }).rejects('review_not_found');
  });
  t.test('evolve marks the review deleted and keeps what it said', async (t) => {
    t.same([posted, deleted].reduce(review.evolve, review.initialState()), { status: 'deleted', ...posted.data });
  });
});

t.test('evolve is total', async (t) => {
  t.test('an unknown event type leaves the state unchanged', async (t) => {
    const before = [posted].reduce(review.evolve, review.initialState());
    t.equal(review.evolve(before, { type: 'ReviewLiked', data: {} } as unknown as ReviewEvent), before);
  });
  t.test('a deletion before any post and a second post are ignored', async (t) => {
    t.same(review.evolve(review.initialState(), deleted), { status: 'none' });
    const before = [posted].reduce(review.evolve, review.initialState());
    t.equal(review.evolve(before, posted), before);
  });
});

t.test('every command conflicts with every other: no touches are declared', async (t) => {
  t.equal(review.touches, undefined, 'a stale If-Match on a review is always a conflict');
  t.equal(review.eventTouches, undefined);
});

t.test('body schemas accept a valid body and reject an extra property', async (t) => {
  const valid: { [K in keyof typeof reviewCommands]: Record<string, unknown> } = {
    post: { orderId: 'o1', customerId: 'c1', rating: 5, text: '' },
    delete: {},
  };
  t.equal(review.commands, reviewCommands);
  for (const [segment, { schema }] of Object.entries(review.commands)) {
    const body = valid[segment as keyof typeof valid];
    t.ok(Value.Check(schema, body), `${segment} accepts a valid body`);
    t.notOk(Value.Check(schema, { ...body, extra: 1 }), `${segment} rejects an extra property`);
  }
});

t.test('body schemas enforce the limits', async (t) => {
  const { schema } = reviewCommands.post;
  const body = { orderId: 'o1', customerId: 'c1', rating: 3, text: 'ok' };
  t.notOk(Value.Check(schema, { ...body, rating: 0 }), 'rating 0');
  t.notOk(Value.Check(schema, { ...body, rating: 6 }), 'rating 6');
  t.notOk(Value.Check(schema, { ...body, rating: 4.5 }), 'fractional rating');
  t.ok(Value.Check(schema, { ...body, text: 'x'.repeat(2000) }), 'text of 2,000 chars');
  t.notOk(Value.Check(schema, { ...body, text: 'x'.repeat(2001) }), 'text over 2,000 chars');
  t.notOk(Value.Check(schema, { ...body, orderId: '../o1' }), 'id outside [A-Za-z0-9_-]');
});
