import { listRoute, viewRoutes } from '@converge-es/converge';
import { couponsByShop } from './couponsByShop.projection.js';

/**
 * `GET /shops/:id/coupons?limit=&cursor=`: a shop's coupons, newest issue first, one page
 * at a time; `GET /coupons/:id`: one coupon. Derived from the view's key, its index and its
 * document schema; both name the projection, so a client can wait for its own write with
 * `X-Min-Position`.
 */
export const couponRoutes = viewRoutes(couponsByShop, {
  tags: ['coupons'],
  get: '/coupons/:id',
  lists: [listRoute({ name: 'list', path: '/shops/:id/coupons', prefix: ({ id }) => [id!] })],
});
