import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JsMsg,
  type OrderedConsumerOptions,
  type StreamInfo,
} from '@nats-io/jetstream';
import { SpanKind } from '@opentelemetry/api';
import type { ArchivableStore, ArchivedCommit } from '../core/archive.js';
import { EventStoreFullError, EventStoreUnavailableError, WrongExpectedPositionError } from '../core/errors.js';
import {
  passedOver,
  StoreChangedError,
  type Commit,
  type CommitSubscription,
  type Delivered,
  type EventStore,
  type StoredCommit,
} from '../core/eventStore.js';
import type { NatsLink } from '../nats/connection.js';
import { getStreamMessage, publishAcked, PublishRefusedError } from '../nats/requests.js';
import type { Tracing } from '../observe/tracing.js';
import { appendMsgId, decodeStoredCommit, encodeCommit, EVENTS, eventSubject, storeIdentityOf, streamIdOf } from './eventStream.js';

/**
 * Opens the event store on `EVENTS` over a NATS link; the stream must exist (see
 * `ensureEventStream`). With `tracing`, appends carry `traceparent` and delivered commits
 * bring theirs back (see docs/architecture.md, "Metrics and traces").
 */
export function createJetStreamEventStore(link: NatsLink, opts: { publishTimeoutMs: number; tracing?: Tracing; fenced?: boolean }): ArchivableStore {
  const { tracing } = opts;
  const unavailable = (err: unknown) =>
    err instanceof EventStoreUnavailableError ? err : new EventStoreUnavailableError(undefined, { cause: err });
  const guard = () => {
    if (!link.isConnected()) throw new EventStoreUnavailableError();
  };

  async function lastPosition(aggregate: string, id: string): Promise<number> {
    guard();
    try {
      const msg = await getStreamMessage(link.requests, EVENTS, { last_by_subj: eventSubject(aggregate, id) }, link.requestTimeoutMs);
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
    timed = false,
  ): AsyncIterable<StoredCommit & { storedAt?: number }> {
    guard();
    const subject = eventSubject(aggregate, id);
    let lastMsg;
    try {
      lastMsg = await getStreamMessage(link.requests, EVENTS, { last_by_subj: subject }, link.requestTimeoutMs);
    } catch (err) {
      throw unavailable(err);
    }
    if (!lastMsg || !reaches(lastMsg)) return;
    const last = lastMsg.seq;
    let from = start;
    // A short aggregate is read a message at a time: a few direct gets cost less than a consumer.
    if (start.opt_start_seq !== undefined && decodeStoredCommit<Commit>(lastMsg).version <= DIRECT_READ_MAX) {
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
        const commit = decodeStoredCommit<Commit>(m);
        yield timed ? { ...commit, position: m.seq, storedAt: m.time.getTime() } : { ...commit, position: m.seq };
        seq = m.seq + 1;
      }
      if (seq > last) return;
      from = { ...start, opt_start_seq: seq };
    }
    // Pulls sized by the last commit's bytes (a fetch bounded by bytes fails on the message
    // that does not fit): up to READ_PULL_MAX commits, or 256 of the archive's records.
    const perPull = Math.max(1, Math.min(READ_PULL_MAX, Math.floor(PULL_MAX_BYTES / Math.max(1, lastMsg.data.length))));
    let consumer;
    try {
      consumer = await link.js.consumers.get(EVENTS, { filter_subjects: subject, ...from });
    } catch (err) {
      throw unavailable(err);
    }
    let seen = 0;
    try {
      for (;;) {
        let got = 0;
        let batch;
        try {
          batch = await consumer.fetch({ max_messages: perPull, expires: READ_WAIT_MS });
        } catch (err) {
          throw unavailable(err);
        }
        for await (const m of batch) {
          got++;
          if (m.seq > last) return;
          seen = m.seq;
          yield timed ? { ...decodeCommit(m), storedAt: Math.floor(m.info.timestampNanos / 1e6) } : decodeCommit(m);
          if (m.seq >= last) return;
        }
        // Nothing came: the archiver may have removed the rest since the read began
        // (docs/architecture.md, "Archive"); then there is nothing more to wait for.
        if (got === 0) {
          const now = await getStreamMessage(link.requests, EVENTS, { last_by_subj: subject }, link.requestTimeoutMs).catch((err: unknown) => {
            throw unavailable(err);
          });
          if (!now || now.seq <= seen) return;
        }
      }
    } finally {
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
        ack = await publishAcked(link.requests, subject, encodeCommit(commit), {
          msgId: appendMsgId(commit, expectedPosition, opts.fenced === true),
          expectedLastSubjectSequence: expectedPosition,
          timeoutMs: opts.publishTimeoutMs,
        });
      } catch (err) {
        if (err instanceof PublishRefusedError && err.code === JetStreamApiCodes.StreamWrongLastSequence) {
          throw new WrongExpectedPositionError(subject, expectedPosition, { cause: err });
        }
        if (link.writes.note(err)) throw new EventStoreFullError(link.writes.refused()!.reason, { cause: err });
        throw unavailable(err);
      }
      link.writes.accepted();
      return { position: ack.seq, duplicate: ack.duplicate };
    },

    read: (aggregate, id, afterPosition) =>
      readFrom(aggregate, id, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterPosition + 1 }, (last) => last.seq > afterPosition),
    readSince: (aggregate, id, sinceMs) =>
      readFrom(aggregate, id, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(sinceMs).toISOString() }, (last) => last.time.getTime() >= sinceMs),

    lastPosition,

    async nextPosition(aggregate, id, afterPosition) {
      guard();
      try {
        // STREAM.MSG.GET's `next_by_subj` (nats-server 2.9): no message is an answer of a few bytes.
        const query = { seq: afterPosition + 1, next_by_subj: eventSubject(aggregate, id) };
        return (await getStreamMessage(link.requests, EVENTS, query, link.requestTimeoutMs))?.seq ?? 0;
      } catch (err) {
        throw unavailable(err);
      }
    },

    readStored: (aggregate: string, id: string) =>
      readFrom(aggregate, id, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: 1 }, () => true, true) as AsyncIterable<ArchivedCommit>,

    async remove(commits: readonly { readonly position: number; readonly aggregate: string; readonly id: string }[]) {
      guard();
      const one = async ({ position, aggregate, id }: { position: number; aggregate: string; id: string }) => {
        // Never another aggregate's message: the position is checked against its subject first.
        const found = await link.jsm.streams.getMessage(EVENTS, { seq: position }).catch((err: unknown) => {
          if (isNoMessage(err)) return null;
          throw unavailable(err);
        });
        if (!found) return;
        if (found.subject !== eventSubject(aggregate, id)) throw new EventStoreUnavailableError(`position ${position} holds ${found.subject}, not ${eventSubject(aggregate, id)}: nothing is removed there`);
        await link.jsm.streams.deleteMessage(EVENTS, position, false).catch((err: unknown) => {
          if (!isNoMessage(err)) throw unavailable(err);
        });
      };
      // A few at a time: each is a request or two of its own.
      for (let i = 0; i < commits.length; i += REMOVE_IN_FLIGHT) await Promise.all(commits.slice(i, i + REMOVE_IN_FLIGHT).map(one));
    },

    async liveAggregates() {
      return (await info()).state.num_subjects ?? 0;
    },

    async commitAt(position) {
      guard();
      try {
        const msg = await getStreamMessage(link.requests, EVENTS, { seq: position }, link.requestTimeoutMs);
        return msg ? { ...decodeStoredCommit<Commit>(msg), position: msg.seq, storedAt: msg.time.getTime() } : undefined;
      } catch (err) {
        throw unavailable(err);
      }
    },

    async head() {
      const i = await info();
      return { identity: storeIdentityOf(i, link.nc.info!), lastPosition: i.state.last_seq, firstPosition: i.state.first_seq };
    },

    async subscribe(afterPosition, { batchSize, stream, only, aggregate }) {
      if (stream !== undefined) {
        const id = streamIdOf(await info());
        if (id !== undefined && id !== stream) throw new StoreChangedError(id, stream);
      }
      // An ordered consumer: no server-side state, recreated from a checkpoint after any failure.
      const consumer = await link.js.consumers.get(EVENTS, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: afterPosition + 1,
        // A string: nats-server 2.9 takes one `filter_subject`, not a list.
        ...(aggregate === undefined ? {} : { filter_subjects: `events.${aggregate}.>` }),
      });
      // At most SUBSCRIBE_PULL messages a pull, whatever the batch: the client's pulls bounded
      // by bytes stall for two missed heartbeats (30 s) on a message larger than what is left
      // of their budget, which an archive record at the live end often is.
      const messages = await consumer.consume({ max_messages: Math.min(batchSize, SUBSCRIBE_PULL) });
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
  } satisfies ArchivableStore;
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
  // The parsed object is this call's own: adding the position costs less than a copy.
  const commit = decodeStoredCommit<Commit & { position: number }>(m);
  commit.position = m.seq;
  return commit;
}

/** How long a read of one aggregate waits for its next message before it asks whether any is left. */
const READ_WAIT_MS = 1000;

/**
 * What a read of one aggregate pulls at once, at most. A pull of 1,000 messages can weigh
 * more than nats-server buffers for a client (64 MB by default), past which it drops the
 * connection as a slow consumer: 1,000 commits of a large aggregate, or of the archive's
 * records, each up to 16 KiB.
 */
const PULL_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Commits a read of one aggregate pulls at once, at most. One pull brings a 10,000-commit
 * aggregate of small commits whole: nats-server sends it without a pause, where pulls of
 * 1,000 each waited for a round trip (a cold start read 10,000 commits in 60 ms against 80).
 */
const READ_PULL_MAX = 16_384;

/**
 * Messages a feed pulls at once, at most: 2 MB of archive records, which every feed from an
 * early position passes over. A rebuild from nothing meets the whole archive in each of its
 * feeds at once (the views, the notifier, the archive follower, forgets, and the one the
 * reactions share: five, on one connection; seven before the reactions shared theirs), and at 64 records of 128 KiB
 * nats-server still dropped it as a slow consumer five times in a rebuild across 100,000
 * archived orders. Smaller pulls cost feeds of small commits a pull request each: a fold of
 * 90,150 commits ran at 0.64 of its rate with 32, 0.94 with 128, against 500.
 */
const SUBSCRIBE_PULL = 128;

/** Messages the archiver deletes at once. */
const REMOVE_IN_FLIGHT = 16;

/** Whether JetStream answered that a message to delete is not there (deleted already). */
export function isNoMessage(err: unknown): boolean {
  // 2.9.10 answers a delete of a message that is gone with `sequence <n> not found`.
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.NoMessageFound || /no message found|sequence \d+ not found/i.test(err.message));
}

/** The longest aggregate (in events) read with direct gets rather than a consumer. */
const DIRECT_READ_MAX = 32;

/** The commit if its aggregate (the subject's second token) is among `only`; else its place alone, undecoded. */
function decodeIf(m: JsMsg, only: ReadonlySet<string>): StoredCommit {
  const [, aggregate = '', id = ''] = m.subject.split('.');
  return only.has(aggregate) ? decodeCommit(m) : passedOver(aggregate, id, m.seq);
}
