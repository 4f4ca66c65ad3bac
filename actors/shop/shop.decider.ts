import { defineAggregate, emit, reject, type Decision } from '@converge-es/converge';
import { shopCommands, type ShopCommand } from './shop.commands.js';
import { shopEvents, type ShopEvent } from './shop.events.js';
import { upcastShopEvent } from './shop.upcast.js';

/** Most items a menu may hold; keeps a shop's state, snapshot and display document small. */
export const MAX_MENU_ITEMS = 200;

/** One item of a shop's menu. */
export interface MenuItem {
  readonly name: string;
  readonly price: number;
  readonly soldOut: boolean;
}

/** A registered shop. Plain JSON, so it can be snapshotted and handed to other deciders. */
export interface RegisteredShop {
  readonly status: 'registered';
  readonly name: string;
  readonly category: string;
  readonly ownerId: string;
  readonly open: boolean;
  readonly minOrderAmount: number;
  readonly deliveryFee: number;
  /** Keyed by menu id. Read it through `menuItem`, not by indexing. */
  readonly menu: Readonly<Record<string, MenuItem>>;
}

/** A shop's state: nothing until it is registered. */
export type ShopState = { readonly status: 'unregistered' } | RegisteredShop;

/**
 * The menu item with this id, if any. Menu ids are caller-chosen and `__proto__` or
 * `constructor` pass the id pattern, so only own properties count.
 */
export function menuItem(shop: RegisteredShop, menuId: string): MenuItem | undefined {
  return Object.hasOwn(shop.menu, menuId) ? shop.menu[menuId] : undefined;
}

// These three commands share one check and differ only in the event they emit.
const menuEventFor = {
  MarkMenuSoldOut: 'MenuItemSoldOut',
  RestockMenuItem: 'MenuItemRestocked',
  RemoveMenuItem: 'MenuItemRemoved',
} as const;

/** Why a shop command can be refused. */
export type ShopRejection = 'already_registered' | 'shop_not_registered' | 'menu_item_exists' | 'menu_full' | 'menu_not_found' | 'unknown_command';

function decide(state: ShopState, command: ShopCommand): Decision<ShopEvent, ShopRejection> {
  if (command.type === 'RegisterShop') {
    if (state.status === 'registered') return reject('already_registered');
    const { name, category, ownerId, minOrderAmount = 0, deliveryFee = 0 } = command.data;
    return emit({ type: 'ShopRegistered', data: { name, category, ownerId, minOrderAmount, deliveryFee } });
  }
  if (state.status !== 'registered') return reject('shop_not_registered');
  switch (command.type) {
    case 'RenameShop':
      return emit({ type: 'ShopRenamed', data: { name: command.data.name } });
    case 'OpenShop':
      return emit({ type: 'ShopOpened', data: {} });
    case 'CloseShop':
      return emit({ type: 'ShopClosed', data: {} });
    case 'ChangeDeliveryInfo': {
      const { minOrderAmount, deliveryFee } = command.data;
      return emit({ type: 'DeliveryInfoChanged', data: { minOrderAmount, deliveryFee } });
    }
    case 'AddMenuItem': {
      const { menuId, name, price } = command.data;
      if (menuItem(state, menuId)) return reject('menu_item_exists');
      if (Object.keys(state.menu).length >= MAX_MENU_ITEMS) return reject('menu_full');
      return emit({ type: 'MenuItemAdded', data: { menuId, name, price } });
    }
    case 'ChangeMenuPrice': {
      const { menuId, price } = command.data;
      if (!menuItem(state, menuId)) return reject('menu_not_found');
      return emit({ type: 'MenuPriceChanged', data: { menuId, price } });
    }
    case 'MarkMenuSoldOut':
    case 'RestockMenuItem':
    case 'RemoveMenuItem': {
      const { menuId } = command.data;
      if (!menuItem(state, menuId)) return reject('menu_not_found');
      return emit({ type: menuEventFor[command.type], data: { menuId } });
    }
    default: {
      const unhandled: never = command;
      void unhandled;
      return reject('unknown_command');
    }
  }
}

function evolve(state: ShopState, event: ShopEvent): ShopState {
  if (event.type === 'ShopRegistered') {
    if (state.status === 'registered') return state;
    const { name, category, ownerId, minOrderAmount, deliveryFee } = event.data;
    // New shops start closed: opening is its own decision.
    return { status: 'registered', name, category, ownerId, open: false, minOrderAmount, deliveryFee, menu: {} };
  }
  // A fact about a shop that does not exist cannot be applied; ignoring it keeps evolve total.
  if (state.status !== 'registered') return state;
  switch (event.type) {
    case 'ShopRenamed':
      return { ...state, name: event.data.name };
    case 'ShopOpened':
      return { ...state, open: true };
    case 'ShopClosed':
      return { ...state, open: false };
    case 'DeliveryInfoChanged':
      return { ...state, minOrderAmount: event.data.minOrderAmount, deliveryFee: event.data.deliveryFee };
    case 'MenuItemAdded': {
      const { menuId, name, price } = event.data;
      return withItem(state, menuId, { name, price, soldOut: false });
    }
    case 'MenuPriceChanged':
      return updateItem(state, event.data.menuId, { price: event.data.price });
    case 'MenuItemSoldOut':
      return updateItem(state, event.data.menuId, { soldOut: true });
    case 'MenuItemRestocked':
      return updateItem(state, event.data.menuId, { soldOut: false });
    case 'MenuItemRemoved': {
      if (!menuItem(state, event.data.menuId)) return state;
      const { [event.data.menuId]: _removed, ...menu } = state.menu;
      return { ...state, menu };
    }
    default: {
      // Reached at run time by event types this version does not know: leave the state be.
      const unknown: never = event;
      void unknown;
      return state;
    }
  }
}

function withItem(state: RegisteredShop, menuId: string, item: MenuItem): RegisteredShop {
  return { ...state, menu: { ...state.menu, [menuId]: item } };
}

function updateItem(state: RegisteredShop, menuId: string, change: Partial<MenuItem>): RegisteredShop {
  const item = menuItem(state, menuId);
  return item ? withItem(state, menuId, { ...item, ...change }) : state;
}

function touches(command: ShopCommand): readonly string[] | undefined {
  switch (command.type) {
    case 'AddMenuItem':
    case 'ChangeMenuPrice':
    case 'MarkMenuSoldOut':
    case 'RestockMenuItem':
    case 'RemoveMenuItem':
      return [`menu:${command.data.menuId}`];
    case 'RenameShop':
      return ['name'];
    case 'OpenShop':
    case 'CloseShop':
      return ['open'];
    case 'ChangeDeliveryInfo':
      return ['delivery'];
    case 'RegisterShop':
      return undefined;
    default: {
      const unhandled: never = command;
      void unhandled;
      return undefined;
    }
  }
}

function eventTouches(event: ShopEvent): readonly string[] | undefined {
  switch (event.type) {
    case 'MenuItemAdded':
    case 'MenuPriceChanged':
    case 'MenuItemSoldOut':
    case 'MenuItemRestocked':
    case 'MenuItemRemoved':
      return [`menu:${event.data.menuId}`];
    case 'ShopRenamed':
      return ['name'];
    case 'ShopOpened':
    case 'ShopClosed':
      return ['open'];
    case 'DeliveryInfoChanged':
      return ['delivery'];
    case 'ShopRegistered':
      return undefined;
    default: {
      // An event type this version does not know may have changed anything.
      const unknown: never = event;
      void unknown;
      return undefined;
    }
  }
}

/** The shop aggregate: its profile, opening state, delivery terms and menu. */
export const shop = defineAggregate({
  name: 'shop',
  commands: shopCommands,
  events: shopEvents,
  initialState: (): ShopState => ({ status: 'unregistered' }),
  decide,
  evolve,
  touches,
  eventTouches,
  upcast: upcastShopEvent,
});
