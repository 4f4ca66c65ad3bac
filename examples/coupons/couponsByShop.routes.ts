import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Cursor, DEFAULT_LIMIT, defineRoutes, ErrorBody, IdParams, Limit, Page, sendError } from '../../src/index.js';
import { couponsByShop } from './couponsByShop.projection.js';

/** A coupon as the query API serves it. */
export const CouponItem = Type.Object({
  id: Type.String(),
  shopId: Type.String(),
  code: Type.String(),
  discount: Type.Integer(),
  minOrderAmount: Type.Integer(),
  expiresAt: Type.String({ format: 'date-time' }),
  maxRedemptions: Type.Integer(),
  redemptions: Type.Integer(),
  remaining: Type.Integer(),
  status: Type.Union([Type.Literal('active'), Type.Literal('exhausted'), Type.Literal('revoked')]),
  issuedAt: Type.String({ format: 'date-time' }),
  issuedPosition: Type.Integer(),
  revokedReason: Type.Optional(Type.String()),
});

const ListQuery = Type.Object(
  { limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) },
  { additionalProperties: false },
);

/**
 * `GET /shops/:id/coupons?limit=&cursor=`: a shop's coupons, newest issue first, one page
 * at a time; `GET /coupons/:id`: one coupon. Both name their projection in `config`, so a
 * client can wait for its own write with `X-Min-Position`.
 */
export const couponRoutes = defineRoutes(async (app, { views }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/shops/:id/coupons',
    {
      config: { projection: couponsByShop },
      schema: {
        tags: ['coupons'],
        operationId: 'couponsByShop.list',
        params: IdParams,
        querystring: ListQuery,
        response: { 200: Page(CouponItem), '4xx': ErrorBody },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const page = views.byIndex(couponsByShop, [request.params.id], { limit: limit ?? DEFAULT_LIMIT, cursor });
      return page.next === undefined ? { items: page.items } : { items: page.items, next: page.next };
    },
  );
  r.get(
    '/coupons/:id',
    {
      config: { projection: couponsByShop },
      schema: {
        tags: ['coupons'],
        operationId: 'couponsByShop.get',
        params: IdParams,
        response: { 200: CouponItem, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const doc = views.get(couponsByShop, request.params.id);
      if (doc === undefined) return sendError(reply, 'not_found', `no coupon ${request.params.id}`);
      return doc;
    },
  );
});
