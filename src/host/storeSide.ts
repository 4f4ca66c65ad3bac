import type { Logger } from 'pino';
import type { EventStore, StoreHead } from '../core/eventStore.js';
import { ensureNoticeStreams } from '../integration/notifier.js';
import { connectNats, type NatsLink } from '../nats/connection.js';
import type { Tracing } from '../observe/tracing.js';
import { appendsNeedFence, awaitEventStream, createJetStreamEventStore, ensureEventStream } from '../store/jetstream.js';
import { createMemoryEventStore } from '../store/memory.js';
import { natsAuthOf, type Config } from './config.js';

/** The event store a runtime works on, and the NATS link under it when there is one. */
export interface StoreSide {
  readonly store: EventStore;
  /** Absent for the in-memory store. */
  readonly link: NatsLink | undefined;
  /** The id of this incarnation of the store (see docs/architecture.md, "Views belong to one event store"). */
  readonly streamId: string;
  /** The store as it was when it was opened. */
  readonly head: StoreHead;
  close(): Promise<void>;
}

export interface StoreSideOptions {
  readonly config: Config;
  readonly log: Logger;
  /** Names the NATS connection: `converge-worker-0`, `converge-projector`. */
  readonly name: string;
  /**
   * `create`: make `EVENTS` (and `NOTIFY`, `REPLAY` with `notices`) or bring their settings up
   * to date; `await`: wait for a command host to make it, as a read replica does.
   */
  readonly streams: 'create' | 'await';
  /** Also make the notice streams. */
  readonly notices?: boolean;
  /** Appends fenced by position where the server needs it (a worker's store). */
  readonly appends?: boolean;
  readonly tracing?: Tracing | undefined;
  /** Called after each reconnect to NATS. */
  readonly onReconnect?: () => void;
  /** The store to use when `nats.url` is empty; a fresh in-memory one otherwise. */
  readonly memory?: EventStore | undefined;
}

/**
 * Opens the event store the configuration names: JetStream on `nats.url`, or, with no URL
 * (an in-process runtime), the in-memory store. Everything that needs NATS at start happens
 * here, before a runtime serves anything.
 */
export async function openStoreSide(opts: StoreSideOptions): Promise<StoreSide> {
  const { config, log } = opts;
  if (config.nats.url === '') {
    const store = opts.memory ?? createMemoryEventStore();
    const head = await store.head();
    return { store, link: undefined, streamId: head.identity.stream, head, close: async () => undefined };
  }
  const link = await connectNats(config.nats.url, { auth: natsAuthOf(config), name: opts.name, timeoutMs: config.nats.requestTimeoutMs, log });
  if (opts.onReconnect) link.onReconnect(opts.onReconnect);
  try {
    const { duplicateWindowMs } = config.eventStore;
    const streamId = opts.streams === 'create' ? await ensureEventStream(link, duplicateWindowMs, config.nats.replicas) : await awaitEventStream(link, log);
    if (opts.notices) await ensureNoticeStreams(link, { duplicateWindowMs, maxAgeMs: config.notices.maxAgeMs, replicas: config.nats.replicas });
    const fenced = opts.appends === true && (await appendsNeedFence(link));
    const store = createJetStreamEventStore(link, { ...config.eventStore, ...(opts.tracing ? { tracing: opts.tracing } : {}), fenced });
    return { store, link, streamId, head: await store.head(), close: () => link.close() };
  } catch (err) {
    await link.close();
    throw err;
  }
}
