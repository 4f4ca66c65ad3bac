import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { Type, TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Pool } from 'pg';
import type { Static, TSchema } from 'typebox';
import { EmptyBody } from '../../actors/shared.schemas.js';
import {
  AddMenuItemBody, ChangeDeliveryInfoBody, ChangeMenuPriceBody, MenuItemBody, RegisterShopBody, RenameShopBody,
} from '../../actors/shop/shop.commands.js';
import { PlaceOrderBody, ReasonBody } from '../../actors/order/order.commands.js';
import { PostReviewBody } from '../../actors/review/review.commands.js';
import { inTransaction, shopCommands, type Command } from './commands.js';
import { orderCommands, reviewCommands } from './orderCommands.js';

/** What the CRUD baseline's app needs. */
export interface CrudAppOptions {
  readonly pool: Pool;
  /** Pino level; `warn` keeps faults and drops everything per request. */
  readonly logLevel?: string;
}

const IdParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
const Accepted = Type.Object({ version: Type.Integer() });
const Rejected = Type.Object({ code: Type.Literal('rejected'), reason: Type.String() });
const NotFound = Type.Object({ code: Type.Literal('not_found') });
const MenuEntry = Type.Object({ menuId: Type.String(), name: Type.String(), price: Type.Integer(), soldOut: Type.Boolean() });
const Counters = { ratingAverage: Type.Number(), reviewCount: Type.Integer(), orderCount: Type.Integer() };
const ShopView = Type.Object({
  id: Type.String(), name: Type.String(), category: Type.String(), open: Type.Boolean(),
  minOrderAmount: Type.Integer(), deliveryFee: Type.Integer(), menu: Type.Array(MenuEntry), ...Counters, version: Type.Integer(),
});
const ShopListItem = Type.Object({ id: Type.String(), name: Type.String(), category: Type.String(), open: Type.Boolean(), ...Counters });
const ListQuery = Type.Object(
  {
    category: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    open: Type.Optional(Type.Boolean()),
    sort: Type.Optional(Type.Union([Type.Literal('rating'), Type.Literal('orders'), Type.Literal('newest')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  },
  { additionalProperties: false },
);

// The display is computed on every read, as a CRUD service does: nothing derived is stored.
// Deleted reviews do not count; every placed order counts, whatever became of it.
const counters = `
  CROSS JOIN LATERAL (SELECT COALESCE(round(avg(rating), 2), 0)::float8 AS "ratingAverage", count(*)::int AS "reviewCount"
                      FROM reviews WHERE shop_id = s.id AND NOT deleted) r
  CROSS JOIN LATERAL (SELECT count(*)::int AS "orderCount" FROM orders WHERE shop_id = s.id) o`;

const shopSql = `
  SELECT s.id, s.name, s.category, s.open, s.min_order_amount AS "minOrderAmount", s.delivery_fee AS "deliveryFee",
    COALESCE((SELECT json_agg(json_build_object('menuId', m.menu_id, 'name', m.name, 'price', m.price, 'soldOut', m.sold_out)
                              ORDER BY m.position)
              FROM menu_items m WHERE m.shop_id = s.id), '[]'::json) AS menu,
    r."ratingAverage", r."reviewCount", o."orderCount", s.version
  FROM shops s ${counters}
  WHERE s.id = $1`;

// Ties are broken by id so that a page is deterministic.
const orderBy = {
  rating: 'r."ratingAverage" DESC, r."reviewCount" DESC, s.id',
  orders: 'o."orderCount" DESC, s.id',
  newest: 's.created_at DESC, s.id',
} as const;

const listSql = (sort: keyof typeof orderBy) => `
  SELECT s.id, s.name, s.category, s.open, r."ratingAverage", r."reviewCount", o."orderCount"
  FROM shops s ${counters}
  WHERE ($1::text IS NULL OR s.category = $1) AND ($2::boolean IS NULL OR s.open = $2)
  ORDER BY ${orderBy[sort]} LIMIT $3`;

/**
 * The baseline's HTTP surface: the same command URLs and bodies as converge, each command
 * one PostgreSQL transaction, and reads computed from the tables by one SELECT each.
 * Errors are `{ code, … }`: 400 `invalid_command`/`invalid_query`, 404 `not_found`,
 * 422 `rejected` with the decider's `reason`.
 */
export async function buildCrudApp({ pool, logLevel = 'warn' }: CrudAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: logLevel },
    logController: new LogController({ disableRequestLogging: true }),
    // The same limits as converge's defaults (config/default.json), so neither side gains by them.
    bodyLimit: 65_536,
    keepAliveTimeout: 5_000,
  })
    .setValidatorCompiler(TypeBoxValidatorCompiler)
    .withTypeProvider<TypeBoxTypeProvider>();

  // Commands such as `open` take no body: an empty or missing body means `{}`, as in converge.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    try {
      const json = String(text).trim();
      done(null, json === '' ? {} : JSON.parse(json));
    } catch {
      done(Object.assign(new Error('the body is not valid JSON'), { statusCode: 400 }), undefined);
    }
  });
  app.addHook('preValidation', async (request) => {
    if (request.method === 'POST' && request.body == null) request.body = {};
  });
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const status = err.validation ? 400 : (err.statusCode ?? 500);
    if (status < 500) {
      return reply.code(status).send({ code: request.method === 'POST' ? 'invalid_command' : 'invalid_query', message: err.message });
    }
    request.log.error({ err }, 'request failed');
    return reply.code(500).send({ code: 'internal_error', message: 'internal error' });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ code: 'not_found' }));

  // Each route names its schema and its command side by side; the compiler checks they agree.
  const post = <S extends TSchema>(body: S) => ({ schema: { params: IdParams, body, response: { 200: Accepted, 422: Rejected } } });
  async function execute<B>(run: Command<B>, request: { params: { id: string }; body: B }, reply: FastifyReply) {
    const outcome = await inTransaction(pool, run, request.params.id, request.body);
    return outcome.ok ? { version: outcome.version } : reply.code(422).send({ code: 'rejected', reason: outcome.reason });
  }
  app.post('/shops/:id/register', post(RegisterShopBody), (rq, rp) => execute(shopCommands.register, rq, rp));
  app.post('/shops/:id/rename', post(RenameShopBody), (rq, rp) => execute(shopCommands.rename, rq, rp));
  app.post('/shops/:id/open', post(EmptyBody), (rq, rp) => execute(shopCommands.open, rq, rp));
  app.post('/shops/:id/close', post(EmptyBody), (rq, rp) => execute(shopCommands.close, rq, rp));
  app.post('/shops/:id/change-delivery-info', post(ChangeDeliveryInfoBody), (rq, rp) => execute(shopCommands.changeDeliveryInfo, rq, rp));
  app.post('/shops/:id/add-menu-item', post(AddMenuItemBody), (rq, rp) => execute(shopCommands.addMenuItem, rq, rp));
  app.post('/shops/:id/change-menu-price', post(ChangeMenuPriceBody), (rq, rp) => execute(shopCommands.changeMenuPrice, rq, rp));
  app.post('/shops/:id/mark-menu-sold-out', post(MenuItemBody), (rq, rp) => execute(shopCommands.markMenuSoldOut, rq, rp));
  app.post('/shops/:id/restock-menu-item', post(MenuItemBody), (rq, rp) => execute(shopCommands.restockMenuItem, rq, rp));
  app.post('/shops/:id/remove-menu-item', post(MenuItemBody), (rq, rp) => execute(shopCommands.removeMenuItem, rq, rp));
  app.post('/orders/:id/place', post(PlaceOrderBody), (rq, rp) => execute(orderCommands.place, rq, rp));
  app.post('/orders/:id/accept', post(EmptyBody), (rq, rp) => execute(orderCommands.accept, rq, rp));
  app.post('/orders/:id/reject', post(ReasonBody), (rq, rp) => execute(orderCommands.reject, rq, rp));
  app.post('/orders/:id/deliver', post(EmptyBody), (rq, rp) => execute(orderCommands.deliver, rq, rp));
  app.post('/orders/:id/cancel', post(ReasonBody), (rq, rp) => execute(orderCommands.cancel, rq, rp));
  app.post('/reviews/:id/post', post(PostReviewBody), (rq, rp) => execute(reviewCommands.post, rq, rp));
  app.post('/reviews/:id/delete', post(EmptyBody), (rq, rp) => execute(reviewCommands.delete, rq, rp));

  app.get('/shops/:id', { schema: { params: IdParams, response: { 200: ShopView, 404: NotFound } } }, async (request, reply) => {
    const { rows } = await pool.query<Static<typeof ShopView>>(shopSql, [request.params.id]);
    return rows[0] ?? reply.code(404).send({ code: 'not_found' });
  });
  app.get('/shops', { schema: { querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(ShopListItem) }) } } }, async (request) => {
    const { category, open, sort = 'newest', limit = 20 } = request.query;
    const { rows } = await pool.query<Static<typeof ShopListItem>>(listSql(sort), [category ?? null, open ?? null, limit]);
    return { items: rows };
  });
  app.get('/health', async () => ({ status: 'ok', pid: process.pid }));
  return app;
}
