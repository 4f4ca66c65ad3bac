import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ErrorBody, IdParams, IfNoneMatch, NotModified, sendError, sendStored, type ViewReader } from '@converge-es/converge';
import { shopDisplay, ShopDisplayDocument } from './shopDisplay.projection.js';

const { updatedAt, ...served } = Type.Omit(ShopDisplayDocument, ['ratingSum']).properties;

/**
 * The shop display as `GET /shops/:id` and the import API serve it: the document without
 * `ratingSum`. `updatedAt` is optional only for a view built before it existed, while the
 * rebuild its version bump starts has not swapped in yet; a required field missing would
 * make the reply a 500.
 */
export const ShopDisplay = Type.Object({ ...served, updatedAt: Type.Optional(updatedAt) });

/**
 * `GET /shops/:id`: the shop as a customer sees it, as stored, with an ETag of the position
 * of the last event that changed it.
 */
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
        headers: IfNoneMatch,
        response: { 200: ShopDisplay, 304: NotModified, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const stored = deps.views.stored(shopDisplay, request.params.id);
      if (stored === undefined) return sendError(reply, 'not_found', `no shop ${request.params.id}`);
      return sendStored(request, reply, stored);
    },
  );
}
