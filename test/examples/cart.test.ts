import t from 'tap';
import { createConverge } from '@converge-es/converge';
import { apiSpec, commit, commitAt, deciderSpec, manualClock, processSpec, reactorSpec } from '@converge-es/converge/testing';
import { cartApp } from '../../examples/cart/app.js';
import { cartDetails } from '../../examples/cart/cartDetails.projection.js';
import { cart } from '../../examples/cart/cart.decider.js';
import { cartExpiry } from '../../examples/cart/cartExpiry.process.js';
import { fixedPriceList } from '../../examples/cart/priceList.js';
import { receipts } from '../../examples/cart/receipts.reactor.js';
import { loggedReceipts } from '../../examples/cart/receipts.js';
import { tapAssert } from '../helpers/spec.js';

const id = '3f1c9a2e-6b7d-4c1e-9a2f-0b1c2d3e4f50';
const prices = fixedPriceList({ kimbap: 3500, mandu: 6000 });
const quiet = () => undefined;
const opened = { type: 'CartOpened', data: { clientId: 'c1' } } as const;
const kimbap = { productId: 'kimbap', quantity: 2, unitPrice: 3500 };

t.test('opening a cart answers 201 with the commit', async (t) => {
  // On an empty store `when` comes first; `.given()` with nothing is the same.
  const outcome = await apiSpec(cartApp, { services: { prices, receipts: loggedReceipts(quiet) }, assert: tapAssert(t) })
    .when({ method: 'POST', url: `/carts/${id}`, body: { clientId: 'c1' } })
    .then({ status: 201, events: [commit(cart, id, opened)] });
  t.match(outcome.body, { id, version: 1, position: 1, events: ['CartOpened'] });
});

t.test('an added item is priced by the server-side price list, answered 204', async (t) => {
  await apiSpec(cartApp, { services: { prices, receipts: loggedReceipts(quiet) }, assert: tapAssert(t) })
    .given(commit(cart, id, opened))
    .when({ method: 'POST', url: `/carts/${id}/items`, body: { productId: 'kimbap', quantity: 2 } })
    .then({ status: 204, events: [commit(cart, id, { type: 'ProductItemAdded', data: { productItem: kimbap } })] });
});

t.test('removing an item takes its id from the path: DELETE /carts/:id/items/:productId', async (t) => {
  await apiSpec(cartApp, { services: { prices, receipts: loggedReceipts(quiet) }, assert: tapAssert(t) })
    .given(commit(cart, id, opened, { type: 'ProductItemAdded', data: { productItem: kimbap } }))
    .when({ method: 'DELETE', url: `/carts/${id}/items/kimbap` })
    .then({ status: 204, events: [commit(cart, id, { type: 'ProductItemRemoved', data: { productItem: kimbap } })] });
});

t.test('a product the price list does not sell is rejected, and nothing is appended', async (t) => {
  await apiSpec(cartApp, { services: { prices, receipts: loggedReceipts(quiet) }, assert: tapAssert(t) })
    .given(commit(cart, id, opened))
    .when({ method: 'POST', url: `/carts/${id}/items`, body: { productId: 'pizza', quantity: 1 } })
    .then({ status: 422, body: { error: 'rejected', message: 'AddProductItem was rejected: product_not_found', reason: 'product_not_found' }, events: [] });
});

t.test('a client cannot set the price: an unknown field is a 400', async (t) => {
  const outcome = await apiSpec(cartApp, { services: { prices, receipts: loggedReceipts(quiet) }, assert: tapAssert(t) })
    .given(commit(cart, id, opened))
    .when({ method: 'POST', url: `/carts/${id}/items`, body: { productId: 'kimbap', quantity: 1, unitPrice: 1 } })
    .then({ status: 400, events: [] });
  t.match(outcome.body, { error: 'invalid_command' });
});

t.test('an id that does not fit the cart\'s pattern is a 400', async (t) => {
  await apiSpec(cartApp, { services: { prices, receipts: loggedReceipts(quiet) }, assert: tapAssert(t) })
    .given()
    .when({ method: 'POST', url: '/carts/not-a-uuid', body: { clientId: 'c1' } })
    .then({ status: 400, events: [] });
});

t.test('a price list that fails is a 503 service_unavailable with Retry-After', async (t) => {
  const down = { unitPrice: async () => Promise.reject(new Error('catalogue down')) };
  await apiSpec(cartApp, { services: { prices: down, receipts: loggedReceipts(quiet) }, assert: tapAssert(t) })
    .given(commit(cart, id, opened))
    .when({ method: 'POST', url: `/carts/${id}/items`, body: { productId: 'kimbap', quantity: 1 } })
    .then({ status: 503, headers: { 'retry-after': '1' }, events: [] });
});

t.test('the cart view is read back at GET /carts/:id with the lines and the total', async (t) => {
  const outcome = await apiSpec(cartApp, { services: { prices, receipts: loggedReceipts(quiet) }, assert: tapAssert(t) })
    .given(commit(cart, id, opened, { type: 'ProductItemAdded', data: { productItem: kimbap } }), commit(cart, id, { type: 'ProductItemAdded', data: { productItem: { productId: 'mandu', quantity: 1, unitPrice: 6000 } } }))
    .when({ method: 'GET', url: `/carts/${id}` })
    .then({ status: 200 });
  t.match(outcome.body, { id, clientId: 'c1', status: 'open', totalAmount: 13000, items: [kimbap, { productId: 'mandu', quantity: 1, unitPrice: 6000 }] });
});

t.test('deciderSpec checks the command against its schema, as the edge does', async (t) => {
  const outcome = deciderSpec(cart, { assert: tapAssert(t) }).given([opened]).when({ type: 'AddProductItem', data: { productId: 'kimbap', quantity: 0 } }, { lookup: { unitPrice: 3500 } });
  outcome.isInvalid('/quantity');
  deciderSpec(cart, { assert: tapAssert(t) }).given([opened]).when({ type: 'AddProductItem', data: { productId: 'kimbap', quantity: 2 } }, { lookup: { unitPrice: 3500 } })
    .then([{ type: 'ProductItemAdded', data: { productItem: kimbap } }]);
});

const settings = { carts: { expireAfterMs: 86_400_000 } };
const added = { type: 'ProductItemAdded', data: { productItem: kimbap } } as const;

t.test('cartExpiry: opening a cart schedules its expiry a day later', async (t) => {
  processSpec(cartExpiry, { settings, assert: tapAssert(t) })
    .given()
    .when(commit(cart, id, opened))
    .then({ schedules: [{ name: 'expire', at: '2026-01-02T00:00:00.000Z' }], commands: [], ended: false });
});

t.test('cartExpiry: an item added schedules the expiry again, a day from then', async (t) => {
  processSpec(cartExpiry, { settings, assert: tapAssert(t) })
    .given(commit(cart, id, opened))
    .when(commitAt('2026-01-01T06:00:00.000Z', cart, id, added))
    .then({ schedules: [{ name: 'expire', at: '2026-01-02T06:00:00.000Z' }], commands: [], ended: false });
});

t.test('cartExpiry: a confirmed cart ends its instance and cancels the expiry', async (t) => {
  processSpec(cartExpiry, { settings, assert: tapAssert(t) })
    .given(commit(cart, id, opened, added))
    .when(commit(cart, id, { type: 'CartConfirmed', data: { clientId: 'c1', totalAmount: 7000 } }))
    .then({ cancels: ['expire'], commands: [], ended: true });
});

t.test('cartExpiry: the expiry firing cancels the cart', async (t) => {
  processSpec(cartExpiry, { settings, assert: tapAssert(t) })
    .given(commit(cart, id, opened))
    .whenTimer('expire')
    .then({ commands: [{ aggregate: 'cart', id, type: 'CancelCart', data: {} }], ended: true });
});

t.test('receipts: a confirmed cart sends one receipt keyed by its event, and no command', async (t) => {
  const sent = loggedReceipts(quiet);
  const confirmed = commit(cart, id, opened, added, { type: 'CartConfirmed', data: { clientId: 'c1', totalAmount: 7000 } });
  await reactorSpec(receipts, { services: { receipts: sent }, assert: tapAssert(t) }).when(confirmed).then([]);
  await reactorSpec(receipts, { services: { receipts: sent }, assert: tapAssert(t) }).when(confirmed).then([]);
  t.same(sent.sent, [{ key: '1:2', cartId: id, clientId: 'c1', totalAmount: 7000 }]);
});

t.test('in the runtime, a cart left open expires when the clock passes a day, and a confirmed one gets its receipt', async (t) => {
  const clock = manualClock('2026-01-01T00:00:00Z');
  const sent = loggedReceipts(quiet);
  const converge = await createConverge(cartApp, { clock, services: { prices, receipts: sent }, config: { logLevel: 'warn' } });
  t.teardown(() => converge.stop());
  const kept = '0b1c2d3e-4f50-4c1e-9a2f-3f1c9a2e6b7d';
  for (const cartId of [id, kept]) {
    t.equal((await converge.dispatch({ aggregate: 'cart', id: cartId, type: 'OpenCart', data: { clientId: 'c1' } })).kind, 'accepted');
    t.equal((await converge.dispatch({ aggregate: 'cart', id: cartId, type: 'AddProductItem', data: { productId: 'kimbap', quantity: 2 } })).kind, 'accepted');
  }
  const confirmed = await converge.dispatch({ aggregate: 'cart', id: kept, type: 'ConfirmCart', data: {} });
  t.equal(confirmed.kind, 'accepted');
  await converge.settled();
  t.match(sent.sent, [{ cartId: kept, clientId: 'c1', totalAmount: 7000 }], 'the confirmed cart got its receipt');

  clock.advance(86_400_000 - 1);
  await converge.settled();
  t.equal(converge.views.get(cartDetails, id)?.status, 'open', 'a moment before a day has passed, the cart is open');
  clock.advance(1);
  await converge.settled();
  t.equal(converge.views.get(cartDetails, id)?.status, 'cancelled', 'a day after its last item, the cart is cancelled');
  t.equal(converge.views.get(cartDetails, kept)?.status, 'confirmed', 'the confirmed cart stays confirmed');
  t.equal(sent.sent.length, 1, 'and no other receipt went out');
});
