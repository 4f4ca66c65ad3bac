import { randomUUID } from 'node:crypto';
import { DeliverPolicy, JetStreamApiError, JetStreamApiCodes, StorageType, type PubAck, type JsMsg, type StreamInfo } from '@nats-io/jetstream';
import type { StoredEvent } from './aggregate.js';
import { EventStoreUnavailableError, WrongExpectedPositionError } from './errors.js';
import type { NatsLink } from './natsConnection.js';

/** The stream that holds every commit. */
export const EVENTS = 'EVENTS';

/** One commit: the events of one command, appended atomically as one message. */
export interface Commit {
  readonly commandId: string;
  /** The command type name that produced the commit, e.g. `ChangeMenuPrice`. */
  readonly commandType: string;
  readonly aggregate: string;
  readonly id: string;
  /** The aggregate's event count after this commit. */
  readonly version: number;
  readonly events: readonly StoredEvent[];
}

/** A commit as read back, with its stream sequence: the global consistency token. */
export interface StoredCommit extends Commit {
  readonly position: number;
}

/** What an append answers. `duplicate`: the command id was seen; `position` is the original's. */
export interface AppendResult {
  readonly position: number;
  readonly duplicate: boolean;
}

/** The event store on JetStream (DESIGN §4). */
export interface EventStore {
  /**
   * Appends a commit to `events.<aggregate>.<id>` if the subject's last position is
   * still `expectedPosition` (0 for a new aggregate). Throws
   * `WrongExpectedPositionError` when another writer got there first.
   */
  append(commit: Commit, expectedPosition: number): Promise<AppendResult>;
  /** The commits of one aggregate after `afterPosition`, oldest first. */
  read(aggregate: string, id: string, afterPosition: number): AsyncIterable<StoredCommit>;
  /** The position of the aggregate's last commit; 0 when it has none. */
  lastPosition(aggregate: string, id: string): Promise<number>;
  /** The commit at a stream position, if there is one. */
  commitAt(position: number): Promise<StoredCommit | undefined>;
}

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
 * its metadata file.
 */
export async function ensureEventStream(link: NatsLink, duplicateWindowMs: number): Promise<string> {
  const settings = {
    name: EVENTS,
    subjects: ['events.>'],
    storage: StorageType.File,
    duplicate_window: duplicateWindowMs * 1_000_000,
    allow_direct: true,
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
    current.subjects.join() !== wanted.subjects.join();
  if (differs) info = await link.jsm.streams.update(EVENTS, { ...current, ...wanted });
  return streamIdOf(info) ?? id;
}

/** Opens the event store over a NATS link; the stream must exist (see `ensureEventStream`). */
export function createEventStore(link: NatsLink, opts: { publishTimeoutMs: number }): EventStore {
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

  return {
    async append(commit, expectedPosition) {
      guard();
      const subject = eventSubject(commit.aggregate, commit.id);
      let ack: PubAck;
      try {
        ack = await link.js.publish(subject, JSON.stringify(commit), {
          // Scoped by aggregate so one client key cannot collide across aggregates.
          msgID: `${commit.aggregate}.${commit.id}.${commit.commandId}`,
          expect: { lastSubjectSequence: expectedPosition },
          timeout: opts.publishTimeoutMs,
        });
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
          throw new WrongExpectedPositionError(subject, expectedPosition, { cause: err });
        }
        throw unavailable(err);
      }
      return { position: ack.seq, duplicate: ack.duplicate };
    },

    async *read(aggregate, id, afterPosition) {
      const last = await lastPosition(aggregate, id);
      if (last <= afterPosition) return;
      let messages;
      try {
        const consumer = await link.js.consumers.get(EVENTS, {
          filter_subjects: eventSubject(aggregate, id),
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: afterPosition + 1,
        });
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
      }
    },

    lastPosition,

    async commitAt(position) {
      guard();
      try {
        const msg = await link.jsm.streams.getMessage(EVENTS, { seq: position });
        return msg ? { ...(msg.json<Commit>()), position: msg.seq } : undefined;
      } catch (err) {
        throw unavailable(err);
      }
    },
  };
}

function decodeCommit(m: JsMsg): StoredCommit {
  return { ...(m.json<Commit>()), position: m.seq };
}
