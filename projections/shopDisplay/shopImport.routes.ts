import { PassThrough, type Readable, type Writable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Cursor, ErrorBody, Page, sendError, sendStoredPage, type ViewReader } from '@converge-es/converge';
import { shopDisplay, type ShopDisplayDoc } from './shopDisplay.projection.js';
import { ShopDisplay } from './shopDisplay.routes.js';

/** Most ids one batch may ask for. */
export const MAX_BATCH = 1000;
/** Shops read per LMDB range during an export: one short read, then the stream drains. */
const CHUNK = 500;

const ShopId = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });

const ExportQuery = Type.Object(
  {
    cursor: Type.Optional(ShopId),
    limit: Type.Optional(Type.Integer({ minimum: 1, description: 'most lines to send; every shop when absent' })),
  },
  { additionalProperties: false },
);

/**
 * The export's reply: NDJSON lines of `ShopDisplay`, sent as a stream. `Unsafe` gives it
 * the static type of the stream the handler sends; OpenAPI gets the line schema.
 */
const ShopLines = Type.Unsafe<Readable>({
  description: 'one shop display document per line',
  content: { 'application/x-ndjson': { schema: ShopDisplay } },
});

/**
 * `ShopDisplay` as the serializer compiler takes it (a plain object); one object, so it is
 * compiled once. Like every reply schema here, it leaves `ratingSum` out of the documents.
 */
const ShopLine: Record<string, unknown> = { ...ShopDisplay };

const BatchBody = Type.Object({ ids: Type.Array(ShopId, { minItems: 1, maxItems: MAX_BATCH }) }, { additionalProperties: false });

const BatchReply = Type.Object({ items: Type.Array(ShopDisplay), missing: Type.Array(Type.String()) });

const ChangedQuery = Type.Object(
  {
    since: Type.String({ minLength: 1, maxLength: 64, description: 'a stream position (whole number) or an ISO-8601 time' }),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

/** A stream position: a whole number, as the command API returns it. */
const Position = /^[0-9]{1,15}$/;
/** An ISO-8601 date, or date and time with `Z` or an offset, so that no time is read in the server's zone. */
const IsoTime = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Where a `changed` listing starts: after a position in the `position` index, or at a time
 * in the `at` index. Undefined when `since` is neither.
 */
export function changedFrom(since: string): { prefix: ['position']; from: [number] } | { prefix: ['at']; from: [string] } | undefined {
  if (Position.test(since)) return { prefix: ['position'], from: [Number(since) + 1] };
  // An unencoded `+` of an offset arrives as a space.
  const time = since.replace(/ (\d{2}:\d{2})$/, '+$1');
  if (!IsoTime.test(time)) return undefined;
  const ms = Date.parse(time);
  if (!Number.isFinite(ms)) return undefined;
  // `at` is stored as `toISOString()`; the same form makes string order time order.
  const iso = new Date(ms).toISOString();
  return /^\d{4}-/.test(iso) ? { prefix: ['at'], from: [iso] } : undefined;
}

/**
 * The import API for other systems (see docs/architecture.md, "Notices"): a full export as NDJSON, streamed and
 * resumable; a batch of shops by id; and the shops changed since a position or a time.
 * Every route reads `shopDisplay`, so `X-Min-Position` applies.
 */
export async function shopImportRoutes(app: FastifyInstance, deps: { views: ViewReader }): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/import/shops',
    {
      config: { projection: shopDisplay },
      schema: {
        tags: ['import'],
        operationId: 'shopImport.export',
        description:
          'Every shop as NDJSON, one `GET /shops/:id` document a line, in id order. After a broken download, ' +
          'resume with `cursor=<the last id received>`.',
        querystring: ExportQuery,
        response: {
          200: ShopLines,
          '4xx': ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const line = reply.compileSerializationSchema(ShopLine);
      const out = new PassThrough();
      const { cursor, limit = Infinity } = request.query;
      exportShops(deps.views, out, line, cursor, limit).catch((err: unknown) => {
        request.log.error({ err }, 'shop export failed');
        out.destroy(err instanceof Error ? err : new Error(String(err)));
      });
      return reply.type('application/x-ndjson').send(out);
    },
  );

  r.post(
    '/import/shops/batch',
    {
      config: { projection: shopDisplay },
      // A full batch of the longest ids is about 68 KB of JSON, over the default body limit.
      bodyLimit: Math.max(app.initialConfig.bodyLimit ?? 0, 128 * 1024),
      schema: {
        tags: ['import'],
        operationId: 'shopImport.batch',
        description: `Up to ${MAX_BATCH} shops by id; ids with no shop are listed in \`missing\`.`,
        body: BatchBody,
        response: { 200: BatchReply, '4xx': ErrorBody },
      },
    },
    async (request) => {
      const items: ShopDisplayDoc[] = [];
      const missing: string[] = [];
      for (const id of new Set(request.body.ids)) {
        const doc = deps.views.get(shopDisplay, id);
        if (doc === undefined) missing.push(id);
        else items.push(doc);
      }
      return { items, missing };
    },
  );

  r.get(
    '/import/shops/changed',
    {
      config: { projection: shopDisplay },
      schema: {
        tags: ['import'],
        operationId: 'shopImport.changed',
        description:
          'Shops in order of their last change: changed after stream position `since` when it is a whole number, ' +
          'or at or after the ISO-8601 time `since`. Each shop appears once, at its latest change.',
        querystring: ChangedQuery,
        response: { 200: Page(ShopDisplay), '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { since, limit = 100, cursor } = request.query;
      const start = changedFrom(since);
      if (!start) {
        return sendError(reply, 'invalid_query', 'since must be a stream position (a whole number) or an ISO-8601 time such as 2024-05-01T10:00:00Z');
      }
      return sendStoredPage(reply, deps.views.byIndexFromStored(shopDisplay, start.prefix, start.from, { limit, ...(cursor === undefined ? {} : { cursor }) }));
    },
  );
}

/**
 * Writes up to `limit` shops after `after` to `out`, one line each, a chunk of short range
 * reads at a time. Between chunks it waits for `out` to drain (or yields a turn), so memory
 * stays flat, other requests get served, and each chunk reads what is committed by then.
 * Key order makes the export exact across chunks: a shop that exists throughout is sent once.
 */
async function exportShops(views: ViewReader, out: Writable, line: (doc: ShopDisplayDoc) => string, after: string | undefined, limit: number): Promise<void> {
  let remaining = limit;
  let last = after;
  while (remaining > 0) {
    const chunk = views.scan(shopDisplay, last, Math.min(CHUNK, remaining));
    if (chunk.length === 0) break;
    remaining -= chunk.length;
    last = chunk[chunk.length - 1]!.key;
    const text = chunk.map(({ doc }) => line(doc) + '\n').join('');
    if (out.destroyed) return;
    if (out.write(text)) await nextTurn();
    else if (!(await drained(out))) return;
  }
  out.end();
}

/** Resolves true when `out` drains, false when it closes first (the client went away). */
function drained(out: Writable): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => () => {
      out.off('drain', onDrain);
      out.off('close', onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    out.once('drain', onDrain);
    out.once('close', onClose);
  });
}
