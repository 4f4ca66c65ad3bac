import type { FastifyInstance } from 'fastify';
import type { AnyProjection } from '../core/projection.js';
import type { ViewReader } from '../read/viewStore.js';

// Part of the public API: its declarations must not reach the query app's, which name NATS types.

/**
 * A view's query routes, mounted by every worker's query API. A route that reads a view
 * names its projection in `config: { projection }`, so that `X-Min-Position` knows what
 * to wait for.
 */
export type QueryRoutes = (app: FastifyInstance, deps: { readonly views: ViewReader }) => Promise<void>;

/** Declares a view's query routes (a Fastify plugin given the view reader). */
export function defineRoutes(routes: QueryRoutes): QueryRoutes {
  return routes;
}

/** Who may call a query route once tokens are configured (see docs/architecture.md, "HTTP"). */
export type ReadPolicy = 'public' | 'reader' | 'customer';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The projection a query route reads, so `X-Min-Position` knows what to wait for. */
    projection?: AnyProjection;
    /** Who may call this query route when tokens are configured; `http.readPolicy` may override it. */
    access?: ReadPolicy;
  }
}
