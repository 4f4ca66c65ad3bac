import type { Transaction } from 'lmdb';
import type { Logger } from 'pino';
import { streamChangedReason, type StoreHead, type StoreIdentity } from '../core/eventStore.js';
import { FORMAT_KEY, VIEW_FORMAT, type LmdbViewStore } from './lmdbViews.js';
import { LAST } from './viewStore.js';

/**
 * Views belong to one event store (see docs/architecture.md, "Views belong to one event
 * store"): the identity of the store they were built from is recorded with them, and views
 * of another store are emptied and rebuilt, never served. This module is the one place
 * that tells whether a store is the views' own, for the projector's start, the running
 * projector's polls and `verify`.
 */

/** What `bindViewsToStore` found: the recorded store, none recorded yet, or another store (views reset). */
export type Binding = 'same' | 'first' | 'rebuilt';

/** The notifier's checkpoint is kept among the views' checkpoints under this name, generation 0 (see "Notices"). */
export const NOTIFIER_CHECKPOINT = '~notifier';
/** The checkpoint of the host's follower of the records of forgetting (docs/architecture.md, "Forgetting"). */
export const FORGETS_CHECKPOINT = '~forgets';
const IDENTITY = ['identity'];

/** One checkpoint: a projection's generation (or the notifier's) and the stream position it has applied. */
export interface Checkpoint {
  readonly projection: string;
  readonly gen: number;
  readonly position: number;
}

/** How logs and reasons name a checkpoint: `projection.generation`. */
export function checkpointName(c: Pick<Checkpoint, 'projection' | 'gen'>): string {
  return `${c.projection}.${c.gen}`;
}

/** True when two identities name the same store. */
export function sameStore(a: StoreIdentity, b: StoreIdentity): boolean {
  return a.stream === b.stream && a.server === b.server;
}

/** The identity recorded with the views, if any (as of `transaction` when given). */
export function recordedIdentity(views: LmdbViewStore, transaction?: Transaction): StoreIdentity | undefined {
  return views.meta.get(IDENTITY, transaction && { transaction }) as StoreIdentity | undefined;
}

/** Every checkpoint the views hold: every projection's generations and the notifier's. */
export function checkpoints(views: LmdbViewStore, transaction?: Transaction): Checkpoint[] {
  const out: Checkpoint[] = [];
  for (const { key, value } of views.meta.getRange({ start: ['checkpoint'], end: ['checkpoint', LAST], ...(transaction && { transaction }) })) {
    out.push({ projection: String(key[1]), gen: Number(key[2]), position: value as number });
  }
  return out;
}

/**
 * The checkpoints past the stream's last position. Positions only grow, so a checkpoint
 * past the end was written against another stream (a wiped or recreated store).
 */
export function checkpointsPastEnd<C extends Checkpoint>(all: Iterable<C>, lastPosition: number): C[] {
  return [...all].filter((c) => c.position > lastPosition);
}

/** What a store check compares: what the views were built from, the live store, and the views' checkpoints. */
export interface StoreCheck {
  /**
   * The store the views were built from: the identity recorded with them, compared whole;
   * or the stream id a running projector started on, compared with the live stream's id
   * alone; undefined when nothing is recorded.
   */
  readonly built: StoreIdentity | string | undefined;
  readonly live: StoreIdentity;
  readonly checkpoints: Iterable<Checkpoint>;
  /** The live stream's last position. */
  readonly lastPosition: number;
}

/**
 * Why the views do not belong to the live store, or undefined when they do: another
 * identity than they were built from, or a checkpoint past the stream's end. Both are
 * needed: a wiped store can grow past every checkpoint between two polls, and views with
 * no identity recorded can be told only by their checkpoints.
 */
export function storeChange(check: StoreCheck): string | undefined {
  const { built, live, lastPosition } = check;
  if (typeof built === 'string') {
    if (built !== live.stream) return streamChangedReason(live.stream, built);
  } else if (built && !sameStore(built, live)) {
    return 'the views were built from another event store';
  }
  const ahead = checkpointsPastEnd(check.checkpoints, lastPosition);
  if (ahead.length > 0) return `checkpoints are past the stream's last sequence ${lastPosition}: ${ahead.map((c) => `${checkpointName(c)}=${c.position}`).join(', ')}`;
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
    // Views of an older format wait for the projector to empty them (`upgradeFormat`).
    if (views.meta.get(FORMAT_KEY) !== VIEW_FORMAT) return false;
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
  upgradeFormat(views, projectionNames, log);
  const recorded = recordedIdentity(views);
  const held = checkpoints(views);
  const mismatch = storeChange({ built: recorded, live: identity, checkpoints: held, lastPosition: lastSeq });
  const db = views.meta;
  if (mismatch === undefined) {
    if (recorded) return 'same';
    views.env.transactionSync(() => void db.putSync(IDENTITY, identity));
    log.info({ identity }, 'views bound to this event store');
    return 'first';
  }
  log.warn(
    { recorded: recorded ?? null, identity, lastSeq, checkpoints: Object.fromEntries(held.map((c) => [checkpointName(c), c.position])) },
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
    db.removeSync(['checkpoint', NOTIFIER_CHECKPOINT, 0]);
    db.removeSync(['checkpoint', FORGETS_CHECKPOINT, 0]);
    for (const key of [...db.getKeys({ start: ['parked'], end: ['parked', LAST] })]) db.removeSync(key);
    db.putSync(IDENTITY, identity);
  });
  return 'rebuilt';
}

/**
 * Views whose documents are stored in an older format (see `VIEW_FORMAT`) are emptied, so
 * that the projector rebuilds them; the notices' and forgets' checkpoints are kept, as
 * neither depends on the documents. One transaction, the format written last.
 */
function upgradeFormat(views: LmdbViewStore, projectionNames: readonly string[], log: Logger): void {
  const db = views.meta;
  if (db.get(FORMAT_KEY) === VIEW_FORMAT) return;
  const held = checkpoints(views).filter((c) => c.projection !== NOTIFIER_CHECKPOINT && c.projection !== FORGETS_CHECKPOINT);
  if (held.length === 0) {
    // Nothing built yet: new views.
    views.env.transactionSync(() => void db.putSync(FORMAT_KEY, VIEW_FORMAT));
    return;
  }
  log.warn({ checkpoints: Object.fromEntries(held.map((c) => [checkpointName(c), c.position])) }, 'the views were stored in an older format; they are emptied and rebuilt');
  views.env.transactionSync(() => {
    for (const [name, gens] of generationsOf(views, projectionNames)) {
      for (const gen of gens) {
        const g = views.lmdb(name, gen);
        g.docs.clearSync();
        g.index.clearSync();
        // Format 1 kept the documents as MessagePack in `<name>.<gen>.docs`; no process of this format opens it.
        views.env.openDB({ name: `${name}.${gen}.docs` }).dropSync();
        db.removeSync(['checkpoint', name, gen]);
        db.removeSync(['version', name, gen]);
      }
    }
    for (const key of [...db.getKeys({ start: ['parked'], end: ['parked', LAST] })]) db.removeSync(key);
    db.putSync(FORMAT_KEY, VIEW_FORMAT);
  });
}

/** Binds the views to the store whose head is given (see `bindViewsToStore`). */
export function bindViewsToHead(views: LmdbViewStore, projectionNames: readonly string[], head: StoreHead, log: Logger): Binding {
  return bindViewsToStore(views, projectionNames, head.identity, head.lastPosition, log);
}

/** Generations each projection has bookkeeping for, with the active one, including projections no longer configured. */
function generationsOf(views: LmdbViewStore, projectionNames: readonly string[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  const add = (name: string, gen: number) => {
    if (name === NOTIFIER_CHECKPOINT || name === FORGETS_CHECKPOINT) return;
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
