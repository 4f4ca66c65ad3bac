import { Type, type TSchema } from '@fastify/type-provider-typebox';

// Schemas that query routes share: ids, pages and cursors, and the error shape.

/** Route params naming one aggregate: 1–64 characters of `[A-Za-z0-9_-]` (see docs/architecture.md, "HTTP"). */
export const IdParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });

/** Page size when the client gives none. */
export const DEFAULT_LIMIT = 20;

/** Page size of a listing: 1–100. */
export const Limit = Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_LIMIT });

/** An opaque cursor from a previous page's `next`; the view store rejects one it did not give out. */
export const Cursor = Type.String({ minLength: 1, maxLength: 500 });

/** One page of a listing. */
export function Page<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), next: Type.Optional(Type.String()) });
}

/** The error shape every converge API answers with: `{ error, message, ...details }`. */
export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() }, { additionalProperties: true });
