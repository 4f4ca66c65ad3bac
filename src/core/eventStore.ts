import type { StoredEvent } from './aggregate.js';

/** One commit: the events of one command, appended atomically as one message. */
export interface Commit {
  readonly commandId: string;
  /** The command type name that produced the commit, e.g. `ChangeMenuPrice`. */
  readonly commandType: string;
  readonly aggregate: string;
  readonly id: string;
  /** The aggregate's event count after this commit. */
  readonly version: number;
  readonly events: readonly StoredEvent[];
}

/** A commit as read back, with its position: the global consistency token. */
export interface StoredCommit extends Commit {
  readonly position: number;
}

/** What an append answers. `duplicate`: the command id was seen; `position` is the original's. */
export interface AppendResult {
  readonly position: number;
  readonly duplicate: boolean;
}

/**
 * Which event store this is. `stream` names one incarnation of the stream (a wiped or
 * recreated store gets a new one); `server` the NATS cluster or named server holding it.
 */
export interface StoreIdentity {
  readonly stream: string;
  readonly server?: string;
}

/** The store as a whole, as the read side sees it. */
export interface StoreHead {
  readonly identity: StoreIdentity;
  /** The last position; 0 when the store is empty. */
  readonly lastPosition: number;
  /** The first position still held; 1 unless earlier commits were removed. */
  readonly firstPosition: number;
}

/** A commit as a subscription delivers it. */
export interface Delivered {
  readonly commit: StoredCommit;
  /** When the store took the commit, in ms since the epoch. */
  readonly storedAt: number;
  /** The last position the store knew of when it delivered this one. */
  readonly head: number;
}

/** Every commit after a position, in order, live; ends only when closed or on an error. */
export interface CommitSubscription extends AsyncIterable<Delivered> {
  close(): void;
}

/**
 * The event store (see docs/architecture.md, "Event store"): one stream of commits,
 * appended per aggregate with an expected position, read per aggregate or as a whole.
 * JetStream is the production implementation, and an in-memory one serves unit tests.
 */
export interface EventStore {
  /**
   * Appends a commit to its aggregate if the aggregate's last position is still
   * `expectedPosition` (0 for a new aggregate). Throws `WrongExpectedPositionError` when
   * another writer got there first, and `EventStoreUnavailableError` when the outcome is
   * unknown. A commit whose command id was appended before answers that append's
   * position with `duplicate: true`.
   */
  append(commit: Commit, expectedPosition: number): Promise<AppendResult>;
  /** The commits of one aggregate after `afterPosition`, oldest first. */
  read(aggregate: string, id: string, afterPosition: number): AsyncIterable<StoredCommit>;
  /** The commits of one aggregate the store took at or after `sinceMs` (ms since the epoch), oldest first. */
  readSince(aggregate: string, id: string, sinceMs: number): AsyncIterable<StoredCommit>;
  /** The position of the aggregate's last commit; 0 when it has none. */
  lastPosition(aggregate: string, id: string): Promise<number>;
  /** The commit at a position, if there is one, with when the store took it. */
  commitAt(position: number): Promise<(StoredCommit & { readonly storedAt: number }) | undefined>;
  /** The store's identity and extent. */
  head(): Promise<StoreHead>;
  /**
   * Every commit after `afterPosition`, as they come. When `stream` is given and the store
   * is another incarnation, it fails with `StoreChangedError` instead of delivering.
   */
  subscribe(afterPosition: number, opts: { readonly batchSize: number; readonly stream?: string }): Promise<CommitSubscription>;
  /** False while the store is known to be unreachable, so callers can fail fast. */
  isAvailable(): boolean;
  /** Calls `listener` whenever the store is reachable again after an outage; answers a function that removes it. */
  onReconnect(listener: () => void): () => void;
}

/** A subscription found another incarnation of the store than the one its position belongs to. */
export class StoreChangedError extends Error {
  readonly code = 'store_changed';
  override readonly name = 'StoreChangedError';
}
