import type { StoredEvent } from '../src/aggregate.js';
import type { OrderEvent } from '../actors/order/order.events.js';
import type { ReviewEvent } from '../actors/review/review.events.js';
import type { ShopEvent } from '../actors/shop/shop.events.js';

/** Every event of the reference domain, in its current (upcast) shape. */
export type ConvergeEvent = StoredEvent<ShopEvent | OrderEvent | ReviewEvent>;

/** An event type name of the reference domain, so that `handles` lists are checked for typos. */
export type ConvergeEventType = ConvergeEvent['type'];

/**
 * Names a stored event as a domain event. The runner upcasts every event and hands a
 * projection only the types it `handles`, all written by this domain's deciders, so the
 * data has the shape its type says; folds then narrow on `type` without further casts.
 */
export function domainEvent(event: StoredEvent): ConvergeEvent {
  return event as ConvergeEvent;
}

/**
 * A descending sort value for an index key. `-0` is avoided because LMDB's key encoding
 * may order it apart from `0`.
 */
export function descending(value: number): number {
  return value === 0 ? 0 : -value;
}
