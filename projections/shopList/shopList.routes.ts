import { Type } from 'typebox';
import { listRoute, viewRoutes } from '@converge-es/converge';
import { ANY, shopList, shopListSorts } from './shopList.projection.js';

/**
 * `GET /shops?category=&open=&sort=rating|orders|newest&limit=&cursor=`: one index prefix
 * scan per listing, each shop without `ratingSum`, which the projection keeps hidden.
 */
export const shopListRoutes = viewRoutes(shopList, {
  tags: ['shops'],
  lists: [
    listRoute({
      name: 'list',
      path: '/shops',
      query: Type.Object({
        category: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
        open: Type.Optional(Type.Enum(['true', 'false'])),
        sort: Type.Optional(Type.Enum(shopListSorts, { default: 'newest' })),
      }),
      prefix: (_params, { category, open, sort }) => [sort ?? 'newest', category ?? ANY, open ?? ANY],
      access: 'public',
    }),
  ],
});
