import { Type } from 'typebox';
import type { CommandOf } from '@converge-es/converge';
import { Amount, EmptyBody, Id, Name, Price } from '../shared.schemas.js';

const Category = Type.String({ minLength: 1, maxLength: 50 });

/** Body of `register`: delivery terms may be omitted and then default to 0. */
export const RegisterShopBody = Type.Object(
  {
    name: Name,
    category: Category,
    ownerId: Id,
    minOrderAmount: Type.Optional(Amount),
    deliveryFee: Type.Optional(Amount),
  },
  { additionalProperties: false },
);

/** Body of `rename`. */
export const RenameShopBody = Type.Object({ name: Name }, { additionalProperties: false });

/** Body of `change-delivery-info`: both terms, so the change is one intent. */
export const ChangeDeliveryInfoBody = Type.Object(
  { minOrderAmount: Amount, deliveryFee: Amount },
  { additionalProperties: false },
);

/** Body of `add-menu-item`: the caller chooses the menu id, so retries stay idempotent. */
export const AddMenuItemBody = Type.Object(
  { menuId: Id, name: Name, price: Price },
  { additionalProperties: false },
);

/** Body of `change-menu-price`. */
export const ChangeMenuPriceBody = Type.Object({ menuId: Id, price: Price }, { additionalProperties: false });

/** Body of the commands that name one menu item and nothing else. */
export const MenuItemBody = Type.Object({ menuId: Id }, { additionalProperties: false });

/** The shop's HTTP surface: URL segment → command type and body schema. */
export const shopCommands = {
  register: { type: 'RegisterShop', schema: RegisterShopBody },
  rename: { type: 'RenameShop', schema: RenameShopBody },
  open: { type: 'OpenShop', schema: EmptyBody },
  close: { type: 'CloseShop', schema: EmptyBody },
  'change-delivery-info': { type: 'ChangeDeliveryInfo', schema: ChangeDeliveryInfoBody },
  'add-menu-item': { type: 'AddMenuItem', schema: AddMenuItemBody },
  'change-menu-price': { type: 'ChangeMenuPrice', schema: ChangeMenuPriceBody },
  'mark-menu-sold-out': { type: 'MarkMenuSoldOut', schema: MenuItemBody },
  'restock-menu-item': { type: 'RestockMenuItem', schema: MenuItemBody },
  'remove-menu-item': { type: 'RemoveMenuItem', schema: MenuItemBody },
} as const;

/** A shop command as `decide` receives it, its `data` already validated against its schema. */
export type ShopCommand = CommandOf<typeof shopCommands>;
