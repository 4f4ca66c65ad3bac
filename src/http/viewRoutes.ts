import type { FastifyInstance } from 'fastify';
import { Type, type Static, type TObject, type TSchema } from '@fastify/type-provider-typebox';
import { pathParams } from '../core/aggregate.js';
import type { ViewKey } from '../core/projection.js';
import type { ViewOf, ViewReader } from '../read/viewStore.js';
import type { ReadPolicy } from './queryRoutes.js';
import { Cursor, DEFAULT_LIMIT, ErrorBody, Limit, Page } from './paging.js';
import type { QueryRoutes } from './queryRoutes.js';
import { sendError } from './replies.js';
import { sendStored, sendStoredPage } from './storedReplies.js';

/** A 304 has no body; `Unsafe` gives it the static type `undefined` so `send()` takes no payload. */
export const NotModified = Type.Unsafe<undefined>({ description: 'not modified: the If-None-Match ETag is current' });
/** The conditional-read header of a document route. */
export const IfNoneMatch = Type.Object({ 'if-none-match': Type.Optional(Type.String({ maxLength: 1000 })) });

/** A path parameter of a view route: 1–64 URL-safe characters, as ids are. */
const Param = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });

/** `GET <path>`: one document, by a key made of the path's parameters (`:id` by default). */
export interface GetRoute {
  readonly path: string;
  /** The document's key; by default the path's `id` parameter. */
  readonly key?: (params: Readonly<Record<string, string>>) => ViewKey;
  readonly access?: ReadPolicy;
}

/** `GET <path>?limit=&cursor=`: the documents of one index prefix, a page at a time, in index order. */
export interface ListRoute<Q extends TObject = TObject> {
  readonly path: string;
  /** Names the route in the OpenAPI document: `<projection>.<name>`. */
  readonly name: string;
  /** The index prefix to list, from the path's parameters and the query's filters. */
  readonly prefix: (params: Readonly<Record<string, string>>, query: Static<Q>) => readonly (string | number)[];
  /** Filters beside `limit` and `cursor`, in TypeBox; coerced to their types. */
  readonly query?: Q;
  readonly access?: ReadPolicy;
}

/** The standard read routes of a view. */
export interface ViewRoutesSpec {
  readonly get?: string | GetRoute;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly lists?: readonly ListRoute<any>[];
  /** OpenAPI tags of every route; the projection's name by default. */
  readonly tags?: readonly string[];
}

/** A page of a list route: at most `limit` items and the `next` cursor. */
export function listRoute<Q extends TObject = TObject>(route: ListRoute<Q>): ListRoute<Q> {
  return route;
}

/**
 * A view's standard read routes, from its key and its indexes, with its `document` schema
 * less its `hidden` fields as the response (see docs/architecture.md, "HTTP"): get by key
 * (404 `not_found` when there is none; an ETag, and 304 for a current `If-None-Match`) and
 * list by index prefix with cursor paging (`limit` 1–100, `cursor` from the last page's
 * `next`; 400 `invalid_cursor` for one this listing did not give out). Both send the
 * documents as stored. Each names its projection, so `X-Min-Position` and
 * `X-Max-Staleness` wait for it, and is named `<projection>.get` or
 * `<projection>.<list name>` in the OpenAPI document. Hand-written routes sit beside them
 * as any `defineRoutes` do.
 *
 * ```ts
 * export const cartRoutes = viewRoutes(cartDetails, {
 *   get: '/carts/:id',
 *   lists: [listRoute({ name: 'byClient', path: '/clients/:id/carts', prefix: ({ id }) => [id!] })],
 * });
 * ```
 */
export function viewRoutes<D extends object>(projection: ViewOf<D> & { readonly document: TSchema }, spec: ViewRoutesSpec): QueryRoutes {
  const document = projection.hidden?.length ? Type.Omit(projection.document, [...projection.hidden]) : projection.document;
  const tags = [...(spec.tags ?? [projection.name])];
  const get: GetRoute | undefined = typeof spec.get === 'string' ? { path: spec.get } : spec.get;
  return async (app: FastifyInstance, { views }: { views: ViewReader }) => {
    if (get) {
      app.get(
        get.path,
        {
          config: { projection, ...(get.access ? { access: get.access } : {}) },
          schema: { tags, operationId: `${projection.name}.get`, params: paramsOf(get.path), headers: IfNoneMatch, response: { 200: document, 304: NotModified, '4xx': ErrorBody } },
        },
        async (request, reply) => {
          const params = request.params as Record<string, string>;
          const key = get.key ? get.key(params) : params['id']!;
          const stored = views.stored(projection, key);
          if (stored === undefined) return sendError(reply, 'not_found', `${projection.name} has no document ${JSON.stringify(key)}`);
          return sendStored(request, reply, stored);
        },
      );
    }
    for (const list of spec.lists ?? []) {
      const filters = (list.query?.properties ?? {}) as Record<string, TSchema>;
      const query = Type.Object({ ...filters, limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false });
      app.get(
        list.path,
        {
          config: { projection, ...(list.access ? { access: list.access } : {}) },
          schema: { tags, operationId: `${projection.name}.${list.name}`, params: paramsOf(list.path), querystring: query, response: { 200: Page(document), '4xx': ErrorBody } },
        },
        async (request, reply) => {
          const { limit, cursor, ...rest } = request.query as { limit?: number; cursor?: string } & Record<string, unknown>;
          const prefix = list.prefix(request.params as Record<string, string>, rest);
          return sendStoredPage(reply, views.byIndexStored(projection, prefix, { limit: limit ?? DEFAULT_LIMIT, ...(cursor === undefined ? {} : { cursor }) }));
        },
      );
    }
  };
}

function paramsOf(path: string) {
  return Type.Object(Object.fromEntries(pathParams(path).map((p) => [p, Param])));
}
