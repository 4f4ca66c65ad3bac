import type { StoredEvent } from '@converge-es/converge';
import type { ShopEvent } from './shop.events.js';

/** The type older versions of converge stored a menu price change under. */
const LEGACY_PRICE_CHANGED = 'MenuItemPriceChanged';

/** The data of a legacy price change: the price was called `amount`. */
interface LegacyPriceData {
  readonly menuId: string;
  readonly amount: number;
}

function isLegacyPriceData(data: object): data is LegacyPriceData {
  const d = data as Partial<Record<keyof LegacyPriceData, unknown>>;
  return typeof d.menuId === 'string' && typeof d.amount === 'number';
}

/**
 * Turns a stored shop event into its current shape: a legacy `MenuItemPriceChanged
 * { menuId, amount }` becomes `MenuPriceChanged { menuId, price }`. Every other event,
 * including a legacy one whose data is not the legacy shape, is returned as it is, so
 * `evolve` (which ignores types it does not know) stays total.
 */
export function upcastShopEvent(event: StoredEvent): StoredEvent<ShopEvent> {
  if (event.type === LEGACY_PRICE_CHANGED && isLegacyPriceData(event.data)) {
    const { menuId, amount } = event.data;
    return { type: 'MenuPriceChanged', data: { menuId, price: amount }, at: event.at };
  }
  // Stored events are the deciders' own output, so anything else already has a current shape.
  return event as StoredEvent<ShopEvent>;
}
