import type { OrderEvent } from '../actors/order/order.events.js';
import type { ReviewEvent } from '../actors/review/review.events.js';
import type { ShopEvent } from '../actors/shop/shop.events.js';

/** Every event of the shop platform, in its current (upcast) shape. */
export type PlatformEvent = ShopEvent | OrderEvent | ReviewEvent;

/** The events of the types named, so that a projection's `handles` list types its fold. */
export type EventsOf<T extends PlatformEvent['type']> = Extract<PlatformEvent, { type: T }>;
