import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { isExpectedVersionConflictError, projections } from '@event-driven-io/emmett';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import { pongoClient } from '@event-driven-io/pongo';
import pg from 'pg';
import { commandExecutor } from './emmett.commands.js';
import { listShops, SHOP_DISPLAY, shopDisplayProjection, shopSorts, type ShopDoc } from './emmett.projections.js';
import { shopPlatform } from '../../app.js';

const { aggregates } = shopPlatform;

/** What the Emmett baseline needs to run. */
export interface EmmettAppOptions {
  readonly connectionString: string;
  /** Connections in the pool the event store and pongo share; pg's default is 10. */
  readonly poolMax?: number;
  readonly now?: () => number;
}

/** The app and how to release what it holds, for `main` and for tests. */
export interface EmmettApp {
  readonly app: FastifyInstance;
  /** Closes Fastify, the event store, pongo and the pool, in that order. */
  close(): Promise<void>;
}

const IdParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
const Accepted = Type.Object({ version: Type.Integer() });
const ErrorBody = Type.Object({ code: Type.String(), message: Type.Optional(Type.String()), reason: Type.Optional(Type.String()) });
const MenuEntry = Type.Object({ menuId: Type.String(), name: Type.String(), price: Type.Integer(), soldOut: Type.Boolean() });
const ShopDisplay = Type.Object({
  id: Type.String(),
  name: Type.String(),
  category: Type.String(),
  open: Type.Boolean(),
  minOrderAmount: Type.Integer(),
  deliveryFee: Type.Integer(),
  menu: Type.Array(MenuEntry),
  ratingAverage: Type.Number(),
  reviewCount: Type.Integer(),
  orderCount: Type.Integer(),
  version: Type.Integer(),
});
const ShopListItem = Type.Pick(ShopDisplay, ['id', 'name', 'category', 'open', 'ratingAverage', 'reviewCount', 'orderCount']);
// Query strings are not coerced (command bodies must not be), so the limit is checked as text.
const ListQuery = Type.Object(
  {
    category: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
    open: Type.Optional(Type.Enum(['true', 'false'])),
    sort: Type.Optional(Type.Enum(shopSorts)),
    limit: Type.Optional(Type.String({ pattern: '^(100|[1-9][0-9]?)$' })),
  },
  { additionalProperties: false },
);

/**
 * converge's command and query routes on Emmett: commands through Emmett's command
 * handler on PostgreSQL, reads from the inline pongo projection. Assumes the schema
 * exists (see `migrateEmmettSchema`), so that workers never race to create it.
 */
export async function buildEmmettApp(opts: EmmettAppOptions): Promise<EmmettApp> {
  const pool = new pg.Pool({ connectionString: opts.connectionString, max: opts.poolMax ?? 10 });
  // An idle connection the server drops must not take the worker down with it.
  pool.on('error', (err) => console.error(`emmett baseline: idle connection lost: ${err.message}`));
  const eventStore = getPostgreSQLEventStore(opts.connectionString, {
    projections: projections.inline([shopDisplayProjection]),
    connectionOptions: { pool },
    schema: { autoMigration: 'None' },
  });
  const pongo = pongoClient(opts.connectionString, { connectionOptions: { pool }, schema: { autoMigration: 'None' } });
  const shops = pongo.db().collection<ShopDoc>(SHOP_DISPLAY);
  const execute = commandExecutor(eventStore, aggregates, opts.now ?? Date.now);

  const app = Fastify({
    logger: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  installJsonParser(app);
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const code = request.method === 'GET' ? 'invalid_query' : 'invalid_command';
    if (err.validation) return reply.code(400).send({ code, message: err.message });
    if (isExpectedVersionConflictError(err)) return reply.code(409).send({ code: 'version_conflict', message: err.message });
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ code, message: err.message });
    }
    console.error(err);
    return reply.code(500).send({ code: 'internal_error', message: 'an unexpected error occurred' });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ code: 'not_found' }));
  // Commands such as `open` take no body; a bodiless POST means `{}`, as in converge.
  app.addHook('preValidation', async (request) => {
    if (request.method === 'POST' && (request.body === undefined || request.body === null)) request.body = {};
  });

  app.get('/health', async () => ({ status: 'ok', pid: process.pid }));

  for (const aggregate of aggregates) {
    for (const [segment, spec] of Object.entries(aggregate.commands)) {
      app.post(
        `/${aggregate.plural}/:id/${segment}`,
        { schema: { params: IdParams, body: spec.schema, response: { 200: Accepted, '4xx': ErrorBody } } },
        async (request, reply) => {
          const outcome = await execute(aggregate, request.params.id, spec.type, request.body);
          if (!outcome.ok) return reply.code(422).send({ code: 'rejected', reason: outcome.reason });
          return { version: outcome.version };
        },
      );
    }
  }

  app.get('/shops/:id', { schema: { params: IdParams, response: { 200: ShopDisplay, '4xx': ErrorBody } } }, async (request, reply) => {
    const doc = await shops.findOne({ _id: request.params.id });
    if (doc === null) return reply.code(404).send({ code: 'not_found' });
    return { ...doc, menu: [...doc.menu] };
  });

  app.get('/shops', { schema: { querystring: ListQuery, response: { 200: Type.Object({ items: Type.Array(ShopListItem) }) } } }, async (request) => {
    const { category, open, sort, limit } = request.query;
    const items = await listShops(pool, {
      ...(category === undefined ? {} : { category }),
      ...(open === undefined ? {} : { open: open === 'true' }),
      sort: sort ?? 'newest',
      limit: limit === undefined ? 20 : Number(limit),
    });
    return { items };
  });

  return {
    app,
    close: async () => {
      await app.close();
      await eventStore.close();
      await pongo.close();
      await pool.end();
    },
  };
}

/**
 * Creates Emmett's tables and functions, registers the projection and creates its pongo
 * collection. Run once before the workers start: concurrent first-time `CREATE TABLE IF
 * NOT EXISTS` can fail in PostgreSQL.
 */
export async function migrateEmmettSchema(connectionString: string): Promise<void> {
  const eventStore = getPostgreSQLEventStore(connectionString, { projections: projections.inline([shopDisplayProjection]) });
  const pongo = pongoClient(connectionString);
  try {
    await eventStore.schema.migrate();
    await pongo.db().collection(SHOP_DISPLAY).schema.migrate();
  } finally {
    await eventStore.close();
    await pongo.close();
  }
}

/** JSON bodies; an empty one reads as `{}` and a malformed one is a 400. */
function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body.toString().trim();
    if (text === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(Object.assign(new Error('the body is not valid JSON'), { statusCode: 400 }), undefined);
    }
  });
}
