import { AckPolicy, DeliverPolicy, JetStreamApiError, JetStreamApiCodes, type ConsumerConfig } from '@nats-io/jetstream';
import { ConvergeError } from './errors.js';
import type { EventStore } from './eventStore.js';
import type { NatsLink } from './natsConnection.js';
import { NOTIFY, REPLAY, noticeSubject } from './notifier.js';

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

/** What to re-publish for one subscriber. */
export type Republish =
  | { readonly since: string }
  | { readonly sincePosition: number }
  | { readonly ids: ReadonlyArray<{ readonly aggregate: string; readonly id: string }> };

/** How far before a commit's own time a reset starts, for clocks that differ between hosts. */
const CLOCK_MARGIN_MS = 5_000;

function notifyConsumer(name: string, start: Partial<ConsumerConfig> = { deliver_policy: DeliverPolicy.New }): Partial<ConsumerConfig> {
  return { durable_name: name, ack_policy: AckPolicy.Explicit, filter_subject: 'notify.>', ...start };
}

const notFound = (name: string) => new ConvergeError('unknown_subscriber', 404, `no subscriber named ${name}`);

/**
 * Subscribing systems: each is a durable consumer named after it on `NOTIFY`, with its own
 * acks, plus one on `REPLAY` filtered to `replay.<name>.>` for notices re-published for it alone.
 */
export function subscribers(link: NatsLink, store: EventStore) {
  const exists = (name: string) => link.jsm.consumers.info(NOTIFY, name).then(() => true, () => false);
  const resetNotify = async (name: string, start: Partial<ConsumerConfig>) => {
    await link.jsm.consumers.delete(NOTIFY, name);
    await link.jsm.consumers.add(NOTIFY, notifyConsumer(name, start));
  };

  return {
    /** Adds a subscriber that receives notices from now on (`all`: also the latest of every aggregate so far). */
    async add(name: string, from: 'new' | 'all'): Promise<SubscriberInfo> {
      if (await exists(name)) throw new ConvergeError('subscriber_exists', 409, `a subscriber named ${name} exists`);
      await link.jsm.consumers.add(NOTIFY, notifyConsumer(name, { deliver_policy: from === 'all' ? DeliverPolicy.All : DeliverPolicy.New }));
      await link.jsm.consumers.add(REPLAY, { durable_name: name, ack_policy: AckPolicy.Explicit, filter_subject: `replay.${name}.>` });
      return (await this.list()).find((s) => s.name === name)!;
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
     * Re-publishes for one subscriber only. `since`/`sincePosition` reset its own `NOTIFY`
     * consumer, so it receives again the latest notice of every aggregate changed since;
     * `ids` copies those aggregates' latest notices to its `REPLAY` subject. Other
     * subscribers see nothing of either.
     */
    async republish(name: string, what: Republish): Promise<{ republished: number | 'reset'; missing?: string[] }> {
      if (!(await exists(name))) throw notFound(name);
      if ('since' in what) {
        await resetNotify(name, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.parse(what.since)).toISOString() });
        return { republished: 'reset' };
      }
      if ('sincePosition' in what) {
        const commit = await store.commitAt(what.sincePosition);
        if (!commit) throw new ConvergeError('position_not_found', 404, `no commit at position ${what.sincePosition}`);
        const start = new Date(Date.parse(commit.events[0]?.at ?? '') - CLOCK_MARGIN_MS).toISOString();
        await resetNotify(name, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: start });
        return { republished: 'reset' };
      }
      const missing: string[] = [];
      let republished = 0;
      for (const { aggregate, id } of what.ids) {
        const last = await link.jsm.streams.getMessage(NOTIFY, { last_by_subj: noticeSubject(aggregate, id) }).catch((err: unknown) => {
          if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.NoMessageFound) return null;
          throw err;
        });
        if (!last) {
          missing.push(`${aggregate}/${id}`);
          continue;
        }
        await link.js.publish(`replay.${name}.${aggregate}.${id}`, last.data);
        republished++;
      }
      return { republished, ...(missing.length ? { missing } : {}) };
    },
  };
}

/** The subscriber registry's interface. */
export type Subscribers = ReturnType<typeof subscribers>;
