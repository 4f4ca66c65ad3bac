import type { TObject } from 'typebox';
import type { AnyAggregate } from '../core/aggregate.js';
import type { AnyProjection } from '../core/projection.js';
import type { AnyProcess, AnyReactor } from '../core/reactions.js';
import type { QueryRoutes } from '../http/queryRoutes.js';
import { archivables, lifecycleView } from '../lifecycle/lifecycleView.js';
import { processesView } from '../react/processView.js';

/**
 * An application converge hosts: its aggregates, its views, and the views' query routes.
 * Adding an aggregate or a view is adding it here; nothing in the runtime changes. `A` is
 * the union of its aggregates, which types `dispatch` and the services their lookups need.
 */
export interface ConvergeApp<A extends AnyAggregate = AnyAggregate, R extends AnyReactor = AnyReactor> {
  readonly aggregates: readonly A[];
  readonly projections?: readonly AnyProjection[];
  readonly routes?: readonly QueryRoutes[];
  /** What runs after commit for events of the app (docs/architecture.md, "Reactions"). `R` is their union, which types the services they need. */
  readonly reactors?: readonly R[];
  readonly processes?: readonly AnyProcess[];
  /**
   * The app's own settings, as sections of the configuration (`{ orders: { acceptTimeoutMs } }`),
   * each key with a default: set like converge's own (config files, `CONVERGE_ORDERS_ACCEPT_TIMEOUT_MS`),
   * validated with them, and given to processes as `settings`.
   */
  readonly settings?: TObject;
}

/**
 * Every view an app's runtime keeps: its own; converge's processes view (the timers' due
 * index, `processesView`) when it has processes; and converge's lifecycle view (the
 * archiver's work list, `lifecycleView`) when it has anything to archive.
 */
export function viewsOf(app: Pick<ConvergeApp, 'aggregates' | 'projections' | 'processes'>): AnyProjection[] {
  const processes = app.processes ?? [];
  const archived = archivables(app.aggregates, processes, 0).size > 0;
  return [...(app.projections ?? []), ...(processes.length > 0 ? [processesView(processes)] : []), ...(archived ? [lifecycleView(app.aggregates, processes)] : [])];
}

/** Declares an app, keeping its aggregates' types: `createConverge(defineApp({ aggregates: [cart] }))` types `dispatch`. */
export function defineApp<T extends ConvergeApp>(app: T): T {
  const twice = (names: readonly string[]) => names.find((n, i) => names.indexOf(n) !== i);
  const aggregate = twice(app.aggregates.map((a) => a.name));
  if (aggregate !== undefined) throw new TypeError(`two aggregates are named ${aggregate}`);
  const reaction = twice([...(app.reactors ?? []), ...(app.processes ?? [])].map((r) => r.name));
  if (reaction !== undefined) throw new TypeError(`two reactors or processes are named ${reaction}`);
  return Object.freeze({ ...app });
}
