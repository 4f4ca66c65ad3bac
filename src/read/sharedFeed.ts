import { passedOver, type StoredCommit } from '../core/eventStore.js';
import type { Feed, FeedHealth, FeedSpec } from './feed.js';

/** Feeds that take one delivery of `EVENTS` between them (see `shareFeeds`). */
export interface SharedFeeds {
  /** Starts a member: a feed as `start` would give, served by the one shared delivery. */
  readonly feed: (spec: FeedSpec) => Feed;
  /** Runs `join` with the shared delivery started once at its end, for all the members it started. */
  together(join: () => Promise<void>): Promise<void>;
}

/**
 * One supervised feed on `EVENTS` for several members, as the live feed is for the
 * projections (docs/architecture.md, "Reactions"). It starts at the lowest member's
 * checkpoint and hands every batch to each member at once; a member passes over what is at
 * or below its own checkpoint. It decodes what any member reads, and a member is handed
 * the others' commits as passed over, as its own feed would have given them. A batch ends
 * when every member has finished it, and none starts before the one before it has ended,
 * even when the consumer fails and the shared feed starts again meanwhile; when a member
 * fails, the shared feed starts again from the lowest checkpoint. So no member runs a
 * commit twice at once. A member that joins late (one resumed) restarts the delivery from its
 * checkpoint once the batch in hand is done; one that leaves only stops being handed
 * batches.
 */
export function shareFeeds(start: (spec: FeedSpec) => Feed, name: string): SharedFeeds {
  const members = new Set<FeedSpec>();
  let shared: Feed | undefined;
  let inFlight: Promise<unknown> = Promise.resolve();
  let holding = 0;
  let wanted = false;

  const from = () => {
    let lowest = Infinity;
    for (const m of members) lowest = Math.min(lowest, m.from());
    return lowest === Infinity ? 0 : lowest;
  };

  const apply = async (batch: StoredCommit[]) => {
    // After the batch before: a consumer's error restarts the shared feed at once, while the
    // members may still be running that batch, and their checkpoints have not moved yet.
    const before = inFlight;
    const done = (async () => {
      await before.catch(() => undefined);
      const union = readsOfAll();
      return Promise.allSettled([...members].map((m) => m.apply(handedTo(m, union, batch))));
    })();
    inFlight = done;
    const failed = (await done).find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  };

  /** Every aggregate a member reads; undefined when one reads them all. */
  function readsOfAll(): ReadonlySet<string> | undefined {
    const all = new Set<string>();
    for (const m of members) {
      if (!m.only) return undefined;
      for (const a of m.only) all.add(a);
    }
    return all;
  }

  const restart = async () => {
    if (holding > 0) {
      wanted = true;
      return;
    }
    const old = shared;
    shared = undefined;
    old?.stop();
    // A stopped feed starts no batch; the one in hand finishes before any member sees its commits again.
    await inFlight;
    if (shared || members.size === 0) return;
    const only = readsOfAll();
    const names = [...members].map((m) => m.name).join(', ');
    shared = start({ name: `${name} (${names})`, from, apply, ...(only ? { only } : {}) });
  };

  const idle = (): FeedHealth => ({ state: 'running', lastBatchAt: Date.now() });

  return {
    feed(spec) {
      // Its own copy: the same spec given twice is two members.
      const member: FeedSpec = { ...spec };
      members.add(member);
      void restart();
      return {
        health: () => shared?.health() ?? idle(),
        unappliedAt: (position) => shared?.unappliedAt(position),
        seen: () => shared?.seen() ?? 0,
        check: (streamLast) => shared?.check(streamLast),
        restart: () => shared?.restart(),
        stop() {
          if (!members.delete(member)) return;
          if (members.size > 0) return;
          shared?.stop();
          shared = undefined;
        },
      };
    },
    async together(join) {
      holding++;
      try {
        await join();
      } finally {
        holding--;
        if (holding === 0 && wanted) {
          wanted = false;
          await restart();
        }
      }
    },
  };
}

/** A batch as a member's own feed would have given it: the commits of aggregates it does not read, passed over. */
function handedTo(spec: FeedSpec, union: ReadonlySet<string> | undefined, batch: StoredCommit[]): StoredCommit[] {
  const only = spec.only;
  if (!only || (union && union.size === only.size)) return batch;
  return batch.map((c) => (only.has(c.aggregate) ? c : passedOver(c.aggregate, c.id, c.position)));
}
