import { assign, fromPromise, setup } from 'xstate';
import type { CommandEnvelope, Executed, ReadState } from './execute.js';
import type { Memory } from './rehydrate.js';

/** A command handed to the actor, with the callbacks that answer its caller. */
export interface MailboxItem {
  readonly command: CommandEnvelope;
  /** Reads the other aggregates the command depends on. */
  readonly readState: ReadState;
  resolve(result: Executed['result']): void;
  reject(error: Error): void;
}

/** What an `execute` run answers: the actor's memory afterwards and the command's outcome. */
export interface ExecuteOutput {
  readonly memory: Memory;
  readonly item: MailboxItem;
  readonly outcome: { readonly result: Executed['result'] } | { readonly error: Error };
}

/** `EXECUTE`: run this command now; sent by the host only while the actor is `idle`. */
export type ActorEvent = { readonly type: 'EXECUTE'; readonly item: MailboxItem };

/**
 * One live aggregate, in the states a reader can see: `loading` its memory (snapshot plus
 * later commits), `idle`, `busy` with one command, or `failed` (final: it could not load,
 * and the host forgets it). The machine holds the memory and assigns each command's
 * result to it; the mailbox that feeds it one command at a time is the host's. Loading
 * and executing are promises the host provides with `.provide()`, so the machine itself
 * does no I/O.
 */
export const aggregateActor = setup({
  types: {
    context: {} as { readonly key: string; readonly id: string; memory: Memory | undefined; error?: unknown },
    events: {} as ActorEvent,
    input: {} as { key: string; id: string },
  },
  actors: {
    load: fromPromise<Memory, { id: string }>(() => Promise.reject(new Error('load is provided by the actor host'))),
    execute: fromPromise<ExecuteOutput, { memory: Memory; item: MailboxItem }>(() => Promise.reject(new Error('execute is provided by the actor host'))),
  },
  actions: {
    settle: (_, output: ExecuteOutput) => {
      if ('result' in output.outcome) output.item.resolve(output.outcome.result);
      else output.item.reject(output.outcome.error);
    },
  },
}).createMachine({
  id: 'aggregate',
  context: ({ input }) => ({ ...input, memory: undefined }),
  initial: 'loading',
  states: {
    loading: {
      invoke: {
        src: 'load',
        input: ({ context }) => ({ id: context.id }),
        onDone: { target: 'idle', actions: assign({ memory: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    idle: {
      on: { EXECUTE: { target: 'busy' } },
    },
    busy: {
      invoke: {
        src: 'execute',
        // The event that entered `busy` carries the command.
        input: ({ context, event }) => ({ memory: context.memory!, item: (event as ActorEvent).item }),
        onDone: {
          target: 'idle',
          actions: [assign({ memory: ({ event }) => event.output.memory }), { type: 'settle', params: ({ event }) => event.output }],
        },
        // execute reports faults in its output; reaching here is a bug, and the host answers the command.
        onError: { target: 'failed', actions: assign({ error: ({ event }) => event.error }) },
      },
    },
    failed: { type: 'final' },
  },
});
