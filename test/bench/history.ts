import type { Commit } from '../../src/core/eventStore.js';

/**
 * Commit `version` of a benchmark shop's history, as the benchmarks append it straight to
 * the stream: its registration, one menu item, then price changes of that item.
 */
export function shopHistoryCommit(id: string, version: number, at: string): Commit {
  return {
    commandId: `${id}-${version}`,
    commandType: version === 1 ? 'RegisterShop' : version === 2 ? 'AddMenuItem' : 'ChangeMenuPrice',
    aggregate: 'shop',
    id,
    version,
    events: [
      version === 1
        ? { type: 'ShopRegistered', data: { name: id, category: 'korean', ownerId: 'o', minOrderAmount: 0, deliveryFee: 0 }, at }
        : version === 2
          ? { type: 'MenuItemAdded', data: { menuId: 'm1', name: 'Kimbap', price: 4000 }, at }
          : { type: 'MenuPriceChanged', data: { menuId: 'm1', price: 1000 + (version % 9000) }, at },
    ],
  };
}
