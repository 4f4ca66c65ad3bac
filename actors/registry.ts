import type { AnyAggregate } from '../src/aggregate.js';
import { order } from './order/order.decider.js';
import { review } from './review/review.decider.js';
import { shop } from './shop/shop.decider.js';

/** The reference domain's aggregates, as the runtime hosts them. */
export const aggregates: readonly AnyAggregate[] = [shop, order, review];
