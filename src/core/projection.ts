import type { Static, TObject, TSchema } from 'typebox';
import type { DomainEvent, StoredEvent } from './aggregate.js';
import type { CommitMetadata } from './eventStore.js';

/** A document key, or an index key: a string, or a tuple of strings and numbers sorted as LMDB sorts them. */
export type ViewKey = string | (string | number)[];

/** Where an event came from: its commit's aggregate, version and global position. */
export interface EventMeta {
  readonly aggregate: string;
  readonly id: string;
  /** The aggregate's version after the commit holding this event. */
  readonly version: number;
  /** The commit's stream position. */
  readonly position: number;
  readonly at: string;
  /** The commit's metadata (correlation, cause, caller); absent on commits stored before it was recorded. */
  readonly metadata?: CommitMetadata;
}

/** What to do when a fold throws. */
export type ErrorPolicy =
  | { readonly kind: 'park' }
  | { readonly kind: 'retry'; readonly times: number }
  | { readonly kind: 'stop' };

/**
 * A read model as a declaration (see docs/architecture.md, "Projections"). The shared
 * runner owns consuming, batching, transactions and checkpoints; a projection only says
 * which document an event changes and how. `E` is the union of the events it folds, in
 * their current (upcast) shape, and `D` its document.
 */
export interface Projection<E extends DomainEvent = DomainEvent, D extends object = object> {
  readonly name: string;
  /** Bump when the fold or the document shape changes: the view is rebuilt at start. */
  readonly version: number;
  /** Event types this projection folds; others never reach it. */
  readonly handles: readonly E['type'][];
  /** The document an event changes, or `undefined` for none. */
  key(event: StoredEvent<E>, meta: EventMeta): ViewKey | undefined;
  /** The document after the event; `undefined` deletes it. Pure: no I/O, no clock. */
  fold(doc: D | undefined, event: StoredEvent<E>, meta: EventMeta): D | undefined;
  /**
   * Secondary index entries of a document: each is a sortable key prefix, to which the
   * runner appends the document key. Entries of the previous version are removed.
   */
  indexes?(doc: D): readonly (readonly (string | number)[])[];
  /** Default: park the event and go on. */
  readonly onError?: ErrorPolicy;
  /**
   * The document's schema, when declared in TypeBox: `D` is derived from it, every document
   * the fold writes is checked against it (one that does not fit is handled as a fold that
   * threw, under `onError`), and `viewRoutes` answer with it.
   */
  readonly document?: TSchema;
  /**
   * Document fields the fold keeps for itself, such as a running sum behind an average:
   * stored apart from the rest, which is what every read sends (docs/architecture.md,
   * "Documents as stored bytes"), and left out of `viewRoutes`' response schema. With a
   * TypeBox document, each must be one of its properties (a `TypeError` otherwise).
   */
  readonly hidden?: readonly string[];
}

/**
 * Declares a projection, typed over the events it folds and its document:
 *
 * ```ts
 * export const shopDisplay = defineProjection<ShopEvent | OrderPlaced, ShopDisplayDoc>({
 *   name: 'shopDisplay', version: 1,
 *   handles: ['ShopRegistered', 'ShopRenamed', 'OrderPlaced'],
 *   key: (event, meta) => ...,
 *   fold: (doc, event, meta) => ...,   // `event` narrows on `event.type`, no casts
 * });
 * ```
 *
 * The runner hands `key` and `fold` only the types in `handles`, upcast by the aggregates'
 * upcasters, so the event has the shape its type says. With a document declared in
 * TypeBox, use `defineProjection.of(schema)`.
 */
function define<E extends DomainEvent, D extends object>(projection: Projection<E, D>): Projection<E, D> {
  return Object.freeze({ ...projection });
}

/**
 * A projection whose document is declared once, in TypeBox: the document type is derived
 * from the schema, every document the fold writes is checked against it (one that does not
 * fit is handled as a fold that threw, under `onError`), and `viewRoutes` answer with it.
 *
 * ```ts
 * export const cartDetails = defineProjection.of(CartDetails)({
 *   name: 'cartDetails', version: 1, handles: ['CartOpened', ...],
 *   key: (event: CartEvent, meta) => meta.id,
 *   fold: (doc, event, meta) => ...,   // returns a `Static<typeof CartDetails>`
 * });
 * ```
 *
 * The schema comes first, in a call of its own, so that TypeScript knows the document's
 * type before it reads the fold: literal fields (`status: 'open'`) keep their types.
 */
function of<S extends TObject>(document: S) {
  return <E extends DomainEvent>(projection: Omit<Projection<E, Static<S>>, 'document'>): Projection<E, Static<S>> & { readonly document: S } => {
    const unknown = (projection.hidden ?? []).filter((field) => !Object.hasOwn(document.properties, field));
    if (unknown.length > 0) throw new TypeError(`${projection.name}: hidden names ${unknown.join(', ')}, which the document schema does not have`);
    return Object.freeze({ ...projection, document });
  };
}

/** Declares a projection (see `define` above); `defineProjection.of(schema)` for a document declared in TypeBox. */
export const defineProjection = Object.assign(define, { of });

/** A projection with its types erased, for registries and the runner. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProjection = Projection<any, any>;

/** The document type of a projection. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DocOf<P> = P extends Projection<any, infer D> ? D : never;

/**
 * A descending sort value for a number in an index key: index entries sort ascending, so
 * a listing by "most first" indexes the negated value. `-0` is avoided because LMDB's key
 * encoding may order it apart from `0`.
 */
export function descending(value: number): number {
  return value === 0 ? 0 : -value;
}
