import type { ReadEvent } from '@event-driven-io/emmett';
import { pongoProjection, type PostgresReadEventMetadata } from '@event-driven-io/emmett-postgresql';
import type pg from 'pg';
import type { EventMeta, StoredEvent } from '../../src/index.js';
import { shopDisplay, type ShopDisplayDoc } from '../../projections/shopDisplay/shopDisplay.projection.js';
import { toStored, type EmmettEvent } from './emmett.commands.js';

type ShopDisplayEvent = Parameters<typeof shopDisplay.fold>[1];

/** Emmett hands this projection only the types in `canHandle`, which are `shopDisplay.handles`, as converge's runner does. */
const handled = (event: ShopReadEvent): ShopDisplayEvent => toStored(event) as StoredEvent as ShopDisplayEvent;

/** The pongo collection, and so the table, holding one display document per shop. */
export const SHOP_DISPLAY = 'shop_display';

/**
 * converge's shop display document, plus the global position of the registration for the
 * `newest` listing. A type alias, not an interface: pongo documents need an index signature.
 */
export type ShopDoc = { readonly [K in keyof ShopDisplayDoc]: ShopDisplayDoc[K] } & { readonly registeredPosition: number };

type ShopReadEvent = ReadEvent<EmmettEvent, PostgresReadEventMetadata>;

/** converge's event meta from Emmett's: the stream `shop-s1` is aggregate `shop`, id `s1`. */
function eventMeta(event: ShopReadEvent): EventMeta {
  const { streamName, streamPosition, globalPosition, at } = event.metadata;
  const dash = streamName.indexOf('-');
  return {
    aggregate: streamName.slice(0, dash),
    id: streamName.slice(dash + 1),
    version: Number(streamPosition),
    position: Number(globalPosition),
    at,
  };
}

/** converge's own shop display fold, so both systems compute the same document. */
function fold(doc: ShopDoc | null, event: ShopReadEvent): ShopDoc | null {
  const meta = eventMeta(event);
  const next = shopDisplay.fold(doc ?? undefined, handled(event), meta);
  if (!next) return null;
  return { ...next, registeredPosition: doc?.registeredPosition ?? meta.position };
}

// Two-key advisory locks live apart from the one-key locks Emmett takes for projections.
const LOCK_CLASS = 0x5e0d;

/**
 * The shop display as an inline pongo projection: it runs inside the transaction that
 * appends the events, so a read after a command's reply sees that command, as in a CRUD
 * app. It is `pongoMultiStreamProjection` with one addition. That one reads the document,
 * folds and replaces it with no lock, so under READ COMMITTED two orders committed at once
 * at one shop (two streams, no version conflict) would both start from the same count and
 * one increment would be lost. A transaction-scoped advisory lock per document, taken
 * before the read, serializes the writers of one document only.
 */
export const shopDisplayProjection = pongoProjection<EmmettEvent>({
  name: SHOP_DISPLAY,
  canHandle: [...shopDisplay.handles],
  handle: async (events, { pongo, connection }) => {
    const collection = pongo.db().collection<ShopDoc>(SHOP_DISPLAY);
    for (const event of events) {
      const key = shopDisplay.key(handled(event), eventMeta(event));
      if (typeof key !== 'string') continue;
      await connection.client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, key]);
      await collection.handle(key, (doc) => fold(doc, event));
    }
  },
});

/** The listing orders a client can ask for. */
export const shopSorts = ['rating', 'orders', 'newest'] as const;

/** A listing request, already validated. */
export interface ShopListQuery {
  readonly category?: string;
  readonly open?: boolean;
  readonly sort: (typeof shopSorts)[number];
  readonly limit: number;
}

// Ties fall back to the id, as converge's index keys do.
const orderBy: Readonly<Record<ShopListQuery['sort'], string>> = {
  rating: `(data->>'ratingAverage')::numeric DESC, (data->>'reviewCount')::int DESC, _id`,
  orders: `(data->>'orderCount')::int DESC, _id`,
  newest: `(data->>'registeredPosition')::bigint DESC, _id`,
};

/**
 * One page of shops. Pongo's `find` filters but cannot sort or limit, so the listing is one
 * SQL query on the collection's table, through the pool pongo and the event store share.
 */
export async function listShops(pool: pg.Pool, query: ShopListQuery): Promise<ShopDoc[]> {
  const params: unknown[] = [];
  const where: string[] = [];
  if (query.category !== undefined) where.push(`data->>'category' = $${params.push(query.category)}`);
  if (query.open !== undefined) where.push(`(data->>'open')::boolean = $${params.push(query.open)}`);
  const text =
    `SELECT data FROM ${SHOP_DISPLAY} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ` +
    `ORDER BY ${orderBy[query.sort]} LIMIT $${params.push(query.limit)}`;
  const { rows } = await pool.query<{ data: ShopDoc }>(text, params);
  return rows.map((row) => row.data);
}
