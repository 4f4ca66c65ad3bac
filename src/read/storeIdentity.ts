import type { Transaction } from 'lmdb';
import type { Logger } from 'pino';
import type { StoreHead, StoreIdentity } from '../core/eventStore.js';
import type { LmdbViewStore } from './lmdbViews.js';

/**
 * Views belong to one event store (see docs/architecture.md, "Views belong to one event
 * store"): the identity of the store they were built from is recorded with them, and views
 * of another store are emptied and rebuilt, never served.
 */

/** What `bindViewsToStore` found: the recorded store, none recorded yet, or another store (views reset). */
export type Binding = 'same' | 'first' | 'rebuilt';

/** The notifier's checkpoint, kept among the views' checkpoints under this name. */
const NOTIFIER = '~notifier';
const IDENTITY = ['identity'];
const LAST = '\uffff';

/** True when two identities name the same store. */
export function sameStore(a: StoreIdentity, b: StoreIdentity): boolean {
  return a.stream === b.stream && a.server === b.server;
}

/** The identity recorded with the views, if any (as of `transaction` when given). */
export function recordedIdentity(views: LmdbViewStore, transaction?: Transaction): StoreIdentity | undefined {
  return views.meta.get(IDENTITY, transaction && { transaction }) as StoreIdentity | undefined;
}

/** Every checkpoint the views hold (every projection's generations and the notifier's), by `name.generation`. */
export function checkpoints(views: LmdbViewStore, transaction?: Transaction): Map<string, number> {
  const out = new Map<string, number>();
  for (const { key, value } of views.meta.getRange({ start: ['checkpoint'], end: ['checkpoint', LAST], ...(transaction && { transaction }) })) {
    out.set(`${String(key[1])}.${String(key[2])}`, value as number);
  }
  return out;
}

/**
 * Why the views do not belong to the stream described by `live` and `lastSeq`, or
 * undefined when they do (or when nothing is recorded and no checkpoint is past the end).
 * A running projector can call it with each stream info it polls.
 */
export function storeMismatch(views: LmdbViewStore, live: StoreIdentity, lastSeq: number): string | undefined {
  const recorded = recordedIdentity(views);
  if (recorded && !sameStore(recorded, live)) return 'the views were built from another event store';
  const ahead = [...checkpoints(views)].filter(([, position]) => position > lastSeq);
  if (ahead.length > 0) return `checkpoints are past the stream's last sequence ${lastSeq}: ${ahead.map(([n, p]) => `${n}=${p}`).join(', ')}`;
  return undefined;
}

/**
 * A check, for query workers, that the views were not built from another store than `identity`'s.
 * The projector resets views of another store at its start, and never binds them back,
 * so once true the answer is kept for a second instead of reading LMDB on every request.
 */
export function viewsBoundTo(views: LmdbViewStore, identity: StoreIdentity, now: () => number = Date.now): () => boolean {
  let trustedUntil = 0;
  return () => {
    if (now() < trustedUntil) return true;
    const recorded = recordedIdentity(views);
    // Nothing recorded: new views, or views from before stores were recorded; nothing says they are another store's.
    if (!recorded) return true;
    if (!sameStore(recorded, identity)) return false;
    trustedUntil = now() + 1000;
    return true;
  };
}

/**
 * Makes sure the views belong to the event store converge is connected to. On another
 * store, or a checkpoint past the stream's end, it logs one warning and empties the
 * views so that the projector rebuilds them from this store: every generation's
 * documents and index entries, checkpoints, built versions, parked events and the
 * notifier's checkpoint, then records the new identity.
 *
 * It is one LMDB transaction, the identity written last: a crash midway commits
 * nothing and the next start does it again, and a query worker reads either the old
 * views or empty ones, never a mix. Databases are cleared, not dropped, because query
 * workers hold handles to them. The active generation keeps its number for the same
 * reason: going back to generation 1 would point readers at a database that an earlier
 * rebuild deleted and this process would create anew.
 */
export function bindViewsToStore(
  views: LmdbViewStore,
  projectionNames: readonly string[],
  identity: StoreIdentity,
  lastSeq: number,
  log: Logger,
): Binding {
  const recorded = recordedIdentity(views);
  const mismatch = storeMismatch(views, identity, lastSeq);
  const db = views.meta;
  if (mismatch === undefined) {
    if (recorded) return 'same';
    views.env.transactionSync(() => void db.putSync(IDENTITY, identity));
    log.info({ identity }, 'views bound to this event store');
    return 'first';
  }
  log.warn(
    { recorded: recorded ?? null, identity, lastSeq, checkpoints: Object.fromEntries(checkpoints(views)) },
    `${mismatch}; the views are emptied and rebuilt from the event store converge is connected to now`,
  );
  views.env.transactionSync(() => {
    for (const [name, gens] of generationsOf(views, projectionNames)) {
      for (const gen of gens) {
        const g = views.lmdb(name, gen);
        g.docs.clearSync();
        g.index.clearSync();
        db.removeSync(['checkpoint', name, gen]);
        db.removeSync(['version', name, gen]);
      }
    }
    db.removeSync(['checkpoint', NOTIFIER, 0]);
    for (const key of [...db.getKeys({ start: ['parked'], end: ['parked', LAST] })]) db.removeSync(key);
    db.putSync(IDENTITY, identity);
  });
  return 'rebuilt';
}

/** Binds the views to the store whose head is given (see `bindViewsToStore`). */
export function bindViewsToHead(views: LmdbViewStore, projectionNames: readonly string[], head: StoreHead, log: Logger): Binding {
  return bindViewsToStore(views, projectionNames, head.identity, head.lastPosition, log);
}

/** Generations each projection has bookkeeping for, with the active one, including projections no longer configured. */
function generationsOf(views: LmdbViewStore, projectionNames: readonly string[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  const add = (name: string, gen: number) => {
    if (name === NOTIFIER) return;
    const gens = out.get(name) ?? new Set<number>();
    gens.add(gen);
    out.set(name, gens);
  };
  for (const name of projectionNames) add(name, views.activeGeneration(name));
  for (const kind of ['checkpoint', 'version']) {
    for (const key of views.meta.getKeys({ start: [kind], end: [kind, LAST] })) add(String(key[1]), Number(key[2]));
  }
  for (const { key, value } of views.meta.getRange({ start: ['active'], end: ['active', LAST] })) add(String(key[1]), value as number);
  return out;
}
