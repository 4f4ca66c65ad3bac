import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Cursor, DEFAULT_LIMIT, ErrorBody, IdParams, Limit, Page, type ViewPage, type ViewReader } from '../../src/index.js';
import { orderHistory, placedStatuses, type OrderHistoryDoc } from './orderHistory.projection.js';

const Status = Type.Enum(placedStatuses);

/** One order of a history. */
export const OrderHistoryItem = Type.Object({
  orderId: Type.String(),
  shopId: Type.String(),
  customerId: Type.String(),
  status: Status,
  lines: Type.Array(Type.Object({ menuId: Type.String(), name: Type.String(), price: Type.Integer(), quantity: Type.Integer() })),
  total: Type.Integer(),
  deliveryFee: Type.Integer(),
  placedAt: Type.String(),
  updatedAt: Type.String(),
  placedPosition: Type.Integer(),
  position: Type.Integer(),
  version: Type.Integer(),
});

const PageQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false });
const ShopOrdersQuery = Type.Object(
  { status: Type.Optional(Status), limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) },
  { additionalProperties: false },
);

/** The reply body of a page of orders. */
function toBody(page: ViewPage<OrderHistoryDoc>) {
  const items = page.items.map((doc) => ({ ...doc, lines: [...doc.lines] }));
  return page.next === undefined ? { items } : { items, next: page.next };
}

/** `GET /customers/:id/orders` and `GET /shops/:id/orders?status=`: order histories, newest first. */
export async function orderHistoryRoutes(app: FastifyInstance, deps: { views: ViewReader }): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const response = { 200: Page(OrderHistoryItem), '4xx': ErrorBody };
  r.get(
    '/customers/:id/orders',
    {
      config: { projection: orderHistory },
      schema: { tags: ['orders'], operationId: 'orderHistory.byCustomer', params: IdParams, querystring: PageQuery, response },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const prefix = ['customer', request.params.id];
      return toBody(deps.views.byIndex(orderHistory, prefix, { limit: limit ?? DEFAULT_LIMIT, cursor }));
    },
  );
  r.get(
    '/shops/:id/orders',
    {
      config: { projection: orderHistory },
      schema: { tags: ['orders'], operationId: 'orderHistory.byShop', params: IdParams, querystring: ShopOrdersQuery, response },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const prefix = ['shop', request.params.id, status ?? '*'];
      return toBody(deps.views.byIndex(orderHistory, prefix, { limit: limit ?? DEFAULT_LIMIT, cursor }));
    },
  );
}
