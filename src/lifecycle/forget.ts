import type { Logger } from 'pino';
import type { AnyAggregate } from '../core/aggregate.js';
import type { EventStore, StoredCommit } from '../core/eventStore.js';
import type { AnyProjection } from '../core/projection.js';
import type { Forgotten } from '../core/personal.js';
import type { Feed, FeedSpec } from '../read/feed.js';
import type { KeyStore } from '../store/keys.js';

// Forgetting a data subject (docs/architecture.md, "Forgetting"): its key is deleted, which
// makes every field sealed with it read as forgotten wherever it was copied, and the act is
// recorded as a commit of converge's own, which every host's projector follows to make its
// views again without the forgotten fields.

/** The aggregate name of the record of forgetting: `events.~~forget.<keyId>`, the key id, never the subject's id. */
export const FORGET_AGGREGATE = '~~forget';
/** The event type of one act of forgetting. */
export const FORGOTTEN_EVENT = '~Forgotten';


/**
 * Forgets a data subject: deletes its key, then records the act with who asked and when.
 * Forgetting twice records twice and deletes nothing more. The subject's own id is stored
 * nowhere: the record names its key id.
 */
export async function forgetSubject(opts: { readonly keys: KeyStore; readonly store: EventStore; readonly subject: string; readonly at: number; readonly caller?: string | undefined }): Promise<Forgotten> {
  const { keys, store } = opts;
  const keyId = await keys.forget(opts.subject);
  const expected = await store.lastPosition(FORGET_AGGREGATE, keyId);
  const commandId = `forget-${keyId}-${expected}`;
  const ack = await store.append(
    {
      commandId,
      commandType: 'Forget',
      aggregate: FORGET_AGGREGATE,
      id: keyId,
      // Each act is one event; the version counts them from the last one recorded.
      version: expected === 0 ? 1 : ((await store.commitAt(expected))?.version ?? 0) + 1,
      events: [{ type: FORGOTTEN_EVENT, data: { keyId }, at: new Date(opts.at).toISOString() }],
      metadata: { correlationId: commandId, causationId: commandId, ...(opts.caller ? { caller: opts.caller } : {}) },
    },
    expected,
  );
  return { keyId, position: ack.position };
}

/** The projections whose documents may hold personal data: those that handle an event an aggregate declares personal. */
export function personalViews(aggregates: readonly AnyAggregate[], projections: readonly AnyProjection[]): AnyProjection[] {
  const types = new Set(aggregates.flatMap((a) => Object.keys(a.personal ?? {})));
  return projections.filter((p) => p.handles.some((type) => types.has(type)));
}

/**
 * Follows the records of forgetting on a host: for each, drops the key from this process's
 * cache, then rebuilds every view that may hold personal data, from the event store, where
 * the forgotten fields now read as forgotten. Its checkpoint moves only after the rebuilds
 * have swapped in, so a projector that dies meanwhile rebuilds again when it starts.
 */
export function followForgets(opts: {
  readonly keys: KeyStore;
  readonly views: readonly AnyProjection[];
  readonly rebuild: (name: string) => Promise<void>;
  /** Whether a rebuild of the view was under way already, begun before this act. */
  readonly rebuilding: (name: string) => boolean;
  readonly checkpoint: { get(): number; set(position: number): void };
  readonly feed: (spec: FeedSpec) => Feed;
  readonly log: Logger;
  /** Told after each act's views have been made again. */
  readonly onForgotten?: (keyIds: readonly string[]) => void;
}): Feed {
  const { log } = opts;
  const apply = async (batch: StoredCommit[]) => {
    const acts = batch.filter((c) => c.aggregate === FORGET_AGGREGATE && c.position > opts.checkpoint.get());
    // Moved on every batch, so that a restart does not pass over the whole stream again.
    if (acts.length === 0) return opts.checkpoint.set(Math.max(opts.checkpoint.get(), batch.at(-1)!.position));
    const keyIds = acts.map((c) => c.id);
    for (const keyId of keyIds) opts.keys.evict(keyId);
    log.info({ keyIds, views: opts.views.map((v) => v.name) }, 'forgetting: rebuilding the views that may hold personal data');
    await Promise.all(
      opts.views.map(async (view) => {
        // A rebuild begun before the key was deleted may have read the fields: one more after it.
        const twice = opts.rebuilding(view.name);
        await opts.rebuild(view.name);
        if (twice) await opts.rebuild(view.name);
      }),
    );
    opts.checkpoint.set(batch.at(-1)!.position);
    log.info({ keyIds }, 'forgotten: every view that may hold personal data was made again');
    opts.onForgotten?.(keyIds);
  };
  // The records of forgetting alone, filtered by nats-server.
  return opts.feed({ name: 'forgets', from: () => opts.checkpoint.get(), apply, aggregate: FORGET_AGGREGATE });
}
