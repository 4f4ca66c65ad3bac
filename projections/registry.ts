import type { AnyProjection } from '../src/projection.js';
import { orderHistory } from './orderHistory/orderHistory.projection.js';
import { shopDisplay } from './shopDisplay/shopDisplay.projection.js';
import { shopList } from './shopList/shopList.projection.js';
import { shopStats } from './shopStats/shopStats.projection.js';

/** The reference domain's read models, as the projection runner hosts them. */
export const projections: readonly AnyProjection[] = [shopDisplay, shopList, orderHistory, shopStats];
