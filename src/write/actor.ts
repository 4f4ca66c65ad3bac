import { assign, setup } from 'xstate';
import type { AnyAggregate } from '../core/aggregate.js';
import type { EventStore } from '../core/eventStore.js';
import { executeCommand, type CommandEnvelope, type Executed, type ExecutionContext, type ReadState } from './execute.js';
import type { LookupOutcome } from './lookup.js';
import { rehydrate, type Memory } from './rehydrate.js';
import type { SnapshotStore } from './snapshots.js';

/** A command handed to the actor, with the callbacks that answer its caller. */
export interface MailboxItem {
  readonly command: CommandEnvelope;
  /** Reads the other aggregates the command depends on. */
  readonly readState: ReadState;
  /** The command's lookup, started when it arrived (see `startLookup`). */
  readonly lookup: Promise<LookupOutcome>;
  resolve(result: Executed['result']): void;
  reject(error: Error): void;
}

/** What an actor works with, the same for every actor of a host. */
export interface ActorEnvironment {
  readonly store: EventStore;
  readonly snapshots: SnapshotStore;
  /** The id of the store's stream: snapshots of another stream are ignored, and new ones carry it. */
  readonly streamId: string;
  /** Recent commits to remember, for idempotent replies and `If-Match` merges. */
  readonly keep: number;
  readonly conflictRetries: number;
  /** How long the store remembers a command id (see `ExecutionContext`). */
  readonly duplicateWindowMs: number;
  /** Events between snapshots. */
  readonly snapshotEvery: number;
  /** See `ExecutionContext.onConflict`. */
  readonly onConflict?: ExecutionContext['onConflict'];
}

/** What an `execute` run answers: the actor's memory afterwards and the command's outcome. */
export interface ExecuteOutput {
  readonly memory: Memory;
  readonly item: MailboxItem;
  readonly outcome: { readonly result: Executed['result'] } | { readonly error: Error };
}

/**
 * `EXECUTE`: run this command now; sent by the host only while the actor is `idle`.
 * `EXECUTED`: the run is over; `LOADED`, `LOAD_FAILED`: so is the load. Each sent by the actor to itself.
 */
export type ActorEvent =
  | { readonly type: 'EXECUTE'; readonly item: MailboxItem }
  | { readonly type: 'EXECUTED'; readonly output: ExecuteOutput }
  | { readonly type: 'LOADED'; readonly output: { readonly memory: Memory; readonly snapshotVersion: number } }
  | { readonly type: 'LOAD_FAILED'; readonly error: unknown };

/** Runs one command on the actor's memory; a fault is an outcome too, so the run always ends in `EXECUTED`. */
async function run(context: ActorContext, item: MailboxItem): Promise<ExecuteOutput> {
  const memory = context.memory!;
  try {
    // Named fields, not a spread of `env`: a spread per command showed in the worker's profile.
    const { env } = context;
    const ctx: ExecutionContext = {
      aggregate: context.aggregate,
      store: env.store,
      readState: item.readState,
      keep: env.keep,
      conflictRetries: env.conflictRetries,
      duplicateWindowMs: env.duplicateWindowMs,
      onConflict: env.onConflict,
    };
    const executed = await executeCommand(ctx, memory, item.command, await item.lookup);
    return { memory: executed.memory, item, outcome: { result: executed.result } };
  } catch (error) {
    return { memory, item, outcome: { error: error as Error } };
  }
}

interface ActorContext {
  readonly aggregate: AnyAggregate;
  readonly id: string;
  readonly env: ActorEnvironment;
  memory: Memory | undefined;
  /** The version of the last snapshot read or written. */
  savedVersion: number;
  /** Why it failed, when it did. */
  error?: unknown;
}

/**
 * What an actor starts from: its aggregate and the host's environment, and for an aggregate
 * at rest the memory it kept (docs/architecture.md, "Actors at rest").
 */
export interface ActorInput {
  readonly aggregate: AnyAggregate;
  readonly id: string;
  readonly env: ActorEnvironment;
  readonly rest?: { readonly memory: Memory; readonly savedVersion: number };
}

/** Saves `memory` when `snapshotEvery` events have passed since the last snapshot; answers the version last saved. */
function snapshotted(context: ActorContext, memory: Memory | undefined): number {
  const { savedVersion, aggregate, id, env } = context;
  if (!memory || memory.version - savedVersion < env.snapshotEvery) return savedVersion;
  env.snapshots.put(aggregate.name, id, { shape: aggregate.snapshotVersion, stream: env.streamId, memory });
  return memory.version;
}

/**
 * One live aggregate, in the states a reader can see: `loading` its memory (the latest
 * usable snapshot plus the commits after it), `idle`, `busy` running one command, or
 * `failed` (final: it could not load, and the host forgets it). It holds the memory,
 * assigns each command's result to it, and snapshots it every `snapshotEvery` events. The
 * mailbox that feeds it one command at a time is the host's. I/O comes in through `env`
 * (an event store and a snapshot store), so the machine runs as well on in-memory ones.
 *
 * Built twice, differing only in where they begin: `aggregateActor` loads first;
 * `restedActor` begins in `idle` from the memory of an aggregate at rest (its input's
 * `rest`). Creating an actor is most of what a wake costs, so neither spends a transition
 * choosing its first state.
 */
const aggregateMachine = (initial: 'loading' | 'idle') =>
  setup({
    types: {
      context: {} as ActorContext,
      events: {} as ActorEvent,
      input: {} as ActorInput,
    },
    actions: {
      // The load and each command run outside the machine and report back with an event: an
      // invoked promise actor would create, start and stop a child actor every time.
      load: ({ context, self }) => {
        void rehydrate(context.aggregate, context.id, context.env).then(
          (output) => self.send({ type: 'LOADED', output }),
          (error: unknown) => self.send({ type: 'LOAD_FAILED', error }),
        );
      },
      execute: ({ context, event, self }) => {
        if (event.type !== 'EXECUTE') return;
        void run(context, event.item).then((output) => self.send({ type: 'EXECUTED', output }));
      },
      settle: (_, output: ExecuteOutput) => {
        if ('result' in output.outcome) output.item.resolve(output.outcome.result);
        else output.item.reject(output.outcome.error);
      },
      // One assign for the memory and its snapshot: each assign costs XState a context and a snapshot of its own.
      loaded: assign(({ context, event }) => {
        if (event.type !== 'LOADED') return {};
        const { memory, snapshotVersion } = event.output;
        return { memory, savedVersion: snapshotted({ ...context, savedVersion: snapshotVersion }, memory) };
      }),
      executed: assign(({ context, event }) => {
        if (event.type !== 'EXECUTED') return {};
        const { memory } = event.output;
        return { memory, savedVersion: snapshotted(context, memory) };
      }),
    },
  }).createMachine({
    id: 'aggregate',
    context: ({ input }) => ({ aggregate: input.aggregate, id: input.id, env: input.env, memory: input.rest?.memory, savedVersion: input.rest?.savedVersion ?? 0 }),
    initial,
    states: {
      loading: {
        entry: 'load',
        on: {
          LOADED: { target: 'idle', actions: 'loaded' },
          LOAD_FAILED: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
        },
      },
      idle: {
        on: { EXECUTE: { target: 'busy' } },
      },
      busy: {
        // The event that entered `busy` carries the command.
        entry: 'execute',
        on: {
          EXECUTED: {
            target: 'idle',
            actions: ['executed', { type: 'settle', params: ({ event }) => event.output }],
          },
        },
      },
      failed: { type: 'final' },
    },
  });

/** An aggregate's actor that loads its memory first. */
export const aggregateActor = aggregateMachine('loading');
/** An aggregate's actor started again from the memory it kept at rest (docs/architecture.md, "Actors at rest"). */
export const restedActor = aggregateMachine('idle');
