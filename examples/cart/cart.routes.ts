import { Type } from 'typebox';
import { listRoute, viewRoutes } from '@converge-es/converge';
import { cartDetails } from './cartDetails.projection.js';
import { clientSummary } from './clientSummary.projection.js';

/** The cart views' read routes, derived from their keys, indexes and document schemas. */
export const cartRoutes = [
  viewRoutes(cartDetails, {
    tags: ['carts'],
    get: '/carts/:id',
    lists: [
      listRoute({
        name: 'byClient',
        path: '/clients/:id/carts',
        query: Type.Object({ status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('confirmed'), Type.Literal('cancelled')])) }),
        prefix: ({ id }, { status }) => (status === undefined ? ['client', id!] : ['client-status', id!, status]),
        access: 'customer',
      }),
    ],
  }),
  viewRoutes(clientSummary, { tags: ['carts'], get: { path: '/clients/:id/summary', access: 'customer' } }),
];
