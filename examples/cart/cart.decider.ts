import { defineAggregate, emit, reject, type DecideContext, type LookupContext } from '@converge-es/converge';
import { cartCommands, type CartCommand } from './cart.commands.js';
import { cartEvents, type CartEvent, type PricedProductItem } from './cart.events.js';

/** Where the cart takes its prices: the shop's price list, on the server, never the client. */
export interface PriceList {
  /** The unit price of a product in KRW, or undefined when it is not sold. */
  unitPrice(productId: string): Promise<number | undefined>;
}

/** What the cart's lookup needs. */
export interface CartServices {
  readonly prices: PriceList;
}

/** A cart's state: plain JSON, so it can be snapshotted. */
export type CartState =
  | { readonly status: 'none' }
  | { readonly status: 'open'; readonly clientId: string; readonly items: Readonly<Record<string, PricedProductItem>> }
  | { readonly status: 'confirmed' | 'cancelled'; readonly clientId: string };

/** What `decide` needs from outside for a command: the unit price of the product being added. */
type CartLookup = { readonly unitPrice?: number | undefined } | undefined;

async function lookup(command: CartCommand, { services }: LookupContext<CartServices>): Promise<CartLookup> {
  if (command.type !== 'AddProductItem') return undefined;
  return { unitPrice: await services.prices.unitPrice(command.data.productId) };
}

function decide(state: CartState, command: CartCommand, { lookup }: DecideContext<object, CartLookup>) {
  if (command.type === 'OpenCart') {
    if (state.status !== 'none') return reject('cart_exists');
    return emit({ type: 'CartOpened', data: { clientId: command.data.clientId } });
  }
  if (state.status === 'none') return reject('cart_not_found');
  if (state.status !== 'open') return reject('cart_closed');
  switch (command.type) {
    case 'AddProductItem': {
      const unitPrice = lookup?.unitPrice;
      if (unitPrice === undefined) return reject('product_not_found');
      const { productId, quantity } = command.data;
      return emit({ type: 'ProductItemAdded', data: { productItem: { productId, quantity, unitPrice } } });
    }
    case 'RemoveProductItem': {
      const item = state.items[command.data.productId];
      if (!item) return reject('product_not_in_cart');
      return emit({ type: 'ProductItemRemoved', data: { productItem: item } });
    }
    case 'ConfirmCart': {
      const items = Object.values(state.items);
      if (items.length === 0) return reject('cart_empty');
      const totalAmount = items.reduce((sum, i) => sum + i.unitPrice * i.quantity, 0);
      return emit({ type: 'CartConfirmed', data: { clientId: state.clientId, totalAmount } });
    }
    case 'CancelCart':
      return emit({ type: 'CartCancelled', data: { clientId: state.clientId } });
  }
}

function evolve(state: CartState, event: CartEvent): CartState {
  switch (event.type) {
    case 'CartOpened':
      return state.status === 'none' ? { status: 'open', clientId: event.data.clientId, items: {} } : state;
    case 'ProductItemAdded': {
      if (state.status !== 'open') return state;
      const { productId, quantity, unitPrice } = event.data.productItem;
      const before = state.items[productId];
      return { ...state, items: { ...state.items, [productId]: { productId, unitPrice, quantity: (before?.quantity ?? 0) + quantity } } };
    }
    case 'ProductItemRemoved': {
      if (state.status !== 'open') return state;
      const { [event.data.productItem.productId]: _removed, ...items } = state.items;
      return { ...state, items };
    }
    case 'CartConfirmed':
      return state.status === 'open' ? { status: 'confirmed', clientId: state.clientId } : state;
    case 'CartCancelled':
      return state.status === 'open' ? { status: 'cancelled', clientId: state.clientId } : state;
  }
}

/** A client's shopping cart: items priced by the server's price list, then confirmed or cancelled. */
export const cart = defineAggregate({
  name: 'cart',
  commands: cartCommands,
  events: cartEvents,
  idPattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
  initialState: (): CartState => ({ status: 'none' }),
  lookup,
  decide,
  evolve,
});
