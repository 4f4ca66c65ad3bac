import type { Logger } from 'pino';
import type { StoredCommit } from '../core/eventStore.js';
import { isProcessStream } from '../core/reactions.js';
import { SpanKind } from '@opentelemetry/api';
import { headers, type MsgHdrs } from '@nats-io/transport-node';
import type { NatsLink } from '../nats/connection.js';
import { publishAcked } from '../nats/requests.js';
import type { Tracing } from '../observe/tracing.js';
import { superviseFeed, type FeedHealth, type PipelineOptions } from '../read/feed.js';
import { NOTIFIER_CHECKPOINT } from '../read/storeIdentity.js';
import type { ViewStore } from '../read/viewStore.js';

/** The stream of zero-payload notices: the latest per aggregate. */
export const NOTIFY = 'NOTIFY';
/** Notices re-published for one subscribing system only: `replay.<subscriber>.<aggregate>.<id>`. */
export const REPLAY = 'REPLAY';

/** A zero-payload notice: what changed, never the data (see docs/architecture.md, "Notices"). */
export interface Notice {
  readonly aggregate: string;
  readonly id: string;
  readonly version: number;
  readonly position: number;
  readonly at: string;
}

/** Subject of an aggregate's notices. */
export function noticeSubject(aggregate: string, id: string): string {
  return `notify.${aggregate}.${id}`;
}

/** How the notice streams are kept. */
export interface NoticeStreamOptions {
  /** How long JetStream drops a re-sent notice (its `Nats-Msg-Id`); at most `maxAgeMs`. */
  readonly duplicateWindowMs: number;
  /** How long a notice is kept. A subscriber away longer catches up through the changed-since import. */
  readonly maxAgeMs: number;
  readonly replicas?: number;
}

/**
 * Creates `NOTIFY` (latest notice per aggregate) and `REPLAY` with `replicas` copies, or
 * brings their settings up to date. Notices expire after `maxAgeMs`, so that an aggregate
 * unchanged for that long holds no subject in `NOTIFY` (docs/architecture.md, "Notices").
 */
export async function ensureNoticeStreams(link: NatsLink, opts: NoticeStreamOptions): Promise<void> {
  const ns = (ms: number) => ms * 1_000_000;
  const common = {
    storage: 'file' as const,
    max_msgs_per_subject: 1,
    max_age: ns(opts.maxAgeMs),
    // JetStream refuses a duplicate window longer than the streams' maximum age.
    duplicate_window: ns(Math.min(opts.duplicateWindowMs, opts.maxAgeMs)),
    num_replicas: opts.replicas ?? 1,
  };
  for (const config of [
    { name: NOTIFY, subjects: ['notify.>'], ...common },
    { name: REPLAY, subjects: ['replay.>'], ...common },
  ]) {
    const exists = await link.jsm.streams.info(config.name).then(() => true, () => false);
    if (exists) await link.jsm.streams.update(config.name, config);
    else await link.jsm.streams.add(config).catch(async (err: unknown) => {
      // Another process may have created it meanwhile.
      if (!(await link.jsm.streams.info(config.name).then(() => true, () => false))) throw err;
    });
  }
}

/** The notifier: follows `EVENTS` from its own checkpoint and publishes a notice per changed aggregate. */
export interface Notifier {
  /** The last position whose notice is acknowledged by `NOTIFY`. */
  position(): number;
  health(): FeedHealth;
  /** Tells it the stream's last position, to detect a stalled consumer. */
  check(streamLast: number): void;
  /** Recreates its consumer now (after a reconnect). */
  restart(): void;
  stop(): void;
}

/**
 * Starts the notifier. Notices are derived from `EVENTS`, not from the command path, so
 * a process dying between append and notify loses none: a batch's notices are published
 * and acknowledged before its checkpoint moves (at least once), and a re-sent notice
 * carries the same `Nats-Msg-Id` (its position), so JetStream drops the duplicate.
 * Within a batch only the latest commit of each aggregate is announced; `NOTIFY` keeps
 * only the latest per aggregate anyway. A commit older than `maxAgeMs` is not announced.
 * Only the aggregates in `only` are announced (the app's); process instance streams never
 * are.
 */
export function startNotifier(
  opts: PipelineOptions & {
    /** Where the notices go: `NOTIFY` on this NATS connection. */
    link: NatsLink;
    views: ViewStore;
    log: Logger;
    stallMs: number;
    maxBackoffMs: number;
    /** How long a notice's publish waits for `NOTIFY`'s ack. */
    publishTimeoutMs: number;
    onStreamChanged?: (reason: string) => void;
    /** A `notify` span per notice whose commit carries a trace context, and `traceparent` in the notice's headers. */
    tracing?: Tracing;
    /** How long `NOTIFY` keeps a notice (`notices.maxAgeMs`): a commit older than that is not announced. */
    maxAgeMs?: number;
    /** The runtime's clock, for that age. */
    now?: () => number;
  },
): Notifier {
  const { link, views, tracing } = opts;
  const send = (subject: string, c: StoredCommit, notice: Notice) => {
    const parent = tracing?.extract(c.metadata?.traceparent);
    const publishNotice = (h?: MsgHdrs) =>
      publishAcked(link.requests, subject, JSON.stringify(notice), { msgId: `notice.${c.position}`, timeoutMs: opts.publishTimeoutMs, ...(h ? { headers: h } : {}) });
    if (!tracing || !parent) return publishNotice();
    const span = tracing.start(`notify ${c.aggregate}`, parent, { 'converge.subject': subject, 'converge.position': c.position }, SpanKind.PRODUCER);
    const h = headers();
    tracing.inject(tracing.contextOf(span), h);
    return publishNotice(h).then(
      (ack) => (tracing.end(span), ack),
      (err: unknown) => {
        tracing.end(span, err);
        throw err;
      },
    );
  };
  const publish = async (batch: StoredCommit[]) => {
    const latest = new Map<string, StoredCommit>();
    // A notice older than `NOTIFY` keeps one would be gone at once: a notifier that starts over
    // (its views lost) does not announce again what is long past, archived aggregates among them.
    const oldest = opts.maxAgeMs === undefined ? -Infinity : (opts.now ?? Date.now)() - opts.maxAgeMs;
    for (const commit of batch) {
      // Only the app's aggregates are announced: a process's instance streams are converge's own.
      if (isProcessStream(commit.aggregate) || (opts.only && !opts.only.has(commit.aggregate))) continue;
      if (Date.parse(commit.events[0]?.at ?? '') < oldest) continue;
      latest.set(noticeSubject(commit.aggregate, commit.id), commit);
    }
    await Promise.all(
      [...latest].map(([subject, c]) => {
        const notice: Notice = { aggregate: c.aggregate, id: c.id, version: c.version, position: c.position, at: c.events[0]?.at ?? '' };
        return send(subject, c, notice);
      }),
    ).catch((err: unknown) => {
      // A refusal for full storage is what `converge status` and readiness report.
      link.writes.note(err);
      throw err;
    });
    if (latest.size > 0) link.writes.accepted();
    views.transaction(() => views.setCheckpoint(NOTIFIER_CHECKPOINT, 0, batch[batch.length - 1]!.position));
  };
  const feed = superviseFeed({
    ...opts,
    // A notice carries no data: personal fields are not opened for it.
    sealed: true,
    name: 'notifier',
    from: () => views.checkpoint(NOTIFIER_CHECKPOINT, 0),
    apply: publish,
    // Its batches fail when NATS is away; it comes back with the server, so no long backoff.
    maxBackoffMs: Math.min(opts.maxBackoffMs, 2000),
  });
  return {
    position: () => views.checkpoint(NOTIFIER_CHECKPOINT, 0),
    health: () => feed.health(),
    check: (streamLast) => feed.check(streamLast),
    restart: () => feed.restart(),
    stop: () => feed.stop(),
  };
}
