import type { EventStore } from '../core/eventStore.js';

/**
 * How far behind the event store a view is, as a query worker tells it (docs/architecture.md,
 * "Staleness"): the time since the store took the oldest commit the view has not applied,
 * and 0 when the view has applied every commit.
 *
 * The worker looks at the store's head (its last position) now and then, and at the commit
 * just after a view's position when that is below the head. A lag of 0 holds as of the
 * look: commits the store took after it are not counted, so a read that names a budget
 * (`X-Max-Staleness`) is answered from a look no older than its budget. Then the view is
 * at most that far behind whichever way: either it had applied everything the store held
 * at the look, or its oldest unapplied commit is no older than the budget.
 */
export interface ViewLag {
  /**
   * The lag of a view at `position`, from a look at the store at most `freshMs` old (it
   * looks again when the last one is older); null when the store cannot say.
   */
  lagMs(position: number, freshMs: number): Promise<number | null>;
  /** The lag, without waiting, when a look at most `freshMs` old and the commit time it needs are at hand; undefined otherwise. */
  knownMs(position: number, freshMs: number): number | undefined;
}

/** Commits whose time a worker remembers (the oldest unapplied one for each recent view position). */
const REMEMBERED = 64;
/** Positions past a view's that it tries when the next ones are gone from the store (archived or removed). */
const GAP_TRIES = 8;

export function viewLag(store: Pick<EventStore, 'head' | 'commitAt'>, now: () => number = Date.now): ViewLag {
  let look: { at: number; head: number } | undefined;
  let looking: Promise<void> | undefined;
  /** When the store took the first commit after a position: a number, undefined when unknown, or a pending answer. */
  const taken = new Map<number, number | undefined | Promise<number | undefined>>();

  const lookAgain = (): Promise<void> => {
    looking ??= (async () => {
      const at = now();
      try {
        look = { at, head: (await store.head()).lastPosition };
      } catch {
        // The store is away: the last look stands, and callers asking for a fresher one get null.
      } finally {
        looking = undefined;
      }
    })();
    return looking;
  };

  /** When the store took the first commit held after `position`, up to `head`. */
  const firstAfter = (position: number, head: number): number | undefined | Promise<number | undefined> => {
    if (taken.has(position)) return taken.get(position);
    const answer = (async () => {
      for (let p = position + 1; p <= Math.min(head, position + GAP_TRIES); p++) {
        const commit = await store.commitAt(p);
        if (commit) return commit.storedAt;
      }
      return undefined;
    })().then(
      (at) => {
        // An unknown time is not kept: the next read asks again, with the head it knows then.
        if (at === undefined) taken.delete(position);
        else taken.set(position, at);
        return at;
      },
      () => {
        taken.delete(position);
        return undefined;
      },
    );
    taken.set(position, answer);
    if (taken.size > REMEMBERED) taken.delete(taken.keys().next().value!);
    return answer;
  };

  const lagFrom = (at: number | undefined) => (at === undefined ? null : Math.max(0, now() - at));

  return {
    async lagMs(position, freshMs) {
      // A look begun before the call counts if it is fresh enough for it; one in flight that is not is followed by another.
      const oldest = now() - freshMs;
      for (let i = 0; i < 2 && (!look || look.at < oldest); i++) await lookAgain();
      if (!look || look.at < oldest) return null;
      if (position >= look.head) return 0;
      return lagFrom(await firstAfter(position, look.head));
    },
    knownMs(position, freshMs) {
      if (!look || now() - look.at > freshMs) return undefined;
      if (position >= look.head) return 0;
      const at = taken.get(position);
      return typeof at === 'number' ? Math.max(0, now() - at) : undefined;
    },
  };
}
