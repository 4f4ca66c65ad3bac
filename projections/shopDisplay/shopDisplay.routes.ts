import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ErrorBody, IdParams, sendError, type ViewReader } from '@converge-es/converge';
import { shopDisplay, ShopDisplayDocument } from './shopDisplay.projection.js';

const { updatedAt, ...served } = Type.Omit(ShopDisplayDocument, ['ratingSum']).properties;

/**
 * The shop display as `GET /shops/:id` and the import API serve it: the document without
 * `ratingSum`. `updatedAt` is optional only for a view built before it existed, while the
 * rebuild its version bump starts has not swapped in yet; a required field missing would
 * make the reply a 500.
 */
export const ShopDisplay = Type.Object({ ...served, updatedAt: Type.Optional(updatedAt) });

/** A 304 has no body; `Unsafe` gives it the static type `undefined` so `send()` takes no payload. */
const NotModified = Type.Unsafe<undefined>({ description: 'not modified: the If-None-Match ETag is current' });

const Headers = Type.Object({ 'if-none-match': Type.Optional(Type.String({ maxLength: 1000 })) });

/** True when an `If-None-Match` header names this ETag (or `*`); weak and listed tags count. */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}

/** `GET /shops/:id`: the shop as a customer sees it, with an ETag of its view position. */
export async function shopDisplayRoutes(app: FastifyInstance, deps: { views: ViewReader }): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/shops/:id',
    {
      config: { projection: shopDisplay, access: 'public' },
      schema: {
        tags: ['shops'],
        operationId: 'shopDisplay.get',
        params: IdParams,
        headers: Headers,
        response: { 200: ShopDisplay, 304: NotModified, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const doc = deps.views.get(shopDisplay, request.params.id);
      if (doc === undefined) return sendError(reply, 'not_found', `no shop ${request.params.id}`);
      const etag = `"${doc.position}"`;
      reply.header('etag', etag);
      if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send();
      // The response schema has no `ratingSum`, so the serializer leaves it out.
      return doc;
    },
  );
}
