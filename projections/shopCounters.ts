import { Type, type Static, type TObject } from 'typebox';
import type { EventMeta } from '@converge-es/converge';
import type { PlatformEvent } from './events.js';

/**
 * The per-shop figures that order and review events change: properties of both shop views'
 * documents. `ratingSum` comes last, as the routes leave it out.
 */
export const shopCounterFields = {
  /** `ratingSum / reviewCount` rounded to 2 decimals, 0 when there are no reviews. */
  ratingAverage: Type.Number(),
  reviewCount: Type.Integer(),
  orderCount: Type.Integer(),
  /** Sum of the ratings of the reviews not deleted; kept so a deletion can adjust the average exactly. */
  ratingSum: Type.Integer(),
};

/** The shop counters, as the views' documents hold them. */
export type ShopCounters = Static<TObject<typeof shopCounterFields>>;

/** Counters of a shop with no orders and no reviews yet. */
export const noCounters: ShopCounters = { ratingSum: 0, reviewCount: 0, ratingAverage: 0, orderCount: 0 };

/** Events of other aggregates that change a shop's counters. */
export const counterEventTypes = ['OrderPlaced', 'ReviewPosted', 'ReviewDeleted'] as const;

/** The average of `count` ratings summing to `sum`, rounded to 2 decimals; 0 when there are none. */
export function ratingAverage(sum: number, count: number): number {
  return count > 0 ? Math.round((sum / count) * 100) / 100 : 0;
}

/**
 * The shop document an event belongs to: a shop's own events by the aggregate id, and
 * orders and reviews by the shop id they carry.
 */
export function shopDocKey(event: PlatformEvent, meta: EventMeta): string | undefined {
  if (meta.aggregate === 'shop') return meta.id;
  switch (event.type) {
    case 'OrderPlaced':
    case 'ReviewPosted':
    case 'ReviewDeleted':
      return event.data.shopId;
    default:
      return undefined;
  }
}

/**
 * The counters after an order or review event; `undefined` for any other event. A
 * deletion never takes the figures below zero, so a replayed or stray deletion cannot
 * produce a negative count.
 */
export function foldCounters<D extends ShopCounters>(doc: D, event: PlatformEvent): D | undefined {
  switch (event.type) {
    case 'OrderPlaced':
      return { ...doc, orderCount: doc.orderCount + 1 };
    case 'ReviewPosted':
      return withRatings(doc, doc.ratingSum + event.data.rating, doc.reviewCount + 1);
    case 'ReviewDeleted':
      if (doc.reviewCount === 0) return doc;
      return withRatings(doc, Math.max(0, doc.ratingSum - event.data.rating), doc.reviewCount - 1);
    default:
      return undefined;
  }
}

function withRatings<D extends ShopCounters>(doc: D, ratingSum: number, reviewCount: number): D {
  return { ...doc, ratingSum, reviewCount, ratingAverage: ratingAverage(ratingSum, reviewCount) };
}
