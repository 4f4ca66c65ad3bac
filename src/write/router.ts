import { SpanKind, type Context } from '@opentelemetry/api';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { AggregateRef } from '../core/aggregate.js';
import {
  ConvergeError,
  EventStoreUnavailableError,
  OutcomeUnknownError,
  PartitionUnavailableError,
  errorFromWire,
  errorToWire,
  type WireError,
} from '../core/errors.js';
import { partitionOf } from '../core/partition.js';
import type { NatsLink } from '../nats/connection.js';
import { NoRespondersError } from '../nats/requests.js';
import type { Tracing } from '../observe/tracing.js';
import type { CommandEnvelope, CommandResult, StateView } from './execute.js';
import type { ActorHost } from './host.js';

/** Sends commands and state reads to the worker that owns their aggregate. */
export interface CommandRouter {
  /** Runs a command on its owner; `parent` is the trace context it runs under, when tracing is on. */
  dispatch(command: CommandEnvelope, parent?: Context): Promise<CommandResult>;
  readState(ref: AggregateRef): Promise<StateView>;
  /** Starts answering for the partitions `owns` gives this worker now (with static ownership, all it will have). */
  start(): void;
  /** Starts answering for `partition`, which this worker now owns. */
  serve(partition: number): void;
  /** Stops answering for `partition`; requests already received are still answered. */
  unserve(partition: number): Promise<void>;
  /** Stops answering; requests already received are still answered. */
  stop(): Promise<void>;
}

export interface RouterOptions {
  readonly link: NatsLink;
  readonly host: ActorHost;
  readonly partitions: number;
  /** Whether this worker owns a partition now: `ownerOf` its index, or its lease (see `PartitionLeases`). */
  readonly owns: (partition: number) => boolean;
  readonly timeoutMs: number;
  readonly log: Logger;
  /** Counts commands forwarded to another worker. */
  readonly onForward?: (aggregate: string) => void;
  /** Spans for forwards and actor runs, `traceparent` in the forward's headers; absent when tracing is off. */
  readonly tracing?: Tracing;
}

type Request = { op: 'command'; command: CommandEnvelope } | { op: 'state'; aggregate: string; id: string };
/** `moved`: refused unrun because this worker no longer owns the partition (the sender tries again). */
type Reply<T> = { ok: true; value: T } | ({ ok: false; moved?: true } & WireError);

/** The least time a forwarded request is sent again with. */
const MIN_TRY_MS = 250;

/** Subject a partition's owner listens on. */
export function commandSubject(partition: number): string {
  return `converge.cmd.${partition}`;
}

/**
 * Routes by partition: the owner runs the request on its own actor host;
 * anyone else forwards it to the owner over NATS request-reply.
 */
export function createCommandRouter(opts: RouterOptions): CommandRouter {
  const { link, host, partitions, log, tracing } = opts;
  const subscriptions = new Map<number, Subscription>();
  const ownsPartition = opts.owns;

  async function forward<T>(partition: number, request: Request, parent?: Context): Promise<T> {
    if (!link.isConnected()) throw new EventStoreUnavailableError();
    if (!tracing || request.op !== 'command') return send(partition, request, { timeoutMs: opts.timeoutMs });
    const span = tracing.start(`forward ${request.command.type}`, parent, { 'converge.partition': partition, ...commandAttributes(request.command) }, SpanKind.CLIENT);
    // The owner's actor span is the forward's child: its context travels in the command itself.
    const traceparent = tracing.traceparentOf(span);
    const traced: Request = { op: 'command', command: { ...request.command, ...(traceparent === undefined ? {} : { traceparent }) } };
    try {
      const value = await send<T>(partition, traced, { timeoutMs: opts.timeoutMs });
      tracing.end(span);
      return value;
    } catch (err) {
      tracing.end(span, err);
      throw err;
    }
  }

  const send = <T>(partition: number, request: Request, options: { timeoutMs: number }) => sendToOwner<T>(link, log, partition, request, options.timeoutMs);

  async function answer(msg: Msg): Promise<void> {
    let reply: Reply<unknown>;
    let partition: number | undefined;
    try {
      const request = msg.json<Request>();
      const { aggregate, id } = request.op === 'command' ? request.command : request;
      partition = partitionOf(aggregate, id, partitions);
      // Sent just as this worker gave the partition up: refused unrun, and the sender tries the new owner.
      if (!ownsPartition(partition)) throw new PartitionUnavailableError(partition);
      const value =
        request.op === 'command'
          ? await (tracing ? executeTraced(tracing, request.command, tracing.extract(request.command.traceparent)) : host.execute(request.command, readState))
          : await host.readState(request.aggregate, request.id);
      reply = { ok: true, value };
    } catch (err) {
      if (!(err instanceof ConvergeError)) log.error({ err }, 'forwarded request failed');
      // Also a command that waited here while its partition moved away, and was refused unrun (`ActorHost.evict`).
      const moved = err instanceof PartitionUnavailableError && partition !== undefined && !ownsPartition(partition);
      reply = { ok: false, ...(moved ? { moved: true as const } : {}), ...errorToWire(err) };
    }
    msg.respond(JSON.stringify(reply));
  }

  /**
   * Runs a command on this worker's actor under an actor span, whose context goes with the
   * command (`traceparent`) through the mailbox to the append, which makes its own span a
   * child of it and stores its own in the commit's metadata (docs/architecture.md, "Metadata").
   */
  async function executeTraced(tracing: Tracing, command: CommandEnvelope, parent: Context | undefined): Promise<CommandResult> {
    const span = tracing.start(`actor ${command.type}`, parent, commandAttributes(command));
    const traceparent = tracing.traceparentOf(span);
    try {
      const result = await host.execute(traceparent === undefined ? command : { ...command, traceparent }, readState);
      span.setAttribute('converge.outcome', result.kind);
      tracing.end(span);
      return result;
    } catch (err) {
      tracing.end(span, err);
      throw err;
    }
  }

  function readState({ aggregate, id }: AggregateRef): Promise<StateView> {
    const p = partitionOf(aggregate, id, partitions);
    return ownsPartition(p) ? host.readState(aggregate, id) : forward(p, { op: 'state', aggregate, id });
  }

  return {
    dispatch(command, parent) {
      const p = partitionOf(command.aggregate, command.id, partitions);
      // The command's own reads of other aggregates go through this router too, wherever their owners are.
      if (ownsPartition(p)) {
        const local = tracing ? executeTraced(tracing, command, parent) : host.execute(command, readState);
        // Refused unrun because the partition moved away while the command waited: on to its new owner.
        return local.catch((err: unknown) => {
          if (!(err instanceof PartitionUnavailableError) || ownsPartition(p)) throw err;
          opts.onForward?.(command.aggregate);
          return forward<CommandResult>(p, { op: 'command', command }, parent);
        });
      }
      opts.onForward?.(command.aggregate);
      return forward(p, { op: 'command', command }, parent);
    },
    readState,
    start() {
      for (let p = 0; p < partitions; p++) if (ownsPartition(p)) this.serve(p);
    },
    serve(p) {
      if (subscriptions.has(p)) return;
      subscriptions.set(p, link.nc.subscribe(commandSubject(p), { queue: 'converge', callback: (_err, msg) => void answer(msg) }));
    },
    async unserve(p) {
      const sub = subscriptions.get(p);
      subscriptions.delete(p);
      await sub?.drain().catch(() => undefined);
    },
    async stop() {
      const subs = [...subscriptions.values()];
      subscriptions.clear();
      await Promise.all(subs.map((s) => s.drain().catch(() => undefined)));
    },
  };
}

/**
 * The router of a process that owns every partition and has no NATS: an in-process runtime
 * on the in-memory event store. Commands and the state reads they make run on its own host.
 */
export function localRouter(host: ActorHost): CommandRouter {
  const readState = ({ aggregate, id }: AggregateRef) => host.readState(aggregate, id);
  return {
    dispatch: (command) => host.execute(command, readState),
    readState,
    start: () => undefined,
    serve: () => undefined,
    unserve: async () => undefined,
    stop: async () => undefined,
  };
}

/**
 * Sends a request to the owner of `partition`. While a partition changes owner nobody may
 * answer for it, or the old owner refuses it: both mean it ran nowhere, so it is sent
 * again, with a growing pause, until `timeoutMs` has passed.
 */
async function sendToOwner<T>(link: NatsLink, log: Logger, partition: number, request: Request, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
    let msg: Msg;
    try {
      msg = await link.requests.request(commandSubject(partition), JSON.stringify(request), { timeoutMs: Math.max(1, deadline - Date.now()) });
    } catch (err) {
      // "No responders" comes from the server: nobody subscribes to the partition, so the
      // request ran nowhere. Any other failure (a timeout, a dropped connection) may have
      // come after the owner took it, and the owner may have committed the command. A state
      // read changes nothing, so it is safe to retry whatever failed it.
      const ranNowhere = err instanceof NoRespondersError;
      // Another try only with time for an answer; otherwise "not run" would turn into "unknown".
      if (ranNowhere && Date.now() + pause + MIN_TRY_MS < deadline) {
        await new Promise((r) => setTimeout(r, pause));
        continue;
      }
      if (ranNowhere || request.op === 'state') throw new PartitionUnavailableError(partition, { cause: err });
      log.warn({ err, partition, commandId: request.command.commandId }, 'forwarded command got no answer; its outcome is unknown');
      throw new OutcomeUnknownError(partition, { cause: err });
    }
    const reply = msg.json<Reply<T>>();
    if (reply.ok) return reply.value;
    if (reply.moved && Date.now() + pause + MIN_TRY_MS < deadline) {
      await new Promise((r) => setTimeout(r, pause));
      continue;
    }
    throw errorFromWire(reply);
  }
}

/**
 * Sends commands to their owners from a process that owns no partition (the projector,
 * whose reactions send commands): every command goes over NATS to the worker holding its
 * partition, as a worker forwards one it does not own.
 */
export function createForwarder(opts: { readonly link: NatsLink; readonly partitions: number; readonly timeoutMs: number; readonly log: Logger }) {
  return (command: CommandEnvelope): Promise<CommandResult> => {
    if (!opts.link.isConnected()) return Promise.reject(new EventStoreUnavailableError());
    const partition = partitionOf(command.aggregate, command.id, opts.partitions);
    return sendToOwner<CommandResult>(opts.link, opts.log, partition, { op: 'command', command }, opts.timeoutMs);
  };
}

const commandAttributes = (command: CommandEnvelope) => ({
  'converge.aggregate': command.aggregate,
  'converge.id': command.id,
  'converge.command': command.type,
  'converge.command_id': command.commandId,
});
