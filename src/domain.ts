import type { AnyAggregate } from './aggregate.js';
import type { AnyProjection } from './projection.js';
import type { QueryRoutes } from './queryApp.js';

/** An application hosted by converge: its aggregates, its views and the views' query routes. */
export interface Domain {
  readonly aggregates: readonly AnyAggregate[];
  readonly projections: readonly AnyProjection[];
  readonly routes: readonly QueryRoutes[];
}
