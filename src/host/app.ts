import type { AnyAggregate } from '../core/aggregate.js';
import type { AnyProjection } from '../core/projection.js';
import type { QueryRoutes } from '../http/queryApp.js';

/**
 * An application converge hosts: its aggregates, its views, and the views' query routes.
 * Adding an aggregate or a view is adding it here; nothing in the runtime changes.
 */
export interface ConvergeApp {
  readonly aggregates: readonly AnyAggregate[];
  readonly projections: readonly AnyProjection[];
  readonly routes: readonly QueryRoutes[];
}
