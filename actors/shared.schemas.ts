import { Type } from 'typebox';

// Limits live in the schemas so that bad input is a 400 at the edge, never a 422 from a decider.

/** An aggregate or entity id: 1–64 URL-safe characters. */
export const Id = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' });

/** A display name (shop, menu item): 1–100 characters. */
export const Name = Type.String({ minLength: 1, maxLength: 100 });

/** A menu price in KRW: an integer from 100 to 1,000,000. */
export const Price = Type.Integer({ minimum: 100, maximum: 1_000_000 });

/** An amount in KRW that may be zero (minimum order, delivery fee). */
export const Amount = Type.Integer({ minimum: 0, maximum: 1_000_000 });

/** A free-text reason given for a rejection or cancellation: 1–500 characters. */
export const Reason = Type.String({ minLength: 1, maxLength: 500 });

/** Body of a command that needs nothing but its URL (`open`, `accept`): still closed to extra properties. */
export const EmptyBody = Type.Object({}, { additionalProperties: false });
