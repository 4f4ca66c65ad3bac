import type { Logger } from 'pino';
import { Observable, type OperatorFunction, type Subscription } from 'rxjs';
import { ConvergeError } from '../core/errors.js';
import { StoreChangedError, type EventStore, type StoredCommit } from '../core/eventStore.js';

/** A running subscription to the event store feeding batches to an apply function. */
export interface Pipeline {
  /** Highest stream position the subscription has seen, including commits still pending in the store. */
  head: number;
  /** Store time (ms) of each commit received and not applied yet, by position. */
  readonly unappliedAt: Map<number, number>;
  /** Whether a batch is being applied now. */
  applying: boolean;
  stop(): void;
}

/** What a pipeline needs: the event store and batch bounds. */
export interface PipelineOptions {
  readonly store: EventStore;
  readonly batchSize: number;
  readonly batchMs: number;
  /**
   * The id of the stream the checkpoints belong to. Checked each time the subscription is
   * made, which is after every outage: a stream recreated meanwhile is never read from a
   * checkpoint of the old one.
   */
  readonly streamId?: string;
  /** Decode only these aggregates' commits; pass over the others' (see `EventStore.subscribe`). */
  readonly only?: ReadonlySet<string>;
  /**
   * This aggregate's commits alone, filtered by the store (see `EventStore.subscribe`): the
   * feed's position then skips, so it counts as caught up once its consumer has delivered
   * everything it said was pending, rather than once it reaches the stream's last position.
   */
  readonly aggregate?: string;
  /** Commits as stored, personal fields sealed (see `EventStore.subscribe`). */
  readonly sealed?: boolean;
}

/** An error thrown by the apply function (the view store could not write), as opposed to one of the subscription. */
export class ApplyFailedError extends ConvergeError {
  constructor(message: string, options?: ErrorOptions) {
    super('apply_failed', message, options);
  }
}

/**
 * Streams commits from `from + 1` into `apply`, a batch at a time: bounded by count and
 * time, applied one after another, and never more than a few batches ahead of what
 * `apply` has finished (the source waits while too many commits are unapplied).
 */
export function pipeline(
  opts: PipelineOptions,
  from: number,
  apply: (batch: StoredCommit[]) => void | Promise<void>,
  hooks: { onBatch(p: Pipeline): void; onError(err: unknown): void },
): Pipeline {
  const { store, batchSize, batchMs } = opts;
  const highWater = batchSize * 4;
  let wake: (() => void) | undefined;
  let subscription: Subscription | undefined;
  const p: Pipeline = { head: from, unappliedAt: new Map(), applying: false, stop: () => subscription?.unsubscribe() };

  const commits = new Observable<StoredCommit>((subscriber) => {
    let stopped = false;
    let close: (() => void) | undefined;
    void (async () => {
      const delivered = await store.subscribe(from, {
        batchSize,
        ...(opts.streamId === undefined ? {} : { stream: opts.streamId }),
        ...(opts.only ? { only: opts.only } : {}),
        ...(opts.aggregate === undefined ? {} : { aggregate: opts.aggregate }),
        ...(opts.sealed ? { sealed: true } : {}),
      });
      close = () => delivered.close();
      if (stopped) return close();
      for await (const { commit, storedAt, head } of delivered) {
        p.head = Math.max(p.head, head);
        p.unappliedAt.set(commit.position, storedAt);
        subscriber.next(commit);
        if (p.unappliedAt.size >= highWater) await new Promise<void>((resolve) => (wake = resolve));
        if (stopped) break;
      }
    })().catch((err: unknown) => subscriber.error(err));
    return () => {
      stopped = true;
      wake?.();
      close?.();
    };
  });

  subscription = commits
    .pipe(
      batchWhileBusy(batchMs, batchSize, async (batch) => {
        p.applying = true;
        try {
          await apply(batch);
        } catch (err) {
          throw new ApplyFailedError(err instanceof Error ? err.message : String(err), { cause: err });
        } finally {
          p.applying = false;
        }
        for (const c of batch) p.unappliedAt.delete(c.position);
        if (p.unappliedAt.size < highWater) wake?.();
        hooks.onBatch(p);
      }),
    )
    .subscribe({ error: hooks.onError });
  return p;
}

/**
 * Applies what arrives in batches, one after another: a batch is at most `batchSize` items
 * and, while nothing is being applied, waits at most `batchMs` for more. What arrives while a
 * batch is being applied has waited that long already: it goes as one batch as soon as that
 * one is done. So a feed that falls behind takes bigger batches, and the cost paid once per
 * batch (a view store's synchronous commit, a reaction's checkpoint) is paid less often per
 * commit, rather than a queue of tiny batches growing behind it (docs/architecture.md,
 * "Projections").
 */
export function batchWhileBusy<T>(batchMs: number, batchSize: number, apply: (batch: T[]) => Promise<void>): OperatorFunction<T, never> {
  return (source) =>
    new Observable<never>((subscriber) => {
      const queue: T[] = [];
      let applying = false;
      let done = false;
      let ended = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const next = () => {
        if (applying || done || queue.length === 0) return;
        if (queue.length >= batchSize) return void run();
        timer ??= setTimeout(run, batchMs);
      };
      const run = () => {
        clearTimeout(timer);
        timer = undefined;
        if (applying || done || queue.length === 0) return;
        applying = true;
        apply(queue.splice(0, batchSize)).then(
          () => {
            applying = false;
            // What came meanwhile waited as long as that batch took: no further wait.
            if (queue.length > 0) run();
            else if (ended) subscriber.complete();
          },
          (err: unknown) => {
            done = true;
            subscriber.error(err);
          },
        );
      };
      const inner = source.subscribe({
        next(item) {
          queue.push(item);
          next();
        },
        error: (err: unknown) => subscriber.error(err),
        complete() {
          // What is queued is applied first.
          ended = true;
          if (applying) return;
          if (queue.length > 0) run();
          else subscriber.complete();
        },
      });
      return () => {
        done = true;
        clearTimeout(timer);
        inner.unsubscribe();
      };
    });
}

/** How a supervised feed is doing. */
export interface FeedHealth {
  /**
   * `running`; `failing`: its last batch could not be applied (the view store could not
   * write) and it is retrying with backoff; `stalled`: `EVENTS` has more than it has
   * applied and it made no progress for `stallMs`, so its consumer was recreated.
   */
  readonly state: 'running' | 'failing' | 'stalled';
  readonly error?: string;
  /** When the last batch applied (or the feed started), ms since the epoch. */
  readonly lastBatchAt: number;
  /** When the current failure or stall began. */
  readonly troubleSince?: number;
}

/** A pipeline that restarts itself: after errors, with backoff, and when it stops making progress. */
export interface Feed {
  health(): FeedHealth;
  /** Store time (ms) of the commit at `position`, if this feed has received it and not applied it yet. */
  unappliedAt(position: number): number | undefined;
  /** Highest position the consumer has seen. */
  seen(): number;
  /** Tells the feed the stream's last position, so it can tell a stalled consumer from an idle stream. */
  check(streamLast: number): void;
  /** Recreates the consumer now (after a reconnect), unless a retry is already scheduled. */
  restart(): void;
  stop(): void;
}

export interface FeedOptions extends PipelineOptions {
  /** Names the feed in logs: `projections`, `notifier`, `rebuild of shopList`. */
  readonly name: string;
  /** Its checkpoint: a restart resumes after it. */
  readonly from: () => number;
  readonly apply: (batch: StoredCommit[]) => void | Promise<void>;
  readonly onBatch?: () => void;
  /** The feed found another stream behind `EVENTS` (see `PipelineOptions.streamId`); it has stopped. */
  readonly onStreamChanged?: (reason: string) => void;
  readonly stallMs: number;
  readonly maxBackoffMs: number;
  readonly log: Logger;
  readonly now?: () => number;
}

/** A feed's own options; the rest (store, batch bounds, supervision) a runner sets once for all its feeds. */
export type FeedSpec = Pick<FeedOptions, 'name' | 'from' | 'apply' | 'onBatch' | 'only' | 'aggregate'>;

/** Retries after a consumer error (NATS away) come quickly: the stream is back within seconds of the server. */
const CONSUMER_RETRY_MAX_MS = 2000;

/**
 * Runs `pipeline` from the checkpoint and keeps it running:
 * - when `apply` throws, the batch's transaction was rolled back, so the feed restarts from
 *   its checkpoint after a backoff (nothing is lost or reordered); it logs one warning when
 *   the trouble starts, one line per backoff step, and one when it recovers;
 * - when the consumer fails (NATS away), it restarts after a short delay;
 * - when `EVENTS` has more than the checkpoint, no batch is being applied and none applied
 *   for `stallMs`, the consumer is presumed stuck (an ordered consumer can stop delivering after a server
 *   restart without an error) and is recreated.
 */
export function superviseFeed(opts: FeedOptions): Feed {
  const { name, log } = opts;
  const now = opts.now ?? Date.now;
  let current: Pipeline | undefined;
  let startedAt = now();
  let lastBatchAt = now();
  let behindSince: number | undefined;
  let state: FeedHealth['state'] = 'running';
  let error: string | undefined;
  let troubleSince: number | undefined;
  let attempts = 0;
  let retry: NodeJS.Timeout | undefined;
  let stopped = false;

  const start = () => {
    retry = undefined;
    if (stopped) return;
    current?.stop();
    startedAt = now();
    current = pipeline(opts, opts.from(), opts.apply, { onBatch, onError });
  };

  function onBatch(): void {
    lastBatchAt = now();
    behindSince = undefined;
    // A consumer error leaves the state running: the backoff it grew ends with the first batch, too.
    if (state === 'running') attempts = 0;
    if (state !== 'running') {
      log.info({ feed: name, downMs: lastBatchAt - (troubleSince ?? lastBatchAt), attempts }, `${name} recovered after ${seconds(lastBatchAt - (troubleSince ?? lastBatchAt))}`);
      state = 'running';
      error = undefined;
      troubleSince = undefined;
      attempts = 0;
    }
    opts.onBatch?.();
  }

  function onError(err: unknown): void {
    if (stopped) return;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof StoreChangedError) {
      stopped = true;
      opts.onStreamChanged?.(message);
      return;
    }
    attempts++;
    if (err instanceof ApplyFailedError) {
      const delay = Math.min(opts.maxBackoffMs, 250 * 2 ** Math.min(attempts - 1, 20));
      if (state !== 'failing') {
        troubleSince ??= now();
        state = 'failing';
        log.warn({ feed: name, err: err.cause ?? err }, `${name} cannot apply its batch: ${message}; retrying from its checkpoint in ${seconds(delay)}`);
      } else {
        log.warn({ feed: name, attempts, downMs: now() - (troubleSince ?? now()) }, `${name} still failing (${message}) after ${attempts} attempts; next try in ${seconds(delay)}`);
      }
      error = message;
      retry = setTimeout(start, delay);
      return;
    }
    const delay = Math.min(CONSUMER_RETRY_MAX_MS, 100 * 2 ** Math.min(attempts - 1, 20));
    // A consumer that cannot be created while NATS is away fails every attempt; say so once.
    if (attempts === 1) log.warn({ feed: name, err }, `${name} lost its consumer: ${message}; recreating it`);
    retry = setTimeout(start, delay);
  }

  start();
  return {
    health: () => ({ state, lastBatchAt, ...(error === undefined ? {} : { error }), ...(troubleSince === undefined ? {} : { troubleSince }) }),
    unappliedAt: (position) => current?.unappliedAt.get(position),
    seen: () => current?.head ?? 0,
    check(streamLast) {
      if (stopped || state === 'failing' || retry) return;
      // A batch still being applied (a reaction's inputs can take long) is no stuck consumer;
      // recreating the consumer meanwhile would run the same commits again beside it.
      // A filtered feed knows what is left from its consumer (`head`: the last delivered position plus what it said was pending).
      const last = opts.aggregate === undefined ? streamLast : (current?.head ?? 0);
      if (opts.from() >= last || current?.applying) {
        behindSince = undefined;
        return;
      }
      const t = now();
      behindSince ??= t;
      const quietSince = Math.max(behindSince, lastBatchAt, startedAt);
      if (t - quietSince < opts.stallMs) return;
      if (state !== 'stalled') troubleSince = t;
      state = 'stalled';
      error = `no progress for ${seconds(t - quietSince)} while EVENTS has ${opts.aggregate === undefined ? `${last - opts.from()} more commits` : `more ${opts.aggregate} commits`}`;
      log.warn({ feed: name, position: opts.from(), streamLast }, `${name} stalled: ${error}; recreating its consumer`);
      start();
    },
    restart() {
      if (!stopped && !retry) start();
    },
    stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      current?.stop();
    },
  };
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
