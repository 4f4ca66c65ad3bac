import type { Logger } from 'pino';
import type { AnyAggregate, StoredEvent } from '../core/aggregate.js';
import type { Clock } from '../core/clock.js';
import { ConvergeError } from '../core/errors.js';
import type { EventStore } from '../core/eventStore.js';
import { processStream, type AnyProcess, type AnyReactor } from '../core/reactions.js';
import type { NatsLink } from '../nats/connection.js';
import type { Feed, FeedSpec } from '../read/feed.js';
import { shareFeeds } from '../read/sharedFeed.js';
import { LAST, type IndexScanner } from '../read/viewStore.js';
import { commandEnvelope } from '../write/envelope.js';
import type { CommandEnvelope, CommandResult } from '../write/execute.js';
import { createSingleLease, type SingleLease } from '../write/singleLease.js';
import { processInstances, type ProcessInstances } from './processRunner.js';
import { PROCESSES_VIEW } from './processView.js';
import type { ReactionStatus } from '../read/viewsStatus.js';
import { reactionFeed, type ReactionFeed } from './reactionFeed.js';
import type { ParkedReaction, ReactionStore } from './reactionStore.js';
import { reactorInputs, type ReactionDispatch } from './reactorRunner.js';
import { startTimers, type TimerService } from './timers.js';

/** The reactors, processes and timers of one runtime, under the reactions' lease when there is one. */
export interface ReactionsHost {
  status(): ReactionStatus[];
  parked(reaction?: string): Promise<ParkedReaction[]>;
  /** Handles a parked input again and unparks it; `still_failing` when it fails again. */
  retryParked(reaction: string, position: number, eventIndex: number): Promise<void>;
  dropParked(reaction: string, position: number, eventIndex: number): Promise<void>;
  /** Lets a reaction stopped by its policy go on. */
  resume(reaction: string): void;
  /** The views moved: a timer may have been scheduled or cancelled. */
  applied(): void;
  /** Tells the feeds the stream's last position, for lag and stall detection. */
  check(streamLast: number): void;
  /** Whether this runtime runs the reactions now (it holds the lease, or there is none). */
  running(): boolean;
  /** Who runs them, as far as this runtime knows. */
  holder(): string | undefined;
  stop(): Promise<void>;
}

export interface ReactionsOptions {
  readonly reactors: readonly AnyReactor[];
  readonly processes: readonly AnyProcess[];
  readonly aggregates: readonly AnyAggregate[];
  readonly store: EventStore;
  /** The views, converge's processes view among them (the timers' due index). */
  readonly views: IndexScanner;
  readonly reactionStore: ReactionStore;
  /** Runs a command on its owner: the write side's dispatch, or a forwarder over NATS. */
  readonly dispatch: (command: CommandEnvelope) => Promise<CommandResult>;
  readonly upcast: (aggregate: string, event: StoredEvent) => StoredEvent;
  /** Starts a supervised feed on `EVENTS`. */
  readonly feed: (spec: FeedSpec) => Feed;
  readonly clock: Clock;
  readonly settings: unknown;
  readonly services: unknown;
  readonly log: Logger;
  /** On NATS: the cluster-wide lease the reactions run under, so that they run once. */
  readonly lease?: { readonly link: NatsLink; readonly owner: string; readonly ttlMs: number; readonly replicas: number; readonly instance?: string };
  /** Told of each timer fired and how late it was. */
  readonly onTimerFired?: (process: string, latenessMs: number) => void;
  /** Sleeps between retries (tests shorten them). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The aggregates whose commits a reaction must read: those that declare one of the event
 * types it handles, those that do not declare their events or upcast old ones (either may
 * hold any type), and a process's own instance stream. Every other commit it passes over.
 */
function readsOf(handles: readonly string[], aggregates: readonly AnyAggregate[], own?: string): ReadonlySet<string> {
  const reads = new Set<string>(own === undefined ? [] : [own]);
  for (const a of aggregates) {
    if (!a.events || a.upcast || handles.some((type) => Object.hasOwn(a.events!, type))) reads.add(a.name);
  }
  return reads;
}

/** The key of the reactions' lease in the `converge-leases` bucket. */
export const REACTIONS_LEASE = 'x.reactions';

/**
 * Starts the reactions of a runtime (docs/architecture.md, "Reactions"): a feed per reactor
 * and per process from its own checkpoint, all served by one delivery of `EVENTS`, and the
 * timer service. On NATS they run in one
 * place in the cluster, wherever the reactions' lease is held: a runtime that holds it
 * starts them, one that loses it stops them, and another takes over from the checkpoints.
 */
export async function startReactions(opts: ReactionsOptions): Promise<ReactionsHost> {
  const { log, clock, reactionStore } = opts;
  const byName = new Map(opts.aggregates.map((a) => [a.name, a]));
  const dispatch: ReactionDispatch = (command, o) => opts.dispatch(commandEnvelope(byName, command, o, clock.now()));
  const instances = new Map<string, ProcessInstances>();
  const feeds = new Map<string, { kind: 'reactor' | 'process'; feed: ReactionFeed; inputs: ReturnType<typeof reactorInputs> }>();
  // Every reaction reads EVENTS through one delivery: each commit reaches this process once, not once per reaction.
  const shared = shareFeeds(opts.feed, 'reactions');
  const feed = shared.feed;
  for (const reactor of opts.reactors) {
    const inputs = reactorInputs(reactor, opts.upcast, dispatch, opts.services);
    const only = readsOf(reactor.handles, opts.aggregates);
    feeds.set(reactor.name, { kind: 'reactor', inputs, feed: reactionFeed({ name: reactor.name, kind: 'reactor', policy: reactor.onError, reactions: reactionStore, feed, inputs, only, log, ...(opts.sleep ? { sleep: opts.sleep } : {}) }) });
  }
  for (const process of opts.processes) {
    const p = processInstances({
      process,
      store: opts.store,
      dispatch,
      // A command the app does not have, or whose data its schema refuses, fails the decision before it is recorded.
      check: (command) => void commandEnvelope(byName, command, {}, 0),
      settings: opts.settings,
      clock,
      upcast: opts.upcast,
      log,
    });
    instances.set(process.name, p);
    const only = readsOf(process.handles, opts.aggregates, processStream(process.name));
    feeds.set(process.name, { kind: 'process', inputs: p.inputs, feed: reactionFeed({ name: process.name, kind: 'process', policy: process.onError, reactions: reactionStore, feed, inputs: p.inputs, only, log, ...(opts.sleep ? { sleep: opts.sleep } : {}) }) });
  }
  const timers: TimerService | undefined =
    instances.size > 0 ? startTimers({ views: opts.views, processes: instances, clock, log, ...(opts.onTimerFired ? { onFired: opts.onTimerFired } : {}) }) : undefined;

  let active = false;
  let head = 0;
  /** Set by `stop`: no listing of parked inputs starts after it. */
  let closed = false;
  /** The listing of parked inputs under way: one at a time, and `stop` waits for it. */
  let listing: Promise<void> | undefined;
  const begin = async () => {
    if (active) return;
    active = true;
    // Another host may have moved instances on while this one did not hold the lease.
    for (const p of instances.values()) p.forget();
    await shared.together(async () => {
      for (const { feed } of feeds.values()) await feed.start();
    });
    timers?.start();
  };
  const end = async () => {
    if (!active) return;
    active = false;
    // Each feed's batch under way ends first: its inputs finish while the connection is open.
    await Promise.all([...feeds.values()].map(({ feed }) => feed.stop()));
    await timers?.stop();
  };

  let lease: SingleLease | undefined;
  if (feeds.size > 0) {
    if (opts.lease) {
      lease = createSingleLease({ ...opts.lease, key: REACTIONS_LEASE, log, onAcquire: begin, onRelease: end });
      await lease.start();
    } else {
      await begin();
    }
  }

  /** Instance counts read from the processes view, kept until the views move or for two seconds. */
  const counted = new Map<string, { at: number; value: NonNullable<ReactionStatus['instances']> }>();
  const instancesOf = (name: string): NonNullable<ReactionStatus['instances']> => {
    const cached = counted.get(name);
    if (cached && Date.now() - cached.at < 2000) return cached.value;
    const view = { name: PROCESSES_VIEW };
    const next = opts.views.scanIndex(view, ['pending', name], ['pending', name, LAST], 1)[0];
    const value = {
      open: opts.views.countIndex(view, ['open', name]),
      timersPending: opts.views.countIndex(view, ['pending', name]),
      nextTimerDue: next === undefined ? null : new Date(Number(next[2])).toISOString(),
    };
    counted.set(name, { at: Date.now(), value });
    return value;
  };

  const parkedCounts = new Map<string, number>();
  const known = (name: string) => {
    const entry = feeds.get(name);
    if (!entry) throw new ConvergeError('unknown_reaction', `no reactor or process named ${name}`);
    return entry;
  };

  return {
    status: () =>
      [...feeds].map(([name, { kind, feed }]) => {
        const health = active ? feed.health() : { state: 'idle' as const };
        return {
          name,
          kind,
          ...health,
          position: feed.position(),
          lagEvents: active ? Math.max(0, head - feed.position()) : 0,
          parked: parkedCounts.get(name) ?? 0,
          ...(kind === 'process' ? { instances: instancesOf(name) } : {}),
        };
      }),
    parked: async (reaction) => reactionStore.parked(reaction),
    async retryParked(reaction, position, eventIndex) {
      const entry = known(reaction);
      const parked = (await reactionStore.parked(reaction)).find((p) => p.position === position && p.eventIndex === eventIndex);
      if (!parked) throw new ConvergeError('not_parked', `${reaction} has no parked input at ${position}:${eventIndex}`);
      const commit = await opts.store.commitAt(position);
      if (!commit) throw new ConvergeError('commit_not_found', `no commit at position ${position}`);
      const input = entry.inputs(commit).find((i) => i.eventIndex === eventIndex);
      try {
        await input?.run();
      } catch (err) {
        throw new ConvergeError('still_failing', `${reaction} failed again on ${parked.type} at ${position}: ${(err as Error).message}`);
      }
      await reactionStore.unpark(reaction, position, eventIndex);
    },
    async dropParked(reaction, position, eventIndex) {
      known(reaction);
      const parked = (await reactionStore.parked(reaction)).some((p) => p.position === position && p.eventIndex === eventIndex);
      if (!parked) throw new ConvergeError('not_parked', `${reaction} has no parked input at ${position}:${eventIndex}`);
      await reactionStore.unpark(reaction, position, eventIndex);
    },
    resume: (reaction) => known(reaction).feed.resume(),
    applied: () => {
      // The counts may have changed with the views.
      counted.clear();
      timers?.wake();
    },
    check(streamLast) {
      head = Math.max(head, streamLast);
      if (active) for (const { feed } of feeds.values()) feed.check(streamLast);
      // A listing of parked inputs is a consumer on the reactions' bucket: none when there is
      // nothing to count, one at a time, and none once stopping, so that none is left
      // running when the connection closes (its heartbeat monitor would outlive it).
      if (feeds.size > 0 && !closed && !listing) listing = refreshParked().finally(() => (listing = undefined));
    },
    running: () => active,
    holder: () => (lease ? lease.holder() : active ? 'this process' : undefined),
    async stop() {
      closed = true;
      if (lease) await lease.stop();
      else await end();
      await listing;
    },
  };

  /** Parked counts for the status, read from the store at each check. */
  async function refreshParked(): Promise<void> {
    const all = await reactionStore.parked().catch(() => undefined);
    if (!all) return;
    parkedCounts.clear();
    for (const p of all) parkedCounts.set(p.reaction, (parkedCounts.get(p.reaction) ?? 0) + 1);
  }
}
