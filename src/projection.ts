import type { StoredEvent } from './aggregate.js';

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
}

/** What to do when a fold throws. */
export type ErrorPolicy =
  | { readonly kind: 'park' }
  | { readonly kind: 'retry'; readonly times: number }
  | { readonly kind: 'stop' };

/**
 * A read model as a declaration (STYLE: "a projection is a declaration"). The shared
 * runner owns consuming, batching, transactions and checkpoints; a projection only
 * says which document an event changes and how.
 */
export interface Projection<D extends object = object> {
  readonly name: string;
  /** Bump when the fold or the document shape changes: the view is rebuilt at start. */
  readonly version: number;
  /** Event types this projection folds; others never reach it. */
  readonly handles: readonly string[];
  /** The document an event changes, or `undefined` for none. */
  key(event: StoredEvent, meta: EventMeta): ViewKey | undefined;
  /** The document after the event; `undefined` deletes it. Pure: no I/O, no clock. */
  fold(doc: D | undefined, event: StoredEvent, meta: EventMeta): D | undefined;
  /**
   * Secondary index entries of a document: each is a sortable key prefix, to which the
   * runner appends the document key. Entries of the previous version are removed.
   */
  indexes?(doc: D): readonly (readonly (string | number)[])[];
  /** Default: park the event and go on. */
  readonly onError?: ErrorPolicy;
}

/** A projection with its document type erased, for registries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProjection = Projection<any>;
