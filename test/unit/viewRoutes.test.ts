import Fastify from 'fastify';
import t from 'tap';
import { defineProjection, type ViewReader } from '@converge-es/converge';
import { apiSpec, commit } from '@converge-es/converge/testing';
import { review } from '../../actors/review/review.decider.js';
import { shop } from '../../actors/shop/shop.decider.js';
import { shopPlatform } from '../../app.js';
import { shopList, ShopListDocument } from '../../projections/shopList/shopList.projection.js';
import { shopListRoutes } from '../../projections/shopList/shopList.routes.js';
import { tapAssert } from '../helpers/spec.js';

const registered = { type: 'ShopRegistered', data: { name: 'Kimbap', category: 'korean', ownerId: 'u1', minOrderAmount: 0, deliveryFee: 0 } } as const;
const posted = { type: 'ReviewPosted', data: { orderId: 'o1', shopId: 's1', customerId: 'c1', rating: 4, text: '' } } as const;

t.test('a hidden field the fold keeps is out of the replies and out of the response schema', async (t) => {
  await apiSpec(shopPlatform, { assert: tapAssert(t) })
    .given(commit(shop, 's1', registered), commit(review, 'r1', posted))
    .when({ method: 'GET', url: '/shops?sort=rating' })
    .then({
      status: 200,
      body: { items: [{ id: 's1', name: 'Kimbap', category: 'korean', open: false, ratingAverage: 4, reviewCount: 1, orderCount: 0, registeredPosition: 1 }] },
    });

  const app = Fastify();
  t.teardown(() => app.close());
  const responses: unknown[] = [];
  app.addHook('onRoute', (route) => void responses.push(route.schema?.response));
  await app.register(shopListRoutes, { views: {} as ViewReader });
  t.match(responses[0], { 200: { properties: { items: { items: { properties: { ratingAverage: {}, registeredPosition: {} } } } } } });
  t.notOk(JSON.stringify(responses).includes('ratingSum'), 'no ratingSum in the response schema');
});

t.test('hidden naming a field the document does not have is a TypeError when the projection is declared', async (t) => {
  t.throws(() => defineProjection.of(ShopListDocument)({ ...shopList, hidden: ['ratingsum'] }), { name: 'TypeError', message: /ratingsum/ });
});
