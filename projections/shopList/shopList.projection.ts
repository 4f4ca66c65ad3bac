import { Type, type Static } from 'typebox';
import { defineProjection, descending, type EventMeta, type StoredEvent } from '@converge-es/converge';
import type { EventsOf } from '../events.js';
import { counterEventTypes, foldCounters, noCounters, shopCounterFields, shopDocKey } from '../shopCounters.js';

/**
 * One shop in the shop listing. `ratingSum` is kept beside the average so that a deleted
 * review adjusts it exactly; the route leaves it out.
 */
export const ShopListDocument = Type.Object({
  id: Type.String(),
  name: Type.String(),
  category: Type.String(),
  open: Type.Boolean(),
  ...shopCounterFields,
  /** Stream position of the shop's registration: the `newest` order. */
  registeredPosition: Type.Integer(),
});
export type ShopListDoc = Static<typeof ShopListDocument>;

/** The orders a listing can be sorted in. */
export const shopListSorts = ['rating', 'orders', 'newest'] as const;
export type ShopListSort = (typeof shopListSorts)[number];

/** "Any" in an index filter: the empty string, which no category (1–50 chars) can be. */
export const ANY = '';

function sortValues(doc: ShopListDoc, sort: ShopListSort): number[] {
  switch (sort) {
    case 'rating':
      return [descending(doc.ratingAverage), descending(doc.reviewCount)];
    case 'orders':
      return [descending(doc.orderCount)];
    case 'newest':
      return [descending(doc.registeredPosition)];
  }
}

/**
 * One entry per sort × category filter × open filter, so that every listing the route
 * offers is a single prefix scan: `[sort, category | ANY, 'true' | 'false' | ANY, ...sortValues]`.
 */
function indexes(doc: ShopListDoc): (string | number)[][] {
  const entries: (string | number)[][] = [];
  for (const sort of shopListSorts) {
    for (const category of [doc.category, ANY]) {
      for (const open of [String(doc.open), ANY]) entries.push([sort, category, open, ...sortValues(doc, sort)]);
    }
  }
  return entries;
}

const handles = ['ShopRegistered', 'ShopRenamed', 'ShopOpened', 'ShopClosed', ...counterEventTypes] as const;
type ShopListEvent = EventsOf<(typeof handles)[number]>;

function fold(doc: ShopListDoc | undefined, event: StoredEvent<ShopListEvent>, meta: EventMeta): ShopListDoc | undefined {
  if (event.type === 'ShopRegistered') {
    if (doc) return doc;
    const { name, category } = event.data;
    return { id: meta.id, name, category, open: false, ...noCounters, registeredPosition: meta.position };
  }
  if (!doc) return undefined;
  switch (event.type) {
    case 'ShopRenamed':
      return { ...doc, name: event.data.name };
    case 'ShopOpened':
      return { ...doc, open: true };
    case 'ShopClosed':
      return { ...doc, open: false };
    default:
      return foldCounters(doc, event) ?? doc;
  }
}

/** The shop listing: filter by category and open, sort by rating, orders or newest. */
export const shopList = defineProjection.of(ShopListDocument)<ShopListEvent>({
  name: 'shopList',
  // The running sum behind `ratingAverage`: the fold's, never served.
  hidden: ['ratingSum'],
  version: 1,
  handles,
  key: shopDocKey,
  fold,
  indexes,
});
