import { AckPolicy, DeliverPolicy, JetStreamApiError, JetStreamApiCodes, type ConsumerConfig, type JsMsg } from '@nats-io/jetstream';
import { ConvergeError } from '../core/errors.js';
import type { EventStore } from '../core/eventStore.js';
import type { NatsLink } from '../nats/connection.js';
import { NOTIFY, REPLAY, noticeSubject, type Notice } from './notifier.js';

/** A subscribing system as the admin API shows it. */
export interface SubscriberInfo {
  readonly name: string;
  /** Notices waiting for it in `NOTIFY`, and delivered but not yet acknowledged. */
  readonly pending: number;
  readonly ackPending: number;
  /** Re-published notices waiting for it in `REPLAY`. */
  readonly replayPending: number;
  /** The `NOTIFY` sequence it has acknowledged up to. */
  readonly ackedSequence: number;
}

/** A durable consumer made for a subscriber, as NATS reports it. */
export interface SubscriberConsumer {
  readonly stream: string;
  readonly name: string;
  /** The subjects it reads. */
  readonly filter: string;
  /** `new`: messages stored from its creation on; `all`: every message the stream holds for it, then new ones. */
  readonly deliver: string;
}

/** A subscriber just added: as the list shows it, with the consumers made for it on `NOTIFY` and `REPLAY`. */
export interface AddedSubscriber extends SubscriberInfo {
  readonly consumers: readonly SubscriberConsumer[];
}

/** What to re-publish for one subscriber. */
export type Republish =
  | { readonly since: string }
  | { readonly sincePosition: number }
  | { readonly ids: ReadonlyArray<{ readonly aggregate: string; readonly id: string }> };

/** How far before a commit's own time a position re-publish scans `NOTIFY`, for clocks that differ between hosts. */
const CLOCK_MARGIN_MS = 5_000;

function notifyConsumer(name: string, start: Partial<ConsumerConfig> = { deliver_policy: DeliverPolicy.New }): Partial<ConsumerConfig> {
  return { durable_name: name, ack_policy: AckPolicy.Explicit, filter_subject: 'notify.>', ...start };
}

const notFound = (name: string) => new ConvergeError('unknown_subscriber', `no subscriber named ${name}`);

/**
 * Subscribing systems: each is a durable consumer named after it on `NOTIFY`, with its own
 * acks, plus one on `REPLAY` filtered to `replay.<name>.>` for notices re-published for it alone.
 */
export function subscribers(link: NatsLink, store: EventStore) {
  const exists = (name: string) => link.jsm.consumers.info(NOTIFY, name).then(() => true, () => false);

  /**
   * Copies to `replay.<name>.…` every notice in `NOTIFY` stored at or after `from` whose
   * position is at least `minPosition`, up to the last notice there when it starts. An
   * ordered consumer reads them in batches; each batch is published before the next.
   */
  const copySince = async (name: string, from: Date, minPosition: number): Promise<number> => {
    const last = (await link.jsm.streams.info(NOTIFY)).state.last_seq;
    if (last === 0) return 0;
    const consumer = await link.js.consumers.get(NOTIFY, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: from.toISOString() });
    let copied = 0;
    for (;;) {
      const batch: JsMsg[] = [];
      for await (const m of await consumer.fetch({ max_messages: 500, expires: 1000 })) batch.push(m);
      const wanted = batch.filter((m) => m.seq <= last && m.json<Notice>().position >= minPosition);
      await Promise.all(wanted.map((m) => link.js.publish(`replay.${name}.${m.subject.slice('notify.'.length)}`, m.data)));
      copied += wanted.length;
      // Done at the last notice that existed when the copy began, or when nothing more comes.
      if (batch.length === 0 || batch[batch.length - 1]!.seq >= last) return copied;
    }
  };

  /** The notice of an aggregate's last commit, from the store (read through the archive); undefined when it has none. */
  const noticeFromStore = async (aggregate: string, id: string): Promise<string | undefined> => {
    const position = await store.lastPosition(aggregate, id);
    const commit = position > 0 ? await store.commitAt(position) : undefined;
    if (!commit) return undefined;
    const notice: Notice = { aggregate, id, version: commit.version, position, at: commit.events.at(-1)?.at ?? new Date(commit.storedAt).toISOString() };
    return JSON.stringify(notice);
  };

  return {
    /** Adds a subscriber that receives notices from now on (`all`: also the latest of every aggregate so far). */
    async add(name: string, from: 'new' | 'all'): Promise<AddedSubscriber> {
      if (await exists(name)) throw new ConvergeError('subscriber_exists', `a subscriber named ${name} exists`);
      const created = [
        await link.jsm.consumers.add(NOTIFY, notifyConsumer(name, { deliver_policy: from === 'all' ? DeliverPolicy.All : DeliverPolicy.New })),
        await link.jsm.consumers.add(REPLAY, { durable_name: name, ack_policy: AckPolicy.Explicit, filter_subject: `replay.${name}.>` }),
      ];
      // What NATS made, not what was asked for, so that the operator sees the consumers as they are.
      const consumers = created.map((ci) => ({ stream: ci.stream_name, name: ci.name, filter: ci.config.filter_subject ?? '>', deliver: ci.config.deliver_policy }));
      return { ...(await this.list()).find((s) => s.name === name)!, consumers };
    },

    async list(): Promise<SubscriberInfo[]> {
      const out: SubscriberInfo[] = [];
      for await (const ci of link.jsm.consumers.list(NOTIFY)) {
        const replay = await link.jsm.consumers.info(REPLAY, ci.name).catch(() => undefined);
        out.push({
          name: ci.name,
          pending: ci.num_pending,
          ackPending: ci.num_ack_pending,
          replayPending: replay ? replay.num_pending + replay.num_ack_pending : 0,
          ackedSequence: ci.ack_floor.stream_seq,
        });
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    },

    async remove(name: string): Promise<void> {
      if (!(await exists(name))) throw notFound(name);
      await link.jsm.consumers.delete(NOTIFY, name);
      await link.jsm.consumers.delete(REPLAY, name).catch(() => undefined);
    },

    /**
     * Re-publishes for one subscriber only, onto its own `REPLAY` subjects; its `NOTIFY`
     * consumer is left alone, so nothing it has not acked yet is skipped and a connected
     * subscriber is not disturbed. `since` copies the latest notice of every aggregate
     * changed at or after that time; `sincePosition` of every aggregate whose latest
     * notice is at or after that position; `ids` of the aggregates named, with a notice
     * made from the store for one `NOTIFY` no longer holds (archived, or expired). Other
     * subscribers see nothing of it.
     */
    async republish(name: string, what: Republish): Promise<{ republished: number; missing?: string[] }> {
      if (!(await exists(name))) throw notFound(name);
      if ('since' in what) return { republished: await copySince(name, new Date(Date.parse(what.since)), 0) };
      if ('sincePosition' in what) {
        const commit = await store.commitAt(what.sincePosition);
        if (!commit) throw new ConvergeError('position_not_found', `no commit at position ${what.sincePosition}`);
        // NOTIFY is scanned from a little before the commit's time; the position in each notice decides.
        const start = new Date(Date.parse(commit.events[0]?.at ?? '') - CLOCK_MARGIN_MS);
        return { republished: await copySince(name, start, what.sincePosition) };
      }
      const missing: string[] = [];
      let republished = 0;
      for (const { aggregate, id } of what.ids) {
        const last = await link.jsm.streams.getMessage(NOTIFY, { last_by_subj: noticeSubject(aggregate, id) }).catch((err: unknown) => {
          if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound) return null;
          throw err;
        });
        // Archived, or older than notices.maxAgeMs: the notice is made again from the store.
        const notice = last ? last.data : await noticeFromStore(aggregate, id);
        if (!notice) {
          missing.push(`${aggregate}/${id}`);
          continue;
        }
        await link.js.publish(`replay.${name}.${aggregate}.${id}`, notice);
        republished++;
      }
      return { republished, ...(missing.length ? { missing } : {}) };
    },
  };
}

/** The subscriber registry's interface. */
export type Subscribers = ReturnType<typeof subscribers>;
