import { defineApp } from '@converge-es/converge';
import { order } from './actors/order/order.decider.js';
import { review } from './actors/review/review.decider.js';
import { shop } from './actors/shop/shop.decider.js';
import { orderHistory } from './projections/orderHistory/orderHistory.projection.js';
import { orderHistoryRoutes } from './projections/orderHistory/orderHistory.routes.js';
import { shopDisplay } from './projections/shopDisplay/shopDisplay.projection.js';
import { shopDisplayRoutes } from './projections/shopDisplay/shopDisplay.routes.js';
import { shopImportRoutes } from './projections/shopDisplay/shopImport.routes.js';
import { shopList } from './projections/shopList/shopList.projection.js';
import { shopListRoutes } from './projections/shopList/shopList.routes.js';
import { shopStats } from './projections/shopStats/shopStats.projection.js';
import { shopStatsRoutes } from './projections/shopStats/shopStats.routes.js';
import { closedShopOrders } from './reactions/closedShopOrders.process.js';
import { orderAcceptance } from './reactions/orderAcceptance.process.js';
import { reviewedOrders } from './reactions/reviewedOrders.reactor.js';
import { shopPlatformSettings } from './reactions/settings.js';

/**
 * The reference application, the shop platform of a food-delivery service: shops and
 * their menus, orders and reviews as aggregates; the shop display, the shop listing, order
 * histories and daily shop statistics as views, with their query routes; and what reacts to
 * events: orders not accepted in time are rejected, a closed shop's waiting orders are
 * rejected, and a posted review is recorded on its order.
 */
export const shopPlatform = defineApp({
  aggregates: [shop, order, review],
  projections: [shopDisplay, shopList, orderHistory, shopStats],
  routes: [shopDisplayRoutes, shopListRoutes, orderHistoryRoutes, shopStatsRoutes, shopImportRoutes],
  processes: [orderAcceptance, closedShopOrders],
  reactors: [reviewedOrders],
  settings: shopPlatformSettings,
});
