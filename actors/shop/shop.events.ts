/** A shop came into being; defaults are applied here so that readers never guess them. */
export interface ShopRegistered {
  readonly type: 'ShopRegistered';
  readonly data: {
    readonly name: string;
    readonly category: string;
    readonly ownerId: string;
    readonly minOrderAmount: number;
    readonly deliveryFee: number;
  };
}

/** The shop's display name changed. */
export interface ShopRenamed {
  readonly type: 'ShopRenamed';
  readonly data: { readonly name: string };
}

/** The shop started taking orders. */
export interface ShopOpened {
  readonly type: 'ShopOpened';
  readonly data: Record<string, never>;
}

/** The shop stopped taking orders. */
export interface ShopClosed {
  readonly type: 'ShopClosed';
  readonly data: Record<string, never>;
}

/** The minimum order amount and delivery fee changed together. */
export interface DeliveryInfoChanged {
  readonly type: 'DeliveryInfoChanged';
  readonly data: { readonly minOrderAmount: number; readonly deliveryFee: number };
}

/** A menu item was added; it starts available. */
export interface MenuItemAdded {
  readonly type: 'MenuItemAdded';
  readonly data: { readonly menuId: string; readonly name: string; readonly price: number };
}

/** A menu item's price changed. */
export interface MenuPriceChanged {
  readonly type: 'MenuPriceChanged';
  readonly data: { readonly menuId: string; readonly price: number };
}

/** A menu item can no longer be ordered until restocked. */
export interface MenuItemSoldOut {
  readonly type: 'MenuItemSoldOut';
  readonly data: { readonly menuId: string };
}

/** A sold-out menu item can be ordered again. */
export interface MenuItemRestocked {
  readonly type: 'MenuItemRestocked';
  readonly data: { readonly menuId: string };
}

/** A menu item left the menu. */
export interface MenuItemRemoved {
  readonly type: 'MenuItemRemoved';
  readonly data: { readonly menuId: string };
}

/** Every event a shop emits. */
export type ShopEvent =
  | ShopRegistered
  | ShopRenamed
  | ShopOpened
  | ShopClosed
  | DeliveryInfoChanged
  | MenuItemAdded
  | MenuPriceChanged
  | MenuItemSoldOut
  | MenuItemRestocked
  | MenuItemRemoved;
