import { Type, type Static } from 'typebox';
import { defineProjection, type EventMeta, type StoredEvent } from '@converge-es/converge';
import type { ShopEvent } from '../../actors/shop/shop.events.js';
import type { EventsOf } from '../events.js';
import { counterEventTypes, foldCounters, noCounters, shopCounterFields, shopDocKey } from '../shopCounters.js';

/** One menu item as the display shows it. */
export const MenuEntry = Type.Object({ menuId: Type.String(), name: Type.String(), price: Type.Integer(), soldOut: Type.Boolean() });
export type MenuEntry = Static<typeof MenuEntry>;

/** The shop display document (see docs/architecture.md, "HTTP"), with `ratingSum`, which the routes leave out. */
export const ShopDisplayDocument = Type.Object({
  id: Type.String(),
  name: Type.String(),
  category: Type.String(),
  open: Type.Boolean(),
  minOrderAmount: Type.Integer(),
  deliveryFee: Type.Integer(),
  /** In the order the items were added. */
  menu: Type.Array(MenuEntry),
  ...shopCounterFields,
  /** The shop aggregate's version: moved by shop events only. */
  version: Type.Integer(),
  /** Stream position of the last event applied, from any aggregate; the route's ETag. */
  position: Type.Integer(),
  /** `at` of the last event applied, from any aggregate: when the shop last changed. */
  updatedAt: Type.String({ format: 'date-time' }),
});
export type ShopDisplayDoc = Static<typeof ShopDisplayDocument>;

const shopEventTypes = [
  'ShopRegistered',
  'ShopRenamed',
  'ShopOpened',
  'ShopClosed',
  'DeliveryInfoChanged',
  'MenuItemAdded',
  'MenuPriceChanged',
  'MenuItemSoldOut',
  'MenuItemRestocked',
  'MenuItemRemoved',
] as const satisfies readonly ShopEvent['type'][];

const handles = [...shopEventTypes, ...counterEventTypes] as const;
type ShopDisplayEvent = EventsOf<(typeof handles)[number]>;

function fold(doc: ShopDisplayDoc | undefined, event: StoredEvent<ShopDisplayEvent>, meta: EventMeta): ShopDisplayDoc | undefined {
  if (event.type === 'ShopRegistered') {
    // A second registration is ignored, as the shop's own evolve ignores it.
    if (doc) return doc;
    const { name, category, minOrderAmount, deliveryFee } = event.data;
    return {
      id: meta.id, name, category, open: false, minOrderAmount, deliveryFee, menu: [],
      ...noCounters, version: meta.version, position: meta.position, updatedAt: meta.at,
    };
  }
  // Events for a shop this view has not seen registered have nothing to change.
  if (!doc) return undefined;
  if (meta.aggregate === 'shop') {
    return { ...applyShopEvent(doc, event), version: meta.version, position: meta.position, updatedAt: meta.at };
  }
  const counted = foldCounters(doc, event);
  return counted ? { ...counted, position: meta.position, updatedAt: meta.at } : doc;
}

function applyShopEvent(doc: ShopDisplayDoc, event: ShopDisplayEvent): ShopDisplayDoc {
  switch (event.type) {
    case 'ShopRenamed':
      return { ...doc, name: event.data.name };
    case 'ShopOpened':
      return { ...doc, open: true };
    case 'ShopClosed':
      return { ...doc, open: false };
    case 'DeliveryInfoChanged':
      return { ...doc, minOrderAmount: event.data.minOrderAmount, deliveryFee: event.data.deliveryFee };
    case 'MenuItemAdded': {
      const { menuId, name, price } = event.data;
      if (doc.menu.some((item) => item.menuId === menuId)) return doc;
      return { ...doc, menu: [...doc.menu, { menuId, name, price, soldOut: false }] };
    }
    case 'MenuPriceChanged':
      return updateItem(doc, event.data.menuId, { price: event.data.price });
    case 'MenuItemSoldOut':
      return updateItem(doc, event.data.menuId, { soldOut: true });
    case 'MenuItemRestocked':
      return updateItem(doc, event.data.menuId, { soldOut: false });
    case 'MenuItemRemoved':
      return { ...doc, menu: doc.menu.filter((item) => item.menuId !== event.data.menuId) };
    default:
      return doc;
  }
}

function updateItem(doc: ShopDisplayDoc, menuId: string, change: Partial<Omit<MenuEntry, 'menuId'>>): ShopDisplayDoc {
  return { ...doc, menu: doc.menu.map((item) => (item.menuId === menuId ? { ...item, ...change } : item)) };
}

/**
 * When each shop last changed, for the import API's `changed` listing: one entry by
 * stream position and one by time, both of the latest change, so a shop appears once in
 * each however often it changed.
 */
function indexes(doc: ShopDisplayDoc): (string | number)[][] {
  return [
    ['position', doc.position],
    ['at', doc.updatedAt],
  ];
}

/** What a customer sees of a shop: profile, delivery terms, menu, rating and order count. */
export const shopDisplay = defineProjection.of(ShopDisplayDocument)<ShopDisplayEvent>({
  name: 'shopDisplay',
  // The running sum behind `ratingAverage`: the fold's, never served.
  hidden: ['ratingSum'],
  // 2: `updatedAt` and the `position`/`at` indexes.
  version: 2,
  handles,
  key: shopDocKey,
  fold,
  indexes,
});
