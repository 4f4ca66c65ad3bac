import type { QueryRoutes } from '../src/queryApp.js';
import { orderHistoryRoutes } from './orderHistory/orderHistory.routes.js';
import { shopDisplayRoutes } from './shopDisplay/shopDisplay.routes.js';
import { shopImportRoutes } from './shopDisplay/shopImport.routes.js';
import { shopListRoutes } from './shopList/shopList.routes.js';
import { shopStatsRoutes } from './shopStats/shopStats.routes.js';

/** The query routes of the reference views, mounted by every worker's query API. */
export const queryRoutes: readonly QueryRoutes[] = [shopDisplayRoutes, shopListRoutes, orderHistoryRoutes, shopStatsRoutes, shopImportRoutes];
