import { randomUUID } from 'node:crypto';
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  StorageType,
  type JsMsg,
  type OrderedConsumerOptions,
  type StreamInfo,
} from '@nats-io/jetstream';
import { SpanKind } from '@opentelemetry/api';
import type { NatsConnection } from '@nats-io/transport-node';
import { EventStoreUnavailableError, WrongExpectedPositionError } from '../core/errors.js';
import {
  passedOver,
  StoreChangedError,
  type Commit,
  type CommitSubscription,
  type Delivered,
  type EventStore,
  type StoreIdentity,
  type StoredCommit,
} from '../core/eventStore.js';
import type { Logger } from 'pino';
import type { NatsLink } from '../nats/connection.js';
import { publishAcked, PublishRefusedError } from '../nats/requests.js';
import type { Tracing } from '../observe/tracing.js';

/** The stream that holds every commit. */
export const EVENTS = 'EVENTS';

/** Subject of an aggregate's commits. */
export function eventSubject(aggregate: string, id: string): string {
  return `events.${aggregate}.${id}`;
}

/** How converge marks the `EVENTS` stream with its id, in the stream's description. */
const STREAM_ID_PREFIX = 'converge event store ';

/**
 * The id converge gave this incarnation of `EVENTS`, kept in the stream's description.
 * Not the stream's `created` time: nats-server 2.9.10 gives a restored stream its restart
 * time in memory, and a later stream update writes that to disk, so after a kill -9 and
 * an update `created` changes for the same, intact stream (see docs/architecture.md).
 */
export function streamIdOf(info: Pick<StreamInfo, 'config'>): string | undefined {
  const description = info.config.description ?? '';
  return description.startsWith(STREAM_ID_PREFIX) ? description.slice(STREAM_ID_PREFIX.length) : undefined;
}

/**
 * Creates the `EVENTS` stream, or brings its settings up to date; safe to call from
 * every worker. Answers the stream's id (see `streamIdOf`), which names this incarnation
 * of it: a new stream gets a random one. A stream that has none yet (made by hand) is
 * given its creation time as it reads now, which every process adopting it at once reads
 * alike. The stream is updated only when a setting differs, since every update rewrites
 * its metadata file. `replicas` is its number of copies on a NATS cluster; a stream with
 * another number is scaled to it.
 */
export async function ensureEventStream(link: NatsLink, duplicateWindowMs: number, replicas = 1): Promise<string> {
  const settings = {
    name: EVENTS,
    subjects: ['events.>'],
    storage: StorageType.File,
    duplicate_window: duplicateWindowMs * 1_000_000,
    allow_direct: true,
    num_replicas: replicas,
  };
  let info: StreamInfo;
  try {
    info = await link.jsm.streams.info(EVENTS);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
    try {
      return streamIdOf(await link.jsm.streams.add({ ...settings, description: `${STREAM_ID_PREFIX}${randomUUID()}` }))!;
    } catch (addErr) {
      // Another process created it between our info and add.
      info = await link.jsm.streams.info(EVENTS).catch(() => Promise.reject(addErr));
    }
  }
  const id = streamIdOf(info) ?? info.created;
  const wanted = { ...settings, description: `${STREAM_ID_PREFIX}${id}` };
  const current = info.config;
  const differs =
    current.description !== wanted.description ||
    current.duplicate_window !== wanted.duplicate_window ||
    current.allow_direct !== wanted.allow_direct ||
    (current.num_replicas || 1) !== wanted.num_replicas ||
    current.subjects.join() !== wanted.subjects.join();
  if (differs) info = await link.jsm.streams.update(EVENTS, { ...current, ...wanted });
  return streamIdOf(info) ?? id;
}

/**
 * Whether a nats-server enforces an append's expected sequence on a replicated stream when
 * appends race: before 2.9.21 two concurrent appends with the same expected sequence can
 * both be stored (nats-server#4320; reproduced here on 2.9.10, see docs/architecture.md,
 * "Verified facts"), and converge's optimistic concurrency rests on that check.
 */
export function replicatedAppendsAreSafe(serverVersion: string): boolean {
  const [major = 0, minor = 0, patch = 0] = serverVersion.split(/[.-]/).map((n) => Number.parseInt(n, 10) || 0);
  return major > 2 || (major === 2 && (minor > 9 || (minor === 9 && patch >= 21)));
}

/**
 * Whether appends to `EVENTS` must be fenced by their expected position (see
 * `appendMsgId`): the stream has more than one copy and the server is older than 2.9.21.
 */
export async function appendsNeedFence(link: NatsLink): Promise<boolean> {
  const info = await link.jsm.streams.info(EVENTS);
  return (info.config.num_replicas || 1) > 1 && !replicatedAppendsAreSafe(link.nc.info?.version ?? '0.0.0');
}

/**
 * An append's message id. Normally the command's (`<aggregate>.<id>.<commandId>`, scoped so
 * one client key cannot collide across aggregates): a retried command within the duplicate
 * window gets the original ack. Fenced, it is the aggregate and the expected position
 * (`<aggregate>.<id>@<position>`): every append racing for one position carries the same id,
 * and JetStream's duplicate check, unlike its expected-sequence check before 2.9.21, holds
 * for racing appends on a replicated stream, so one of them is stored (docs/architecture.md,
 * "Verified facts"). A retry then finds its original by the command id of the commit it
 * collided with.
 */
export function appendMsgId(commit: Pick<Commit, 'aggregate' | 'id' | 'commandId'>, expectedPosition: number, fenced: boolean): string {
  return fenced ? `${commit.aggregate}.${commit.id}@${expectedPosition}` : `${commit.aggregate}.${commit.id}.${commit.commandId}`;
}

/**
 * Waits for the `EVENTS` stream that command hosts create, and answers its id (see
 * `streamIdOf`); for a read replica, which follows a store and never makes one. Asks again
 * every second, and says once that it is waiting.
 */
export async function awaitEventStream(link: NatsLink, log: Logger): Promise<string> {
  for (let waited = false; ; waited = true) {
    try {
      const info = await link.jsm.streams.info(EVENTS);
      return streamIdOf(info) ?? info.created;
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
      if (!waited) log.warn(`no ${EVENTS} stream on NATS yet: a read replica waits for a command host to create it`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * The identity of the store behind a stream info and the server a client is connected to
 * (see docs/architecture.md, "Views belong to one event store"). `server` is the NATS
 * cluster's name, or a single server's name when the operator gave it one. A single server
 * started without a name reports its server id as its name, and that id is generated
 * afresh at every start, so it would make every restart look like a new store: it is left
 * out then. A stream converge has not marked yet is named by its creation time.
 */
export function storeIdentityOf(
  info: Pick<StreamInfo, 'config' | 'created'>,
  server: Pick<NonNullable<NatsConnection['info']>, 'server_id' | 'server_name' | 'cluster'>,
): StoreIdentity {
  const stream = streamIdOf(info) ?? info.created;
  const name = server.cluster ?? (server.server_name && server.server_name !== server.server_id ? server.server_name : undefined);
  return name === undefined ? { stream } : { stream, server: name };
}

/**
 * Opens the event store on `EVENTS` over a NATS link; the stream must exist (see
 * `ensureEventStream`). With `tracing`, appends carry `traceparent` and delivered commits
 * bring theirs back (see docs/architecture.md, "Metrics and traces").
 */
export function createJetStreamEventStore(link: NatsLink, opts: { publishTimeoutMs: number; tracing?: Tracing; fenced?: boolean }): EventStore {
  const { tracing } = opts;
  const unavailable = (err: unknown) =>
    err instanceof EventStoreUnavailableError ? err : new EventStoreUnavailableError(undefined, { cause: err });
  const guard = () => {
    if (!link.isConnected()) throw new EventStoreUnavailableError();
  };

  async function lastPosition(aggregate: string, id: string): Promise<number> {
    guard();
    try {
      const msg = await link.jsm.streams.getMessage(EVENTS, { last_by_subj: eventSubject(aggregate, id) });
      return msg?.seq ?? 0;
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * One aggregate's commits from where `start` says, up to its last commit when the read
   * began; none unless that last commit is one `start` reaches (`reaches`), since the
   * consumer would otherwise wait for it forever.
   */
  async function* readFrom(
    aggregate: string,
    id: string,
    start: Partial<OrderedConsumerOptions>,
    reaches: (last: { seq: number; time: Date }) => boolean,
  ): AsyncIterable<StoredCommit> {
    guard();
    const subject = eventSubject(aggregate, id);
    let lastMsg;
    try {
      lastMsg = await link.jsm.streams.getMessage(EVENTS, { last_by_subj: subject });
    } catch (err) {
      throw unavailable(err);
    }
    if (!lastMsg || !reaches(lastMsg)) return;
    const last = lastMsg.seq;
    let from = start;
    // A short aggregate is read a message at a time: a few direct gets cost less than a consumer.
    if (start.opt_start_seq !== undefined && lastMsg.json<Commit>().version <= DIRECT_READ_MAX) {
      let seq = start.opt_start_seq;
      while (seq <= last) {
        let m;
        try {
          m = seq === last ? lastMsg : await link.jsm.direct.getMessage(EVENTS, { seq, next_by_subj: subject });
        } catch (err) {
          throw unavailable(err);
        }
        // A direct get may be answered by a replica that has not caught up with the leader,
        // which told us `last`: it has none of the rest yet, so the leader's consumer reads it.
        if (!m) break;
        if (m.seq > last) return;
        yield { ...m.json<Commit>(), position: m.seq };
        seq = m.seq + 1;
      }
      if (seq > last) return;
      from = { ...start, opt_start_seq: seq };
    }
    let consumer;
    let messages;
    try {
      consumer = await link.js.consumers.get(EVENTS, { filter_subjects: subject, ...from });
      messages = await consumer.consume({ max_messages: 1000 });
    } catch (err) {
      throw unavailable(err);
    }
    try {
      for await (const m of messages) {
        yield decodeCommit(m);
        if (m.seq >= last) break;
      }
    } finally {
      await messages.close().catch(() => undefined);
      // An ordered consumer outlives its reader by minutes on the server unless deleted.
      await consumer.delete().catch(() => undefined);
    }
  }

  async function info(): Promise<StreamInfo> {
    guard();
    try {
      return await link.jsm.streams.info(EVENTS);
    } catch (err) {
      throw unavailable(err);
    }
  }

  const store = {
    async append(commit: Commit, expectedPosition: number) {
      guard();
      const subject = eventSubject(commit.aggregate, commit.id);
      let ack: { seq: number; duplicate: boolean };
      try {
        ack = await publishAcked(link.requests, subject, JSON.stringify(commit), {
          msgId: appendMsgId(commit, expectedPosition, opts.fenced === true),
          expectedLastSubjectSequence: expectedPosition,
          timeoutMs: opts.publishTimeoutMs,
        });
      } catch (err) {
        if (err instanceof PublishRefusedError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
          throw new WrongExpectedPositionError(subject, expectedPosition, { cause: err });
        }
        throw unavailable(err);
      }
      return { position: ack.seq, duplicate: ack.duplicate };
    },

    read: (aggregate, id, afterPosition) =>
      readFrom(aggregate, id, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterPosition + 1 }, (last) => last.seq > afterPosition),
    readSince: (aggregate, id, sinceMs) =>
      readFrom(aggregate, id, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(sinceMs).toISOString() }, (last) => last.time.getTime() >= sinceMs),

    lastPosition,

    async commitAt(position) {
      guard();
      try {
        const msg = await link.jsm.streams.getMessage(EVENTS, { seq: position });
        return msg ? { ...msg.json<Commit>(), position: msg.seq, storedAt: msg.time.getTime() } : undefined;
      } catch (err) {
        throw unavailable(err);
      }
    },

    async head() {
      const i = await info();
      return { identity: storeIdentityOf(i, link.nc.info!), lastPosition: i.state.last_seq, firstPosition: i.state.first_seq };
    },

    async subscribe(afterPosition, { batchSize, stream, only }) {
      if (stream !== undefined) {
        const id = streamIdOf(await info());
        if (id !== undefined && id !== stream) throw new StoreChangedError(id, stream);
      }
      // An ordered consumer: no server-side state, recreated from a checkpoint after any failure.
      const consumer = await link.js.consumers.get(EVENTS, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterPosition + 1 });
      const messages = await consumer.consume({ max_messages: batchSize });
      // An ordered consumer outlives its reader by minutes on the server unless deleted.
      const close = () => void messages.close().then(() => consumer.delete()).catch(() => undefined);
      return {
        async *[Symbol.asyncIterator](): AsyncIterator<Delivered> {
          for await (const m of messages) {
            const commit = only ? decodeIf(m, only) : decodeCommit(m);
            yield { commit, storedAt: Math.floor(m.info.timestampNanos / 1e6), head: m.seq + m.info.pending };
          }
        },
        close,
      } satisfies CommitSubscription;
    },

    isAvailable: () => link.isConnected(),
    onReconnect: (listener: () => void) => link.onReconnect(listener),
  } satisfies EventStore;
  return tracing ? { ...store, append: tracedAppend(tracing, store.append) } : store;
}

/**
 * An append under an `append` span, a child of the span its command ran under (the commit's
 * `metadata.traceparent` as the actor set it), whose own context the stored commit carries
 * in its metadata to the projector and the notifier.
 */
function tracedAppend(tracing: Tracing, append: (commit: Commit, expectedPosition: number) => ReturnType<EventStore['append']>): EventStore['append'] {
  return async (commit, expectedPosition) => {
    const parent = tracing.extract(commit.metadata?.traceparent);
    const span = tracing.start(`append ${commit.commandType}`, parent, { 'converge.subject': eventSubject(commit.aggregate, commit.id), 'converge.expected_position': expectedPosition }, SpanKind.PRODUCER);
    const traceparent = tracing.traceparentOf(span);
    const traced = commit.metadata && traceparent !== undefined ? { ...commit, metadata: { ...commit.metadata, traceparent } } : commit;
    try {
      const ack = await append(traced, expectedPosition);
      span.setAttributes({ 'converge.position': ack.position, 'converge.duplicate': ack.duplicate });
      tracing.end(span);
      return ack;
    } catch (err) {
      tracing.end(span, err);
      throw err;
    }
  };
}

function decodeCommit(m: JsMsg): StoredCommit {
  return { ...m.json<Commit>(), position: m.seq };
}

/** The longest aggregate (in events) read with direct gets rather than a consumer. */
const DIRECT_READ_MAX = 32;

/** The commit if its aggregate (the subject's second token) is among `only`; else its place alone, undecoded. */
function decodeIf(m: JsMsg, only: ReadonlySet<string>): StoredCommit {
  const [, aggregate = '', id = ''] = m.subject.split('.');
  return only.has(aggregate) ? decodeCommit(m) : passedOver(aggregate, id, m.seq);
}
