import type { Logger } from 'pino';
import type { StoredCommit } from '../core/eventStore.js';
import { DEFAULT_REACTION_POLICY, type ReactionErrorPolicy } from '../core/reactions.js';
import type { Feed, FeedHealth, FeedSpec } from '../read/feed.js';
import type { ReactionStatus } from '../read/viewsStatus.js';
import type { ParkedReaction, ReactionStore } from './reactionStore.js';

/** One thing a reaction does for a commit: handle one of its events, or relay one of its outputs. */
export interface ReactionInput {
  readonly eventIndex: number;
  /** The event's type, for parking and logs. */
  readonly type: string;
  /**
   * What the input must stay in order with (a process instance's id, a reactor's sequence
   * key): inputs of one batch with different keys run concurrently, those of one key one
   * after another. An input without a key runs alone, after everything before it and
   * before everything after it.
   */
  readonly key?: string;
  run(): Promise<void>;
}

/** How long a stop waits for the batch under way before it goes on without it. */
const STOP_WAIT_MS = 5_000;

/** A running reaction feed (see `reactionFeed`). */
export interface ReactionFeed {
  /** Reads the checkpoint and starts following `EVENTS` after it. */
  start(): Promise<void>;
  /**
   * Stops following `EVENTS`; answers once the batch under way, if any, has ended, or after
   * `stopWaitMs`. An input running then finishes (its connection still open), and those
   * after it do not start.
   */
  stop(): Promise<void>;
  readonly position: () => number;
  health(): Pick<ReactionStatus, 'state' | 'error'>;
  /** Lets a reaction stopped by its policy go on from its checkpoint, trying the failed input again. */
  resume(): void;
  /** Tells the feed the stream's last position, to detect a stalled consumer. */
  check(streamLast: number): void;
  restart(): void;
}

export interface ReactionFeedOptions {
  readonly name: string;
  readonly kind: 'reactor' | 'process';
  readonly policy: ReactionErrorPolicy | undefined;
  readonly reactions: ReactionStore;
  /** Starts a supervised feed on `EVENTS` (the store, batch bounds and supervision already set). */
  readonly feed: (spec: FeedSpec) => Feed;
  /** What the reaction does for a commit, in order. */
  readonly inputs: (commit: StoredCommit) => ReactionInput[];
  /** The aggregates whose commits it reads, when known: the others' are passed over undecoded. */
  readonly only?: ReadonlySet<string>;
  readonly log: Logger;
  /** A pause, for the backoff between retries; tests shorten it. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** How long a stop waits for the batch under way (default `STOP_WAIT_MS`). */
  readonly stopWaitMs?: number;
}

class Stopped extends Error {}

/** How many keys of a batch run at once. */
const CONCURRENCY = 32;

/**
 * A reaction's feed on `EVENTS` (docs/architecture.md, "Reactions"): from its checkpoint,
 * every commit in order, each input run under the reaction's error policy (retried with a
 * doubling pause, then parked or stopped), and the checkpoint saved after each batch. A
 * crash between an input and the checkpoint runs the input again: delivery is at least
 * once, and what a reaction sends carries keys that make it take effect once.
 */
export function reactionFeed(opts: ReactionFeedOptions): ReactionFeed {
  const { name, kind, reactions, log } = opts;
  const policy = opts.policy ?? DEFAULT_REACTION_POLICY;
  let position = 0;
  let feed: Feed | undefined;
  let stopped: { position: number; error: string } | undefined;
  /** The inputs being retried now, each with why it failed: several run at once, one per key. */
  const retrying = new Map<ReactionInput, string>();
  let halted = false;
  /** Counts the feeds started: a batch of an earlier one (the reaction stopped and started again meanwhile) changes nothing. */
  let generation = 0;
  /** The batches under way: a stop waits for them. */
  const applying = new Set<Promise<void>>();
  /** The pauses between attempts under way, each ended by calling it: a stop ends them all. */
  const pauses = new Set<() => void>();
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const end = () => {
        clearTimeout(timer);
        pauses.delete(end);
        resolve();
      };
      pauses.add(end);
      if (opts.sleep) void opts.sleep(ms).then(end);
      else timer = setTimeout(end, ms);
    });

  /** Runs one input under the policy; answers false when the reaction must stop before its commit. */
  async function runInput(commit: StoredCommit, input: ReactionInput, mine: number): Promise<void> {
    const attempts = policy.kind === 'retry' ? policy.times + 1 : 1;
    let error: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (halted || mine !== generation) throw new Stopped();
      // A stop does not wait out the pause: the input runs again at the next start.
      if (attempt > 0) await pause(Math.min(10_000, (policy.kind === 'retry' ? (policy.backoffMs ?? 100) : 100) * 2 ** (attempt - 1)));
      if (halted || mine !== generation) throw new Stopped();
      try {
        await input.run();
        retrying.delete(input);
        return;
      } catch (err) {
        // Failed while the reaction stops: the process is going down beside the workers its
        // commands go to, which is no failure of the reaction. The input runs again at the next start.
        if (halted || mine !== generation) {
          log.debug({ reaction: name, position: commit.position, eventIndex: input.eventIndex, err }, `${kind} ${name} stopped while ${input.type} at position ${commit.position} ran; it runs again at the next start`);
          throw new Stopped();
        }
        error = err;
        retrying.set(input, `${input.type} at ${commit.position}:${input.eventIndex}: ${(err as Error).message ?? String(err)}`);
        if (attempt === 0) log.warn({ reaction: name, position: commit.position, eventIndex: input.eventIndex, err }, `${kind} ${name} failed on ${input.type} at position ${commit.position}`);
      }
    }
    retrying.delete(input);
    const message = error instanceof Error ? error.message : String(error);
    const then = policy.kind === 'retry' ? (policy.then ?? 'park') : policy.kind;
    if (then === 'stop') {
      // A batch of an earlier feed does not stop the reaction that runs on.
      // Of inputs of one batch stopping side by side, the earliest is where the reaction stands.
      if (mine === generation && !(stopped && stopped.position <= commit.position)) stopped = { position: commit.position, error: message };
      log.error({ reaction: name, position: commit.position, err: error }, `${kind} ${name} stopped before position ${commit.position}: ${message}; resume it from the admin API`);
      throw new Stopped(message);
    }
    const parked: ParkedReaction = { reaction: name, kind, position: commit.position, eventIndex: input.eventIndex, aggregate: commit.aggregate, id: commit.id, type: input.type, error: message, parkedAt: new Date().toISOString() };
    await reactions.park(parked);
    log.warn({ reaction: name, position: commit.position, eventIndex: input.eventIndex }, `${kind} ${name} parked ${input.type} at position ${commit.position}: ${message}`);
  }

  /**
   * Runs a batch's inputs: those with a key concurrently across keys (at most `CONCURRENCY`
   * keys at once) and in order within one, those without alone and in order. Answers the
   * position of the first commit an input stopped at, if any.
   */
  async function runBatch(work: ReadonlyArray<{ commit: StoredCommit; input: ReactionInput }>, mine: number): Promise<number | undefined> {
    let stoppedAt: number | undefined;
    let failure: unknown;
    const note = (commit: StoredCommit, err: unknown) => {
      if (err instanceof Stopped) stoppedAt = Math.min(stoppedAt ?? Infinity, commit.position);
      else failure ??= err;
    };
    for (let i = 0; i < work.length && stoppedAt === undefined && failure === undefined; ) {
      const { commit, input } = work[i]!;
      if (input.key === undefined) {
        await runInput(commit, input, mine).catch((err: unknown) => note(commit, err));
        i++;
        continue;
      }
      // The run of keyed inputs from here, grouped by key in order.
      const groups = new Map<string, Array<{ commit: StoredCommit; input: ReactionInput }>>();
      for (; i < work.length && work[i]!.input.key !== undefined; i++) {
        const item = work[i]!;
        const group = groups.get(item.input.key!);
        if (group) group.push(item);
        else groups.set(item.input.key!, [item]);
      }
      const queue = [...groups.values()];
      const worker = async () => {
        for (let group = queue.shift(); group; group = queue.shift()) {
          for (const item of group) {
            // Once an input has stopped the reaction or failed the batch, none at or after
            // it starts: they run again from the checkpoint, and would be parked twice. The
            // next key's inputs before it still run, since the checkpoint moves up to it.
            if (failure !== undefined || (stoppedAt !== undefined && item.commit.position >= stoppedAt)) break;
            try {
              await runInput(item.commit, item.input, mine);
            } catch (err) {
              note(item.commit, err);
              break;
            }
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, queue.length) }, worker));
    }
    if (failure !== undefined) throw failure;
    return stoppedAt;
  }

  /** Saves the position of batches that ran nothing, at most once a second: none of them needs running again. */
  let lazySave: NodeJS.Timeout | undefined;
  const saveLater = () => {
    lazySave ??= setTimeout(() => {
      lazySave = undefined;
      reactions.setCheckpoint(name, position).catch((err: unknown) => log.warn({ reaction: name, err }, `${kind} ${name} could not save its checkpoint; it is saved with its next batch`));
    }, 1000);
    lazySave.unref();
  };

  const apply = async (batch: StoredCommit[], mine: number) => {
    const fresh = batch.filter((c) => c.position > position);
    if (fresh.length === 0 || stopped || mine !== generation) return;
    const work = fresh.flatMap((commit) => opts.inputs(commit).map((input) => ({ commit, input })));
    let last = fresh[fresh.length - 1]!.position;
    if (work.length === 0) {
      // Nothing ran: a crash before the save reads these commits again, and runs nothing again.
      position = last;
      saveLater();
      return;
    }
    try {
      const stoppedAt = await runBatch(work, mine);
      // Stopped and started again while it ran: the new feed has read the checkpoint, and goes on from there.
      if (mine !== generation) return;
      if (stoppedAt !== undefined) {
        // Inputs of later commits may have run already; running them again is harmless (see above).
        last = stoppedAt - 1;
        feed?.stop();
      }
    } catch (err) {
      // Nothing is saved: the supervised feed starts again from the checkpoint.
      last = position;
      throw err;
    } finally {
      if (last > position && mine === generation) {
        await reactions.setCheckpoint(name, last);
        position = last;
      }
    }
  };

  const tracked = (batch: StoredCommit[], mine: number) => {
    const run = apply(batch, mine);
    const settled: Promise<void> = run.catch(() => undefined).finally(() => applying.delete(settled));
    applying.add(settled);
    return run;
  };

  const startFeed = () => {
    feed?.stop();
    // Inputs a stop cut short between attempts are tried again from the checkpoint.
    retrying.clear();
    const mine = ++generation;
    feed = opts.feed({ name: `${kind} ${name}`, from: () => position, apply: (batch) => tracked(batch, mine), ...(opts.only ? { only: opts.only } : {}) });
  };

  return {
    async start() {
      halted = false;
      position = await reactions.checkpoint(name);
      startFeed();
    },
    async stop() {
      halted = true;
      for (const end of [...pauses]) end();
      feed?.stop();
      feed = undefined;
      // The batch under way saves its checkpoint as it ends: through its last input that ran.
      // An input that does not end (a handler's service that never answers) does not hold the stop.
      if (applying.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const waitMs = opts.stopWaitMs ?? STOP_WAIT_MS;
        const ended = await Promise.race([Promise.all(applying).then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), waitMs)))]);
        clearTimeout(timer);
        if (!ended) log.warn({ reaction: name }, `${kind} ${name} stopped with an input still running after ${waitMs} ms; it runs again from the checkpoint at the next start`);
      }
      if (lazySave) {
        clearTimeout(lazySave);
        lazySave = undefined;
        // Best effort: a position not saved only makes the next holder read those commits again.
        await reactions.setCheckpoint(name, position).catch(() => undefined);
      }
    },
    position: () => position,
    health() {
      if (stopped) return { state: 'stopped', error: stopped.error };
      if (!feed) return { state: 'idle' };
      const h: FeedHealth = feed.health();
      const failing = retrying.values().next();
      if (!failing.done) return { state: 'failing', error: failing.value };
      return h.state === 'running' ? { state: 'running' } : { state: h.state, ...(h.error ? { error: h.error } : {}) };
    },
    resume() {
      if (!stopped) return;
      stopped = undefined;
      if (!halted) startFeed();
    },
    check: (streamLast) => feed?.check(streamLast),
    restart: () => feed?.restart(),
  };
}
