import { createActor, waitFor, type Actor } from 'xstate';
import type { Logger } from 'pino';
import type { AnyAggregate } from '../core/aggregate.js';
import { ConvergeError, EventStoreUnavailableError, OverloadedError, ShuttingDownError } from '../core/errors.js';
import type { EventStore } from '../core/eventStore.js';
import { aggregateActor, restedActor, type ActorEnvironment, type MailboxItem } from './actor.js';
import type { CommandEnvelope, CommandResult, ReadState, StateView } from './execute.js';
import { startLookup } from './lookup.js';
import type { Memory } from './rehydrate.js';
import type { SnapshotStore } from './snapshots.js';

/** Hosts the live aggregates of this worker's partitions. */
export interface ActorHost {
  /**
   * Queues a command in its aggregate's mailbox and answers when it has run.
   * `readState` reads the other aggregates the command depends on.
   */
  execute(command: CommandEnvelope, readState: ReadState): Promise<CommandResult>;
  /** The current state of an aggregate, loading it if needed; does not wait for queued commands. */
  readState(aggregate: string, id: string): Promise<StateView>;
  /** Resident aggregates: their memory is held, whether their actor runs or rests. */
  readonly size: number;
  /** Resident aggregates whose XState actor is running (not at rest). */
  readonly awake: number;
  /** Commands queued or running, over every actor. */
  readonly inFlight: number;
  /** Stops actors idle for longer than `idleMs`, snapshotting them first; returns how many. */
  passivateIdle(now?: number): number;
  /**
   * Puts to rest, keeping their memory, the actors without a command or a read for `restMs`
   * beyond the `maxAwake` most recently used, least recently used first; returns how many.
   */
  restIdle(now?: number): number;
  /**
   * Stops the actors `which` selects, snapshotting them first: their partition has moved to
   * another worker, whose commits this memory would not see. Their queued commands run
   * first, for up to `timeoutMs`; past that, those not started are refused with `refusal()`
   * (they ran nowhere), and an actor still running one stays until its next passivation.
   */
  evict(which: (aggregate: string, id: string) => boolean, timeoutMs: number, refusal: () => Error): Promise<void>;
  /**
   * Refuses new commands and waits up to `timeoutMs` for queued ones. Past that, every
   * command that has not started is answered `shutting_down`, and those running get up to
   * `graceMs` more to finish (then they are answered `event_store_unavailable`: they may
   * have committed). Every caller has its answer before the actors are snapshotted and stopped.
   */
  drain(timeoutMs: number, graceMs?: number): Promise<void>;
}

/** How the host runs its actors. */
export interface ActorSettings {
  readonly snapshotEvery: number;
  readonly idleMs: number;
  /** An actor without a command for this long stops, once more than `maxAwake` run; its aggregate's memory stays resident. */
  readonly restMs: number;
  /** Actors kept running past `restMs`: starting one again costs a worker CPU, keeping one costs memory. */
  readonly maxAwake: number;
  /** Commands an aggregate holds at once, the running one included; more are refused with 429. */
  readonly mailboxSize: number;
  readonly recentCommits: number;
  readonly conflictRetries: number;
}

export interface ActorHostOptions {
  readonly aggregates: readonly AnyAggregate[];
  readonly store: EventStore;
  readonly snapshots: SnapshotStore;
  /** Identifies the `EVENTS` stream incarnation, so snapshots of a wiped store are ignored. */
  readonly streamId: string;
  /** How long the event store remembers a command id (`eventStore.duplicateWindowMs`). */
  readonly duplicateWindowMs: number;
  readonly settings: ActorSettings;
  readonly log: Logger;
  readonly now?: () => number;
  /** See `ExecutionContext.onConflict`. */
  readonly onConflict?: ActorEnvironment['onConflict'];
  /** What the aggregates' lookups are given as `services`. */
  readonly services?: unknown;
}

type AggregateActor = Actor<typeof aggregateActor>;

/** What a resting aggregate keeps of its actor: all an actor started again in `idle` needs. */
interface Rest {
  readonly memory: Memory;
  readonly savedVersion: number;
}

/**
 * A resident aggregate: its actor, or its memory while at rest, the commands waiting for
 * it, and the one it runs.
 */
interface Entry {
  readonly aggregate: AnyAggregate;
  readonly id: string;
  actor: AggregateActor | undefined;
  rest: Rest | undefined;
  readonly mailbox: MailboxItem[];
  running: MailboxItem | undefined;
  lastActive: number;
}

/** Creates the actor host; a passivation timer runs until `drain`. */
export function createActorHost(opts: ActorHostOptions): ActorHost {
  const { store, snapshots, settings, log } = opts;
  const now = opts.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const byName = new Map(opts.aggregates.map((a) => [a.name, a]));
  const env: ActorEnvironment = {
    store,
    snapshots,
    streamId: opts.streamId,
    keep: settings.recentCommits,
    conflictRetries: settings.conflictRetries,
    duplicateWindowMs: opts.duplicateWindowMs,
    snapshotEvery: settings.snapshotEvery,
    ...(opts.onConflict ? { onConflict: opts.onConflict } : {}),
  };
  let draining = false;
  let inFlight = 0;
  /**
   * The resident aggregates whose actor runs: the ones a rest sweep looks at, least recently
   * used (commanded or read) first: a Set keeps insertion order, and `touch` moves an entry
   * to the end.
   */
  const awake = new Set<Entry>();

  /** Marks the entry used now: the last a rest sweep reaches. */
  function touch(entry: Entry): void {
    entry.lastActive = now();
    if (entry.actor) {
      awake.delete(entry);
      awake.add(entry);
    }
  }

  /** Hands the next waiting command to an idle actor, waking a resting one. */
  function pump(entry: Entry): void {
    if (entry.running || entry.mailbox.length === 0) return;
    const actor = entry.actor ?? wake(entry);
    if (actor.getSnapshot().value !== 'idle') return;
    const item = entry.mailbox.shift()!;
    entry.running = item;
    actor.send({ type: 'EXECUTE', item });
  }

  function obtain(aggregateName: string, id: string): Entry {
    const key = keyOf(aggregateName, id);
    const existing = entries.get(key);
    if (existing && (existing.rest || existing.actor?.getSnapshot().status === 'active')) return existing;
    const aggregate = byName.get(aggregateName);
    if (!aggregate) throw new ConvergeError('unknown_aggregate', `no aggregate named ${aggregateName}`);
    const entry: Entry = { aggregate, id, actor: undefined, rest: undefined, mailbox: [], running: undefined, lastActive: now() };
    entries.set(key, entry);
    start(key, entry, createActor(aggregateActor, { input: { aggregate, id, env } }));
    return entry;
  }

  /**
   * Starts a resting aggregate's actor again in `idle`, from the memory it kept: no load
   * (docs/architecture.md, "Actors at rest"). Started from its input, not from a restored
   * snapshot: XState's restore walks every object the context reaches, the host's stores
   * included, which cost a worker milliseconds per wake.
   */
  function wake(entry: Entry): AggregateActor {
    const rest = entry.rest!;
    entry.rest = undefined;
    return start(keyOf(entry.aggregate.name, entry.id), entry, createActor(restedActor, { input: { aggregate: entry.aggregate, id: entry.id, env, rest } }) as AggregateActor);
  }

  function start(key: string, entry: Entry, actor: AggregateActor): AggregateActor {
    entry.actor = actor;
    awake.add(entry);
    actor.subscribe({
      next: (snapshot) => {
        if (snapshot.value === 'idle') entry.running = undefined;
        if (snapshot.status === 'done') fail(key, entry, snapshot.context.error);
        else pump(entry);
      },
      error: (err) => log.error({ err, key }, 'aggregate actor failed'),
    });
    actor.start();
    return actor;
  }

  /** Stops the entry's actor, if it runs, and answers the memory it held. */
  function halt(entry: Entry): Rest | undefined {
    if (!entry.actor) return entry.rest;
    const { memory, savedVersion } = entry.actor.getSnapshot().context;
    entry.actor.stop();
    entry.actor = undefined;
    awake.delete(entry);
    return memory ? { memory, savedVersion } : undefined;
  }

  /** The memory of a running actor, once it has loaded. */
  async function loaded(entry: Entry): Promise<Memory> {
    const snap = await waitFor(entry.actor!, (s) => s.value !== 'loading');
    const { memory, error } = snap.context;
    if (!memory) throw new EventStoreUnavailableError(`could not load ${entry.aggregate.name} ${entry.id}`, { cause: error });
    return memory;
  }

  /** An actor with no command running, none waiting, and nothing to load. */
  const quiet = (entry: Entry) => !entry.running && entry.mailbox.length === 0 && (!entry.actor || entry.actor.getSnapshot().value === 'idle');

  /** The actor could not load (or a bug ended it): its callers get the error, and the next command starts afresh. */
  function fail(key: string, entry: Entry, error: unknown): void {
    if (entries.get(key) === entry) entries.delete(key);
    awake.delete(entry);
    entry.actor = undefined;
    const err = error instanceof ConvergeError ? error : new EventStoreUnavailableError(`could not load ${key}`, { cause: error });
    for (const item of [...(entry.running ? [entry.running] : []), ...entry.mailbox.splice(0)]) item.reject(err);
    entry.running = undefined;
  }

  /** A passivated actor's memory is saved whatever its distance from the last snapshot: its next start then replays nothing. */
  function snapshotAndStop(key: string, entry: Entry): void {
    const kept = halt(entry);
    if (kept && kept.memory.version > kept.savedVersion) {
      snapshots.put(entry.aggregate.name, entry.id, { shape: entry.aggregate.snapshotVersion, stream: opts.streamId, memory: kept.memory });
    }
    entry.rest = undefined;
    entries.delete(key);
  }

  const passivation = setInterval(() => passivateIdle(), Math.max(1000, Math.floor(settings.idleMs / 4)));
  passivation.unref();
  const resting = setInterval(() => restIdle(), Math.max(100, Math.floor(settings.restMs / 2)));
  resting.unref();

  function passivateIdle(at = now()): number {
    let stopped = 0;
    for (const [key, entry] of entries) {
      if (at - entry.lastActive < settings.idleMs || !quiet(entry)) continue;
      snapshotAndStop(key, entry);
      stopped++;
    }
    return stopped;
  }

  function restIdle(at = now()): number {
    let rested = 0;
    for (const entry of awake) {
      if (awake.size <= settings.maxAwake) break;
      if (at - entry.lastActive < settings.restMs) {
        // The entries after this one were used more recently still, unless the clock stepped
        // back since this one was: then it is passed over, as one in use.
        if (entry.lastActive <= at) break;
        continue;
      }
      if (!quiet(entry)) continue;
      entry.rest = halt(entry);
      rested++;
    }
    return rested;
  }

  /** Resolves once no command is in flight, or after `ms`. */
  async function settled(ms: number): Promise<void> {
    const deadline = now() + ms;
    while (inFlight > 0 && now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  return {
    async execute(command, readState) {
      if (draining) throw new ShuttingDownError();
      const entry = obtain(command.aggregate, command.id);
      touch(entry);
      if (entry.mailbox.length + (entry.running ? 1 : 0) >= settings.mailboxSize) throw new OverloadedError(keyOf(command.aggregate, command.id));
      inFlight++;
      try {
        return await new Promise<CommandResult>((resolve, reject) => {
          entry.mailbox.push({ command, readState, lookup: startLookup(entry.aggregate, command, opts.services), resolve, reject });
          pump(entry);
        });
      } finally {
        inFlight--;
      }
    },

    async readState(aggregateName, id) {
      const entry = obtain(aggregateName, id);
      touch(entry);
      const memory = entry.rest?.memory ?? (await loaded(entry));
      return { state: memory.state, version: memory.version, position: memory.position };
    },

    get size() {
      return entries.size;
    },

    get awake() {
      return awake.size;
    },

    get inFlight() {
      return inFlight;
    },

    passivateIdle,
    restIdle,

    async evict(which, timeoutMs, refusal) {
      const busy = (e: Entry) => !quiet(e);
      const deadline = now() + timeoutMs;
      let chosen = [...entries].filter(([, e]) => which(e.aggregate.name, e.id));
      while (chosen.some(([, e]) => busy(e)) && now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
        chosen = chosen.filter(([key, e]) => entries.get(key) === e);
      }
      for (const [key, entry] of chosen) {
        if (entries.get(key) !== entry) continue;
        for (const item of entry.mailbox.splice(0)) item.reject(refusal());
        if (!busy(entry)) snapshotAndStop(key, entry);
      }
    },

    async drain(timeoutMs, graceMs = 0) {
      draining = true;
      clearInterval(passivation);
      clearInterval(resting);
      await settled(timeoutMs);
      if (inFlight > 0) {
        log.warn({ inFlight }, 'drain deadline passed: commands not yet started are answered shutting_down');
        for (const entry of entries.values()) for (const item of entry.mailbox.splice(0)) item.reject(new ShuttingDownError());
        await settled(graceMs);
      }
      if (inFlight > 0) {
        log.error({ inFlight }, 'commands still running after the drain grace; answering them as of unknown outcome');
        const error = new EventStoreUnavailableError('this worker shut down while the command ran; it may have been applied; retry with the same Idempotency-Key');
        for (const entry of entries.values()) entry.running?.reject(error);
      }
      for (const [key, entry] of entries) snapshotAndStop(key, entry);
    },
  };
}

const keyOf = (aggregate: string, id: string) => `${aggregate}/${id}`;
