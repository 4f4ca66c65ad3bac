import { assign, fromPromise, setup } from 'xstate';
import { OverloadedError, ShuttingDownError } from './errors.js';
import type { CommandEnvelope, CommandResult, Memory } from './commandExecution.js';

/** A command waiting in an actor's mailbox, with the callbacks that answer its caller. */
export interface MailboxItem {
  readonly command: CommandEnvelope;
  resolve(result: CommandResult): void;
  reject(error: Error): void;
}

/** What an `execute` run answers: the actor's memory afterwards and the command's outcome. */
export interface ExecuteOutput {
  readonly memory: Memory;
  readonly outcome: { readonly result: CommandResult } | { readonly error: Error };
}

interface ActorContext {
  readonly key: string;
  readonly id: string;
  readonly mailboxSize: number;
  memory: Memory | undefined;
  /** The mailbox. XState drops events a state does not handle, so commands wait here instead. */
  readonly queue: MailboxItem[];
}

type ActorEvent =
  | { type: 'COMMAND'; item: MailboxItem }
  /** Shutdown: answers every command that has not started with `shutting_down`; one running keeps running. */
  | { type: 'REFUSE_WAITING' }
  /** Shutdown gave up on a running command: answers it, and anything left, with `error`. */
  | { type: 'ABANDON'; error: Error };

/**
 * One live aggregate: loads its memory (snapshot plus later commits), then runs the
 * commands in its mailbox one at a time, in arrival order. Loading and executing are
 * promises the actor host provides with `.provide()`, so the machine itself does no I/O.
 */
export const aggregateActor = setup({
  types: {
    context: {} as ActorContext,
    events: {} as ActorEvent,
    input: {} as { key: string; id: string; mailboxSize: number },
  },
  actors: {
    load: fromPromise<Memory, { id: string }>(() => Promise.reject(new Error('load is provided by the actor host'))),
    execute: fromPromise<ExecuteOutput, { memory: Memory; command: CommandEnvelope }>(() =>
      Promise.reject(new Error('execute is provided by the actor host')),
    ),
  },
  guards: {
    mailboxFull: ({ context }) => context.queue.length >= context.mailboxSize,
    hasWork: ({ context }) => context.queue.length > 0,
  },
  actions: {
    refuse: ({ context }, item: MailboxItem) => item.reject(new OverloadedError(context.key)),
    // The queue is the actor's own: appending in place keeps enqueueing O(1).
    enqueue: ({ context }, item: MailboxItem) => void context.queue.push(item),
    settle: ({ context }, output: ExecuteOutput) => {
      const item = context.queue.shift();
      if (!item) return;
      if ('result' in output.outcome) item.resolve(output.outcome.result);
      else item.reject(output.outcome.error);
    },
    refuseWaiting: ({ context }, params: { running: number }) => {
      for (const item of context.queue.splice(params.running)) item.reject(new ShuttingDownError());
    },
    abandon: ({ context }, error: Error) => {
      for (const item of context.queue.splice(0)) item.reject(error);
    },
    failAll: ({ context, event }) => {
      const error = (event as unknown as { error: unknown }).error;
      const err = error instanceof Error ? error : new Error(String(error));
      for (const item of context.queue.splice(0)) item.reject(err);
    },
  },
}).createMachine({
  id: 'aggregate',
  context: ({ input }) => ({ ...input, memory: undefined, queue: [] }),
  on: {
    COMMAND: [
      { guard: 'mailboxFull', actions: { type: 'refuse', params: ({ event }) => event.item } },
      { actions: { type: 'enqueue', params: ({ event }) => event.item } },
    ],
    REFUSE_WAITING: { actions: { type: 'refuseWaiting', params: { running: 0 } } },
    ABANDON: { actions: { type: 'abandon', params: ({ event }) => event.error } },
  },
  initial: 'loading',
  states: {
    loading: {
      invoke: {
        src: 'load',
        input: ({ context }) => ({ id: context.id }),
        onDone: { target: 'idle', actions: assign({ memory: ({ event }) => event.output }) },
        onError: { target: 'failed', actions: 'failAll' },
      },
    },
    idle: {
      always: { guard: 'hasWork', target: 'busy' },
    },
    busy: {
      // The head of the queue is the command being executed; only those behind it are waiting.
      on: { REFUSE_WAITING: { actions: { type: 'refuseWaiting', params: { running: 1 } } } },
      invoke: {
        src: 'execute',
        input: ({ context }) => ({ memory: context.memory!, command: context.queue[0]!.command }),
        onDone: {
          target: 'idle',
          actions: [
            assign({ memory: ({ event }) => event.output.memory }),
            { type: 'settle', params: ({ event }) => event.output },
          ],
        },
        // execute reports faults in its output; reaching here is a bug, answered as one.
        onError: { target: 'failed', actions: 'failAll' },
      },
    },
    /** Final: the host forgets this actor and the next command starts a fresh one. */
    failed: { type: 'final' },
  },
});
