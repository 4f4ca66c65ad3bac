import { randomUUID } from 'node:crypto';
import type { ArchivableStore, ArchivedCommit } from '../core/archive.js';
import { EventStoreUnavailableError, WrongExpectedPositionError } from '../core/errors.js';
import { passedOver, StoreChangedError, type Commit, type CommitSubscription, type Delivered, type EventStore, type StoredCommit } from '../core/eventStore.js';

/** An in-memory event store, with the controls a test needs to make it misbehave. */
export interface MemoryEventStore extends ArchivableStore {
  /** Every commit, in order. */
  readonly commits: readonly StoredCommit[];
  /** The id of this incarnation of the store. */
  readonly streamId: string;
  /**
   * Makes the store unreachable (appends and reads throw `EventStoreUnavailableError`,
   * subscriptions end with it) until `reconnect`. With `appendLands`, an append made
   * meanwhile is stored but still answered with the error, as a lost ack would be.
   */
  disconnect(opts?: { appendLands?: boolean }): void;
  reconnect(): void;
  /** Runs `hook` before each append, e.g. to append a competing commit first. */
  beforeAppend(hook: ((commit: Commit) => void | Promise<void>) | undefined): void;
}

/**
 * The event store contract on a plain array, for unit tests of the runtime: positions
 * start at 1, an append checks the aggregate's last position, a command id seen before
 * answers the original position as a duplicate (checked before the expected position, as
 * JetStream does), and subscriptions deliver every commit after their start, live.
 */
export function createMemoryEventStore(opts: { streamId?: string; now?: () => number } = {}): MemoryEventStore {
  const now = opts.now ?? Date.now;
  const streamId = opts.streamId ?? randomUUID();
  const commits: (StoredCommit & { storedAt: number })[] = [];
  /** Positions the archiver removed: gaps, as JetStream leaves them. */
  const removed = new Set<number>();
  const held = (c: StoredCommit | undefined) => c !== undefined && !removed.has(c.position);
  const lastOf = new Map<string, number>();
  const byCommandId = new Map<string, number>();
  const waiting = new Set<() => void>();
  const reconnectListeners = new Set<() => void>();
  let connected = true;
  let appendLands = false;
  let hook: ((commit: Commit) => void | Promise<void>) | undefined;

  const wake = () => {
    for (const w of [...waiting]) w();
  };
  const guard = () => {
    if (!connected) throw new EventStoreUnavailableError();
  };
  const keyOf = (aggregate: string, id: string) => `${aggregate}.${id}`;

  function store(commit: Commit): StoredCommit {
    const stored = { ...structuredClone(commit), position: commits.length + 1, storedAt: now() };
    commits.push(stored);
    lastOf.set(keyOf(commit.aggregate, commit.id), stored.position);
    byCommandId.set(`${keyOf(commit.aggregate, commit.id)}.${commit.commandId}`, stored.position);
    wake();
    return stored;
  }

  return {
    get commits() {
      return commits;
    },
    streamId,

    async append(commit, expectedPosition) {
      await hook?.(commit);
      const duplicate = byCommandId.get(`${keyOf(commit.aggregate, commit.id)}.${commit.commandId}`);
      if (!connected) {
        if (appendLands && duplicate === undefined && (lastOf.get(keyOf(commit.aggregate, commit.id)) ?? 0) === expectedPosition) store(commit);
        throw new EventStoreUnavailableError();
      }
      if (duplicate !== undefined) return { position: duplicate, duplicate: true };
      const last = lastOf.get(keyOf(commit.aggregate, commit.id)) ?? 0;
      if (last !== expectedPosition) throw new WrongExpectedPositionError(`events.${keyOf(commit.aggregate, commit.id)}`, expectedPosition);
      return { position: store(commit).position, duplicate: false };
    },

    async *read(aggregate, id, afterPosition) {
      guard();
      for (const c of commits) {
        if (c.position > afterPosition && c.aggregate === aggregate && c.id === id && held(c)) {
          const { storedAt: _, ...commit } = c;
          yield structuredClone(commit);
        }
      }
    },

    async *readSince(aggregate, id, sinceMs) {
      guard();
      for (const c of commits) {
        if (c.storedAt >= sinceMs && c.aggregate === aggregate && c.id === id && held(c)) {
          const { storedAt: _, ...commit } = c;
          yield structuredClone(commit);
        }
      }
    },

    async lastPosition(aggregate, id) {
      guard();
      return lastOf.get(keyOf(aggregate, id)) ?? 0;
    },

    async nextPosition(aggregate, id, afterPosition) {
      guard();
      for (let p = afterPosition + 1; p <= commits.length; p++) {
        const c = commits[p - 1];
        if (c && c.aggregate === aggregate && c.id === id && held(c)) return p;
      }
      return 0;
    },

    async commitAt(position) {
      guard();
      const c = commits[position - 1];
      return held(c) ? structuredClone(c) : undefined;
    },

    async *readStored(aggregate, id) {
      guard();
      for (const c of commits) if (c.aggregate === aggregate && c.id === id && held(c)) yield structuredClone(c) as ArchivedCommit;
    },

    async remove(list) {
      guard();
      for (const { position, aggregate, id } of list) {
        const c = commits[position - 1];
        if (!c || removed.has(position)) continue;
        if (c.aggregate !== aggregate || c.id !== id) throw new EventStoreUnavailableError(`position ${position} holds ${c.aggregate}/${c.id}, not ${aggregate}/${id}: nothing is removed there`);
        removed.add(position);
        const key = keyOf(c.aggregate, c.id);
        if (lastOf.get(key) === position) {
          // The aggregate's last live commit is now the latest one left, if any.
          const left = commits.filter((o) => o.aggregate === c.aggregate && o.id === c.id && !removed.has(o.position)).at(-1);
          if (left) lastOf.set(key, left.position);
          else lastOf.delete(key);
        }
      }
    },

    async liveAggregates() {
      guard();
      return lastOf.size;
    },

    async head() {
      guard();
      return { identity: { stream: streamId }, lastPosition: commits.length, firstPosition: commits.find(held)?.position ?? commits.length + 1 };
    },

    async subscribe(afterPosition, { stream, only, aggregate }) {
      guard();
      if (stream !== undefined && stream !== streamId) throw new StoreChangedError(streamId, stream);
      let closed = false;
      let wakeUp: (() => void) | undefined;
      const close = () => {
        closed = true;
        wakeUp?.();
      };
      return {
        async *[Symbol.asyncIterator](): AsyncIterator<Delivered> {
          let next = afterPosition + 1;
          while (!closed) {
            if (!connected) throw new EventStoreUnavailableError();
            const c = commits[next - 1];
            if (c && (removed.has(c.position) || (aggregate !== undefined && c.aggregate !== aggregate))) {
              next++;
              continue;
            }
            if (c) {
              next++;
              const { storedAt, ...commit } = c;
              const delivered = only && !only.has(commit.aggregate) ? passedOver(commit.aggregate, commit.id, commit.position) : structuredClone(commit);
              yield { commit: delivered, storedAt, head: commits.length };
              continue;
            }
            await new Promise<void>((resolve) => {
              wakeUp = () => {
                waiting.delete(wakeUp!);
                resolve();
              };
              waiting.add(wakeUp);
            });
          }
        },
        close,
      } satisfies CommitSubscription;
    },

    isAvailable: () => connected,
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },

    disconnect(o = {}) {
      connected = false;
      appendLands = o.appendLands ?? false;
      wake();
    },
    reconnect() {
      connected = true;
      appendLands = false;
      for (const l of reconnectListeners) l();
    },
    beforeAppend(h) {
      hook = h;
    },
  };
}
