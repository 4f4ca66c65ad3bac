import type { FastifyInstance } from 'fastify';
import { Type, type Static, type TObject, type TSchema } from '@fastify/type-provider-typebox';
import { pathParams } from '../core/aggregate.js';
import type { ViewKey } from '../core/projection.js';
import type { ViewOf, ViewReader } from '../read/viewStore.js';
import type { ReadPolicy } from './queryRoutes.js';
import { Cursor, DEFAULT_LIMIT, ErrorBody, Limit, Page } from './paging.js';
import type { QueryRoutes } from './queryRoutes.js';
import { sendError } from './replies.js';

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
  /**
   * Document fields the routes leave out of their replies: ones the fold keeps for itself,
   * such as a running sum behind an average. The response schema is the document's without
   * them, so they are not in the OpenAPI document and the serializer drops them. Each must
   * be a property of the document schema (a `TypeError` otherwise).
   */
  readonly omit?: readonly string[];
}

/** A page of a list route: at most `limit` items and the `next` cursor. */
export function listRoute<Q extends TObject = TObject>(route: ListRoute<Q>): ListRoute<Q> {
  return route;
}

/**
 * A view's standard read routes, from its key and its indexes, with its `document` schema
 * as the response (see docs/architecture.md, "HTTP"): get by key (404 `not_found` when
 * there is none) and list by index prefix with cursor paging (`limit` 1–100, `cursor` from
 * the last page's `next`; 400 `invalid_cursor` for one this listing did not give out). Each
 * names its projection, so `X-Min-Position` waits for it, and is named `<projection>.get` or
 * `<projection>.<list name>` in the OpenAPI document. `omit` keeps fields the fold needs out
 * of the replies. Hand-written routes sit beside them as any `defineRoutes` do.
 *
 * ```ts
 * export const cartRoutes = viewRoutes(cartDetails, {
 *   get: '/carts/:id',
 *   lists: [listRoute({ name: 'byClient', path: '/clients/:id/carts', prefix: ({ id }) => [id!] })],
 *   omit: ['openedPosition'],
 * });
 * ```
 */
export function viewRoutes<D extends object>(projection: ViewOf<D> & { readonly document: TSchema }, spec: ViewRoutesSpec): QueryRoutes {
  const document = served(projection.name, projection.document, spec.omit ?? []);
  const tags = [...(spec.tags ?? [projection.name])];
  const get: GetRoute | undefined = typeof spec.get === 'string' ? { path: spec.get } : spec.get;
  return async (app: FastifyInstance, { views }: { views: ViewReader }) => {
    if (get) {
      app.get(
        get.path,
        {
          config: { projection, ...(get.access ? { access: get.access } : {}) },
          schema: { tags, operationId: `${projection.name}.get`, params: paramsOf(get.path), response: { 200: document, '4xx': ErrorBody } },
        },
        async (request, reply) => {
          const params = request.params as Record<string, string>;
          const key = get.key ? get.key(params) : params['id']!;
          const doc = views.get(projection, key);
          if (doc === undefined) return sendError(reply, 'not_found', `${projection.name} has no document ${JSON.stringify(key)}`);
          return doc;
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
        async (request) => {
          const { limit, cursor, ...rest } = request.query as { limit?: number; cursor?: string } & Record<string, unknown>;
          const page = views.byIndex(projection, list.prefix(request.params as Record<string, string>, rest), { limit: limit ?? DEFAULT_LIMIT, ...(cursor === undefined ? {} : { cursor }) });
          return page.next === undefined ? { items: page.items } : { items: page.items, next: page.next };
        },
      );
    }
  };
}

/** The document schema without the fields in `omit`, each of which it must have. */
function served(name: string, document: TSchema, omit: readonly string[]): TSchema {
  if (omit.length === 0) return document;
  const properties = (document as { properties?: Record<string, unknown> }).properties ?? {};
  const unknown = omit.filter((field) => !Object.hasOwn(properties, field));
  if (unknown.length > 0) throw new TypeError(`viewRoutes(${name}): omit names ${unknown.join(', ')}, which the document schema does not have`);
  return Type.Omit(document, [...omit]);
}

function paramsOf(path: string) {
  return Type.Object(Object.fromEntries(pathParams(path).map((p) => [p, Param])));
}
