import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Cursor, DEFAULT_LIMIT, ErrorBody, Limit, Page, type ViewReader } from '../../src/index.js';
import { ANY, shopList, shopListSorts } from './shopList.projection.js';

/** One shop of a listing. */
export const ShopListItem = Type.Object({
  id: Type.String(),
  name: Type.String(),
  category: Type.String(),
  open: Type.Boolean(),
  ratingAverage: Type.Number(),
  reviewCount: Type.Integer(),
  orderCount: Type.Integer(),
  registeredPosition: Type.Integer(),
});

const ListQuery = Type.Object(
  {
    category: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    open: Type.Optional(Type.Enum(['true', 'false'])),
    sort: Type.Optional(Type.Enum(shopListSorts, { default: 'newest' })),
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

/** `GET /shops?category=&open=&sort=rating|orders|newest&limit=&cursor=`: one index prefix scan per listing. */
export async function shopListRoutes(app: FastifyInstance, deps: { views: ViewReader }): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/shops',
    {
      config: { projection: shopList },
      schema: {
        tags: ['shops'],
        operationId: 'shopList.list',
        querystring: ListQuery,
        response: { 200: Page(ShopListItem), '4xx': ErrorBody },
      },
    },
    async (request) => {
      const { category, open, sort, limit, cursor } = request.query;
      const prefix = [sort ?? 'newest', category ?? ANY, open ?? ANY];
      const page = deps.views.byIndex(shopList, prefix, { limit: limit ?? DEFAULT_LIMIT, cursor });
      // The schema's serializer drops `ratingSum`; listing it here keeps the reply shape explicit.
      const items = page.items.map(({ ratingSum: _internal, ...item }) => item);
      return page.next === undefined ? { items } : { items, next: page.next };
    },
  );
}
