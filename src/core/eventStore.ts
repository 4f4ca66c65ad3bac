import type { StoredEvent } from './aggregate.js';
import { ConvergeError } from './errors.js';

/**
 * What a commit carries besides its events (see docs/architecture.md, "Metadata"): the
 * conversation it belongs to, what caused it, who asked, and the trace it is part of.
 * Commits appended before converge recorded it have none.
 */
export interface CommitMetadata {
  readonly correlationId: string;
  /** The id of what caused the command: itself for a request, an event (`<position>:<index>`) or a timer for a reaction. */
  readonly causationId: string;
  /** The name of the token that sent the command, when access control knows one. */
  readonly caller?: string;
  /** W3C trace context of the append, when tracing was on: the projector's and notifier's spans are its children. */
  readonly traceparent?: string;
  /** Set when the aggregate's `finished` holds for its state after this commit: a candidate for the archive. */
  readonly finished?: true;
}

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
  /** Absent on commits stored before metadata was recorded. */
  readonly metadata?: CommitMetadata;
}

/** A commit as read back, with its position: the global consistency token. */
export interface StoredCommit extends Commit {
  readonly position: number;
}

/** A commit a subscription with `only` passed over: its place in the stream, without its events. */
export function passedOver(aggregate: string, id: string, position: number): StoredCommit {
  return { commandId: '', commandType: '', aggregate, id, version: 0, events: [], position };
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

/** How `EventStore.subscribe` reads. */
export interface SubscribeOptions {
  readonly batchSize: number;
  readonly stream?: string;
  readonly only?: ReadonlySet<string>;
  /**
   * One aggregate's commits alone, filtered by the store: the others are not delivered at
   * all, so positions skip. For a reader of converge's own records (the archive's, the
   * forgets') that must not cost a delivery of every commit.
   */
  readonly aggregate?: string;
  /** Commits as stored, personal fields still sealed: for a reader that needs none of their data (the notifier). */
  readonly sealed?: boolean;
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
   * is another incarnation, it fails with `StoreChangedError` instead of delivering. With
   * `only`, a commit of another aggregate is delivered as its place alone (its aggregate, id
   * and position, no events), without being decoded: a reader that needs a few aggregates'
   * commits passes over the rest at the cost of reading their subject.
   */
  subscribe(afterPosition: number, opts: SubscribeOptions): Promise<CommitSubscription>;
  /** False while the store is known to be unreachable, so callers can fail fast. */
  isAvailable(): boolean;
  /** Calls `listener` whenever the store is reachable again after an outage; answers a function that removes it. */
  onReconnect(listener: () => void): () => void;
}

/**
 * Why the store's stream is not the one positions were taken from: `stream` is its id now,
 * `expected` the id they belong to (see docs/architecture.md, "Views belong to one event store").
 */
export function streamChangedReason(stream: string, expected: string): string {
  return `EVENTS is now stream ${stream}, not ${expected} that the views were built from`;
}

/** A subscription found another incarnation of the store than the one its position belongs to. */
export class StoreChangedError extends ConvergeError {
  constructor(stream: string, expected: string) {
    super('store_changed', streamChangedReason(stream, expected));
  }
}
