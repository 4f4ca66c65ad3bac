import { Type } from 'typebox';
import { defineEvents, type EventOf } from '@converge-es/converge';

const MenuId = Type.String();

/**
 * The shop's events, declared once in TypeBox: their TypeScript types below, and the
 * check converge makes of every event the decider emits, both come from here.
 */
export const shopEvents = defineEvents({
  /** A shop came into being; defaults are applied here so that readers never guess them. */
  ShopRegistered: Type.Object({
    name: Type.String(),
    category: Type.String(),
    ownerId: Type.String(),
    minOrderAmount: Type.Integer({ minimum: 0 }),
    deliveryFee: Type.Integer({ minimum: 0 }),
  }),
  /** The shop's display name changed. */
  ShopRenamed: Type.Object({ name: Type.String() }),
  /** The shop started taking orders. */
  ShopOpened: Type.Object({}),
  /** The shop stopped taking orders. */
  ShopClosed: Type.Object({}),
  /** The minimum order amount and delivery fee changed together. */
  DeliveryInfoChanged: Type.Object({ minOrderAmount: Type.Integer({ minimum: 0 }), deliveryFee: Type.Integer({ minimum: 0 }) }),
  /** A menu item was added; it starts available. */
  MenuItemAdded: Type.Object({ menuId: MenuId, name: Type.String(), price: Type.Integer({ minimum: 1 }) }),
  /** A menu item's price changed. */
  MenuPriceChanged: Type.Object({ menuId: MenuId, price: Type.Integer({ minimum: 1 }) }),
  /** A menu item can no longer be ordered until restocked. */
  MenuItemSoldOut: Type.Object({ menuId: MenuId }),
  /** A sold-out menu item can be ordered again. */
  MenuItemRestocked: Type.Object({ menuId: MenuId }),
  /** A menu item left the menu. */
  MenuItemRemoved: Type.Object({ menuId: MenuId }),
});

/** Every event a shop emits. */
export type ShopEvent = EventOf<typeof shopEvents>;
export type ShopRegistered = EventOf<typeof shopEvents, 'ShopRegistered'>;
export type ShopRenamed = EventOf<typeof shopEvents, 'ShopRenamed'>;
export type ShopOpened = EventOf<typeof shopEvents, 'ShopOpened'>;
export type ShopClosed = EventOf<typeof shopEvents, 'ShopClosed'>;
export type DeliveryInfoChanged = EventOf<typeof shopEvents, 'DeliveryInfoChanged'>;
export type MenuItemAdded = EventOf<typeof shopEvents, 'MenuItemAdded'>;
export type MenuPriceChanged = EventOf<typeof shopEvents, 'MenuPriceChanged'>;
export type MenuItemSoldOut = EventOf<typeof shopEvents, 'MenuItemSoldOut'>;
export type MenuItemRestocked = EventOf<typeof shopEvents, 'MenuItemRestocked'>;
export type MenuItemRemoved = EventOf<typeof shopEvents, 'MenuItemRemoved'>;
