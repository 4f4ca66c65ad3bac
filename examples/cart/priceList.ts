import type { PriceList } from './cart.decider.js';

/**
 * A price list held in memory: the shop's catalogue, in KRW. A real one would ask the
 * catalogue service; the cart only needs `unitPrice`.
 */
export function fixedPriceList(prices: Readonly<Record<string, number>>): PriceList {
  return { unitPrice: async (productId) => (Object.hasOwn(prices, productId) ? prices[productId] : undefined) };
}

/** The catalogue `npm run example:cart` sells. */
export const catalogue: Readonly<Record<string, number>> = { tteokbokki: 4500, kimbap: 3500, mandu: 6000, sikhye: 2000 };
