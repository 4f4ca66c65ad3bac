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
import { ownerOf, partitionOf } from '../core/partition.js';
import type { NatsLink } from '../nats/connection.js';
import { NoRespondersError } from '../nats/requests.js';
import type { CommandEnvelope, CommandResult, StateView } from './execute.js';
import type { ActorHost } from './host.js';

/** Sends commands and state reads to the worker that owns their aggregate. */
export interface CommandRouter {
  dispatch(command: CommandEnvelope): Promise<CommandResult>;
  readState(ref: AggregateRef): Promise<StateView>;
  /** Starts answering for this worker's partitions. */
  start(): void;
  /** Stops answering; requests already received are still answered. */
  stop(): Promise<void>;
}

export interface RouterOptions {
  readonly link: NatsLink;
  readonly host: ActorHost;
  readonly partitions: number;
  readonly workers: number;
  readonly workerIndex: number;
  readonly timeoutMs: number;
  readonly log: Logger;
}

type Request = { op: 'command'; command: CommandEnvelope } | { op: 'state'; aggregate: string; id: string };
type Reply<T> = { ok: true; value: T } | ({ ok: false } & WireError);

/** Subject a partition's owner listens on. */
export function commandSubject(partition: number): string {
  return `converge.cmd.${partition}`;
}

/**
 * Routes by partition: the owner runs the request on its own actor host;
 * anyone else forwards it to the owner over NATS request-reply.
 */
export function createCommandRouter(opts: RouterOptions): CommandRouter {
  const { link, host, partitions, workers, workerIndex, log } = opts;
  const subscriptions: Subscription[] = [];
  const ownsPartition = (p: number) => ownerOf(p, workers) === workerIndex;

  async function forward<T>(partition: number, request: Request): Promise<T> {
    if (!link.isConnected()) throw new EventStoreUnavailableError();
    let msg: Msg;
    try {
      msg = await link.requests.request(commandSubject(partition), JSON.stringify(request), { timeoutMs: opts.timeoutMs });
    } catch (err) {
      // "No responders" comes from the server: nobody subscribes to the partition, so the
      // request ran nowhere. Any other failure (a timeout, a dropped connection) may have
      // come after the owner took it, and the owner may have committed the command. A state
      // read changes nothing, so it is safe to retry whatever failed it.
      const ranNowhere = err instanceof NoRespondersError;
      if (ranNowhere || request.op === 'state') throw new PartitionUnavailableError(partition, { cause: err });
      log.warn({ err, partition, commandId: request.command.commandId }, 'forwarded command got no answer; its outcome is unknown');
      throw new OutcomeUnknownError(partition, { cause: err });
    }
    const reply = msg.json<Reply<T>>();
    if (reply.ok) return reply.value;
    throw errorFromWire(reply);
  }

  async function answer(msg: Msg): Promise<void> {
    let reply: Reply<unknown>;
    try {
      const request = msg.json<Request>();
      const value =
        request.op === 'command' ? await host.execute(request.command, readState) : await host.readState(request.aggregate, request.id);
      reply = { ok: true, value };
    } catch (err) {
      if (!(err instanceof ConvergeError)) log.error({ err }, 'forwarded request failed');
      reply = { ok: false, ...errorToWire(err) };
    }
    msg.respond(JSON.stringify(reply));
  }

  function readState({ aggregate, id }: AggregateRef): Promise<StateView> {
    const p = partitionOf(aggregate, id, partitions);
    return ownsPartition(p) ? host.readState(aggregate, id) : forward(p, { op: 'state', aggregate, id });
  }

  return {
    dispatch(command) {
      const p = partitionOf(command.aggregate, command.id, partitions);
      // The command's own reads of other aggregates go through this router too, wherever their owners are.
      return ownsPartition(p) ? host.execute(command, readState) : forward(p, { op: 'command', command });
    },
    readState,
    start() {
      for (let p = 0; p < partitions; p++) {
        if (!ownsPartition(p)) continue;
        subscriptions.push(link.nc.subscribe(commandSubject(p), { queue: 'converge', callback: (_err, msg) => void answer(msg) }));
      }
    },
    async stop() {
      await Promise.all(subscriptions.splice(0).map((s) => s.drain().catch(() => undefined)));
    },
  };
}
