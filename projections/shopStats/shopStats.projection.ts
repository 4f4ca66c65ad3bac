import { Type, type Static } from 'typebox';
import { defineProjection, type EventMeta, type StoredEvent } from '@converge-es/converge';
import type { EventsOf } from '../events.js';

/** Counts of one shop's orders on one UTC day. Each is counted on the day its event happened. */
export const ShopStatsDocument = Type.Object({
  shopId: Type.String(),
  /** `YYYY-MM-DD`, UTC. */
  day: Type.String(),
  /** Orders placed that day. */
  orders: Type.Integer(),
  delivered: Type.Integer(),
  cancelled: Type.Integer(),
  rejected: Type.Integer(),
  /** Food totals of the orders delivered that day, without delivery fees. */
  revenue: Type.Integer(),
});
export type ShopStatsDoc = Static<typeof ShopStatsDocument>;

/** The UTC day of an event time (`at` is an ISO timestamp in UTC). */
export function dayOf(at: string): string {
  return at.slice(0, 10);
}

const handles = ['OrderPlaced', 'OrderDelivered', 'OrderCancelled', 'OrderRejected'] as const;
type ShopStatsEvent = EventsOf<(typeof handles)[number]>;

function key(event: StoredEvent<ShopStatsEvent>, meta: EventMeta): [string, string] | undefined {
  switch (event.type) {
    case 'OrderPlaced':
    case 'OrderDelivered':
    case 'OrderCancelled':
    case 'OrderRejected':
      return [event.data.shopId, dayOf(meta.at)];
    default:
      return undefined;
  }
}

type Counts = Omit<ShopStatsDoc, 'shopId' | 'day'>;

function fold(doc: ShopStatsDoc | undefined, event: StoredEvent<ShopStatsEvent>, meta: EventMeta): ShopStatsDoc | undefined {
  switch (event.type) {
    case 'OrderPlaced':
      return add(doc, event.data.shopId, meta, { orders: 1 });
    case 'OrderDelivered':
      return add(doc, event.data.shopId, meta, { delivered: 1, revenue: event.data.total });
    case 'OrderCancelled':
      return add(doc, event.data.shopId, meta, { cancelled: 1 });
    case 'OrderRejected':
      return add(doc, event.data.shopId, meta, { rejected: 1 });
    default:
      return doc;
  }
}

/** The day's document, created on the day's first event, with `more` added to its counts. */
function add(doc: ShopStatsDoc | undefined, shopId: string, meta: EventMeta, more: Partial<Counts>): ShopStatsDoc {
  const day = doc ?? { shopId, day: dayOf(meta.at), orders: 0, delivered: 0, cancelled: 0, rejected: 0, revenue: 0 };
  return {
    ...day,
    orders: day.orders + (more.orders ?? 0),
    delivered: day.delivered + (more.delivered ?? 0),
    cancelled: day.cancelled + (more.cancelled ?? 0),
    rejected: day.rejected + (more.rejected ?? 0),
    revenue: day.revenue + (more.revenue ?? 0),
  };
}

/** Per-shop daily order statistics, keyed `[shopId, day]` so a date range is one key range. */
export const shopStats = defineProjection.of(ShopStatsDocument)<ShopStatsEvent>({
  name: 'shopStats',
  version: 1,
  handles,
  key,
  fold,
});
