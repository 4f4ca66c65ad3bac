import { Type } from 'typebox';
import { listRoute, viewRoutes } from '@converge-es/converge';
import { orderHistory, OrderHistoryDocument } from './orderHistory.projection.js';

/** `GET /customers/:id/orders` and `GET /shops/:id/orders?status=`: order histories, newest first. */
export const orderHistoryRoutes = viewRoutes(orderHistory, {
  tags: ['orders'],
  lists: [
    listRoute({ name: 'byCustomer', path: '/customers/:id/orders', prefix: ({ id }) => ['customer', id!], access: 'customer' }),
    listRoute({
      name: 'byShop',
      path: '/shops/:id/orders',
      query: Type.Object({ status: Type.Optional(OrderHistoryDocument.properties.status) }),
      prefix: ({ id }, { status }) => ['shop', id!, status ?? '*'],
    }),
  ],
});
