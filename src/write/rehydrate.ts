import type { AnyAggregate } from '../core/aggregate.js';
import { fnv1a } from '../core/partition.js';
import type { Commit, EventStore } from '../core/eventStore.js';
import type { SnapshotStore } from './snapshots.js';

/** A commit an actor remembers, to answer retries and merge stale `If-Match` commands. */
export interface RecentCommit {
  readonly commandId: string;
  /**
   * `fnv1a(commandId)`, so that `replayed` compares a command's id with a number first:
   * comparing two ids as strings reads both (and walks them piece by piece when they were
   * built by concatenation, as Node's `randomUUID()` builds them), and among 64 recent ones
   * under load those reads missed the cache (docs/architecture.md, "Verified facts").
   * Absent in memory saved before it was kept; then it is computed as needed.
   */
  readonly idHash?: number;
  readonly commandType: string;
  /** Version before and after the commit. */
  readonly fromVersion: number;
  readonly version: number;
  readonly position: number;
  readonly events: readonly string[];
  /** What the commit's events changed; `undefined` is everything. */
  readonly touched: readonly string[] | undefined;
}

/** What an actor knows of its aggregate: the fold of its commits so far. */
export interface Memory {
  readonly state: unknown;
  readonly version: number;
  /** Stream position of the last commit; 0 for a new aggregate. */
  readonly position: number;
  readonly recent: readonly RecentCommit[];
}

/** The memory of an aggregate with no commits. */
export function emptyMemory(aggregate: AnyAggregate): Memory {
  return { state: aggregate.initialState(), version: 0, position: 0, recent: [] };
}

/**
 * Folds one commit into memory, keeping at most `keep` recent commits. Every stored event
 * goes through the aggregate's upcaster before `evolve`, so old shapes never reach it.
 */
export function applyCommit(aggregate: AnyAggregate, memory: Memory, commit: Commit, position: number, keep: number): Memory {
  const { state, recent } = foldCommit(aggregate, memory.state, memory.version, commit, position);
  const kept = memory.recent.length >= keep ? memory.recent.slice(memory.recent.length - keep + 1) : memory.recent;
  return { state, version: commit.version, position, recent: [...kept, recent] };
}

/** One commit folded into a state, and what memory remembers of it. */
function foldCommit(aggregate: AnyAggregate, from: unknown, fromVersion: number, commit: Commit, position: number): { state: unknown; recent: RecentCommit } {
  let state = from;
  let touched: string[] | undefined = [];
  for (const stored of commit.events) {
    const event = aggregate.upcast ? aggregate.upcast(stored) : stored;
    state = aggregate.evolve(state, event);
    const keys = aggregate.eventTouches?.(event);
    touched = keys === undefined || touched === undefined ? undefined : [...touched, ...keys];
  }
  const recent: RecentCommit = {
    commandId: commit.commandId,
    idHash: fnv1a(commit.commandId),
    commandType: commit.commandType,
    fromVersion,
    version: commit.version,
    position,
    events: commit.events.map((e) => e.type),
    touched,
  };
  return { state, recent };
}

/**
 * Reads and folds the commits after what memory already holds. The recent commits are
 * trimmed to `keep` now and then rather than copied at every commit, which a replay of
 * thousands of commits would pay `keep` times over.
 */
export async function catchUp(aggregate: AnyAggregate, store: EventStore, id: string, memory: Memory, keep: number): Promise<Memory> {
  let { state, version, position } = memory;
  const recent = [...memory.recent];
  for await (const commit of store.read(aggregate.name, id, memory.position)) {
    const folded = foldCommit(aggregate, state, version, commit, commit.position);
    state = folded.state;
    version = commit.version;
    position = commit.position;
    recent.push(folded.recent);
    if (recent.length >= 2 * keep) recent.splice(0, recent.length - keep);
  }
  return { state, version, position, recent: recent.length > keep ? recent.slice(recent.length - keep) : recent };
}

/** Where an aggregate's memory comes from: its snapshots and the event store. */
export interface RehydrateSource {
  readonly store: EventStore;
  readonly snapshots: SnapshotStore;
  /** The id of the store's stream: snapshots of another stream (a wiped store) are ignored. */
  readonly streamId: string;
  /** Recent commits to remember. */
  readonly keep: number;
}

/**
 * An aggregate's memory: its latest usable snapshot (same state shape, same stream) plus
 * the commits after it. Answers the version the snapshot had, 0 without one.
 */
export async function rehydrate(aggregate: AnyAggregate, id: string, source: RehydrateSource): Promise<{ memory: Memory; snapshotVersion: number }> {
  const snap = source.snapshots.get(aggregate.name, id);
  const usable = snap && snap.shape === aggregate.snapshotVersion && snap.stream === source.streamId;
  const base = usable ? snap.memory : emptyMemory(aggregate);
  return { memory: await catchUp(aggregate, source.store, id, base, source.keep), snapshotVersion: base.version };
}

/**
 * The state of an aggregate as of `atVersion` (its current state when undefined), folded
 * from the event store. Answers version 0 for an aggregate with no commits, and the
 * version actually reached, which is below `atVersion` when that falls inside a commit.
 */
export async function stateAt(aggregate: AnyAggregate, store: EventStore, id: string, atVersion = Number.MAX_SAFE_INTEGER): Promise<Memory> {
  let memory = emptyMemory(aggregate);
  for await (const commit of store.read(aggregate.name, id, 0)) {
    if (commit.version > atVersion) break;
    memory = applyCommit(aggregate, memory, commit, commit.position, 1);
  }
  return memory;
}
