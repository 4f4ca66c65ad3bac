import { createActor, fromPromise, waitFor, type Actor } from 'xstate';
import type { Logger } from 'pino';
import type { AggregateRef, AnyAggregate } from './aggregate.js';
import { aggregateActor, type ExecuteOutput } from './aggregateActor.js';
import { catchUp, emptyMemory, executeCommand, type CommandEnvelope, type CommandResult, type Memory } from './commandExecution.js';
import type { Config } from './config.js';
import { ConvergeError, EventStoreUnavailableError, ShuttingDownError } from './errors.js';
import type { EventStore } from './eventStore.js';
import type { SnapshotStore } from './snapshotStore.js';

/** An aggregate's current state as its owner knows it. */
export interface StateView {
  readonly state: unknown;
  readonly version: number;
  readonly position: number;
}

/** Hosts the live aggregates of this worker's partitions. */
export interface ActorHost {
  /** Queues a command in its aggregate's mailbox and answers when it has run. */
  execute(command: CommandEnvelope): Promise<CommandResult>;
  /** The current state of an aggregate, loading it if needed; does not wait for queued commands. */
  readState(aggregate: string, id: string): Promise<StateView>;
  /** Resident actors. */
  readonly size: number;
  /** Stops actors idle for longer than `idleMs`, snapshotting them first; returns how many. */
  passivateIdle(now?: number): number;
  /**
   * Refuses new commands and waits up to `timeoutMs` for queued ones. Past that, every
   * command that has not started is answered `shutting_down`, and those running get up to
   * `graceMs` more to finish (then they are answered `event_store_unavailable`: they may
   * have committed). Every caller has its answer before the actors are snapshotted and stopped.
   */
  drain(timeoutMs: number, graceMs?: number): Promise<void>;
}

export interface ActorHostOptions {
  readonly aggregates: readonly AnyAggregate[];
  readonly store: EventStore;
  readonly snapshots: SnapshotStore;
  /** Identifies the `EVENTS` stream incarnation, so snapshots of a wiped store are ignored. */
  readonly streamId: string;
  /** Reads another aggregate's state from its owner, which may be another worker. */
  readonly readState: (ref: AggregateRef) => Promise<StateView>;
  readonly config: Config['actors'];
  readonly log: Logger;
  readonly now?: () => number;
}

type AggregateActor = Actor<typeof aggregateActor>;

interface Entry {
  readonly aggregate: AnyAggregate;
  readonly id: string;
  readonly actor: AggregateActor;
  lastActive: number;
  /** Version of the last snapshot written or read. */
  savedVersion: number;
}

/** Creates the actor host; a passivation timer runs until `drain`. */
export function createActorHost(opts: ActorHostOptions): ActorHost {
  const { store, snapshots, config, log } = opts;
  const now = opts.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const byName = new Map(opts.aggregates.map((a) => [a.name, a]));
  const machines = new Map(opts.aggregates.map((a) => [a.name, machineFor(a)]));
  let draining = false;
  let inFlight = 0;

  function machineFor(aggregate: AnyAggregate) {
    const ctx = {
      aggregate,
      store,
      recentCommits: config.recentCommits,
      conflictRetries: config.conflictRetries,
      loadDeps: (command: CommandEnvelope) => loadDeps(aggregate, command),
    };
    return aggregateActor.provide({
      actors: {
        load: fromPromise<Memory, { id: string }>(({ input }) => load(aggregate, input.id)),
        execute: fromPromise<ExecuteOutput, { memory: Memory; command: CommandEnvelope }>(async ({ input }) => {
          try {
            const { memory, result } = await executeCommand(ctx, input.memory, input.command);
            maybeSnapshot(aggregate, input.command.id, memory, config.snapshotEvery);
            return { memory, outcome: { result } };
          } catch (error) {
            return { memory: input.memory, outcome: { error: error as Error } };
          }
        }),
      },
    });
  }

  async function load(aggregate: AnyAggregate, id: string): Promise<Memory> {
    const snap = snapshots.get(aggregate.name, id);
    const usable = snap && snap.shape === aggregate.snapshotVersion && snap.stream === opts.streamId;
    const base = usable ? snap.memory : emptyMemory(aggregate);
    const entry = entries.get(`${aggregate.name}/${id}`);
    if (entry) entry.savedVersion = base.version;
    const memory = await catchUp(aggregate, store, id, base, config.recentCommits);
    maybeSnapshot(aggregate, id, memory, config.snapshotEvery);
    return memory;
  }

  function maybeSnapshot(aggregate: AnyAggregate, id: string, memory: Memory, every: number): void {
    const entry = entries.get(`${aggregate.name}/${id}`);
    if (!entry || memory.version - entry.savedVersion < every) return;
    entry.savedVersion = memory.version;
    snapshots.put(aggregate.name, id, { shape: aggregate.snapshotVersion, stream: opts.streamId, memory });
  }

  async function loadDeps(aggregate: AnyAggregate, command: CommandEnvelope): Promise<Record<string, unknown>> {
    const refs = aggregate.requires?.({ type: command.type, data: command.data });
    if (!refs) return {};
    const names = Object.keys(refs);
    const views = await Promise.all(names.map((name) => opts.readState(refs[name] as AggregateRef)));
    return Object.fromEntries(names.map((name, i) => [name, views[i]!.state]));
  }

  function obtain(aggregateName: string, id: string): Entry {
    const key = `${aggregateName}/${id}`;
    const existing = entries.get(key);
    if (existing && existing.actor.getSnapshot().status === 'active') return existing;
    const aggregate = byName.get(aggregateName);
    const machine = machines.get(aggregateName);
    if (!aggregate || !machine) throw new ConvergeError('unknown_aggregate', 404, `no aggregate named ${aggregateName}`);
    const actor = createActor(machine, { input: { key, id, mailboxSize: config.mailboxSize } });
    const entry: Entry = { aggregate, id, actor, lastActive: now(), savedVersion: 0 };
    entries.set(key, entry);
    actor.subscribe({
      complete: () => {
        if (entries.get(key) === entry) entries.delete(key);
      },
      error: (err) => log.error({ err, key }, 'aggregate actor failed'),
    });
    actor.start();
    return entry;
  }

  function snapshotAndStop(key: string, entry: Entry): void {
    const memory = entry.actor.getSnapshot().context.memory;
    if (memory) maybeSnapshot(entry.aggregate, entry.id, memory, 1);
    entry.actor.stop();
    entries.delete(key);
  }

  const sweep = setInterval(() => passivateIdle(), Math.max(1000, Math.floor(config.idleMs / 4)));
  sweep.unref();

  function passivateIdle(at = now()): number {
    let stopped = 0;
    for (const [key, entry] of entries) {
      const snap = entry.actor.getSnapshot();
      if (at - entry.lastActive < config.idleMs || snap.value !== 'idle' || snap.context.queue.length > 0) continue;
      snapshotAndStop(key, entry);
      stopped++;
    }
    return stopped;
  }

  /** Resolves once no command is in flight, or after `ms`. */
  async function settled(ms: number): Promise<void> {
    const deadline = now() + ms;
    while (inFlight > 0 && now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  return {
    async execute(command) {
      if (draining) throw new ShuttingDownError();
      const entry = obtain(command.aggregate, command.id);
      entry.lastActive = now();
      inFlight++;
      try {
        return await new Promise<CommandResult>((resolve, reject) =>
          entry.actor.send({ type: 'COMMAND', item: { command, resolve, reject } }),
        );
      } finally {
        inFlight--;
      }
    },

    async readState(aggregateName, id) {
      const entry = obtain(aggregateName, id);
      entry.lastActive = now();
      const snap = await waitFor(entry.actor, (s) => s.value !== 'loading');
      const memory = snap.context.memory;
      if (!memory) throw new EventStoreUnavailableError(`could not load ${aggregateName} ${id}`);
      return { state: memory.state, version: memory.version, position: memory.position };
    },

    get size() {
      return entries.size;
    },

    passivateIdle,

    async drain(timeoutMs, graceMs = 0) {
      draining = true;
      clearInterval(sweep);
      await settled(timeoutMs);
      if (inFlight > 0) {
        log.warn({ inFlight }, 'drain deadline passed: commands not yet started are answered shutting_down');
        for (const entry of entries.values()) entry.actor.send({ type: 'REFUSE_WAITING' });
        await settled(graceMs);
      }
      if (inFlight > 0) {
        log.error({ inFlight }, 'commands still running after the drain grace; answering them as of unknown outcome');
        const error = new EventStoreUnavailableError('this worker shut down while the command ran; it may have been applied; retry with the same Idempotency-Key');
        for (const entry of entries.values()) entry.actor.send({ type: 'ABANDON', error });
      }
      for (const [key, entry] of entries) snapshotAndStop(key, entry);
    },
  };
}
