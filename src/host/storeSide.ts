import type { Logger } from 'pino';
import type { EventStore, StoreHead } from '../core/eventStore.js';
import { ensureNoticeStreams } from '../integration/notifier.js';
import { connectNats, type NatsLink } from '../nats/connection.js';
import type { Tracing } from '../observe/tracing.js';
import { createJetStreamEventStore } from '../store/jetstream.js';
import { appendsNeedFence, awaitEventStream, ensureEventStream } from '../store/eventStream.js';
import { createMemoryEventStore } from '../store/memory.js';
import { archivedStore } from '../store/archived.js';
import type { ArchiveIndex } from '../store/archiveIndex.js';
import { isArchivable } from '../core/archive.js';
import type { PersonalDecl } from '../core/personal.js';
import { kvArchiveHead, type ArchiveHead } from '../lifecycle/archiveHead.js';
import { kvKeyStore, memoryKeyStore, type KeyStore } from '../store/keys.js';
import { shreddedStore } from '../store/shredded.js';
import { natsAuthOf, type Config } from './config.js';

/** The event store a runtime works on, and the NATS link under it when there is one. */
export interface StoreSide {
  /** The store, read through the archive when the app has one (`archive`). */
  readonly store: EventStore;
  /** The store as it is: the archive's follower and the archiver work on it. */
  readonly raw: EventStore;
  /** The host's index of the archive, when the app has anything to archive. */
  readonly index: ArchiveIndex | undefined;
  /** The data subjects' keys, when the app declares personal data. */
  readonly keys: KeyStore | undefined;
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
  /**
   * The app has something to archive: open the host's index of the archive (given the
   * store's incarnation) and read the store through it (docs/architecture.md, "Archive").
   */
  readonly archive?: (streamId: string) => ArchiveIndex;
  /** The app's personal data declarations: seal those fields with their subjects' keys (docs/architecture.md, "Forgetting"). */
  readonly personal?: ReadonlyMap<string, PersonalDecl>;
}

/** The keys of an in-memory store's data subjects: they live as long as the store, across runtimes started on it. */
const memoryKeys = new WeakMap<EventStore, KeyStore>();

/** The store with its personal fields sealed and opened, outside the archive, whose records keep them sealed. */
function sealed(store: EventStore, keys: KeyStore | undefined, personal: ReadonlyMap<string, PersonalDecl> | undefined): EventStore {
  return keys && personal ? shreddedStore(store, { keys, personal }) : store;
}

/** The store read through the archive, when there is an index of it. */
function through(raw: EventStore, index: ArchiveIndex | undefined, head?: ArchiveHead): EventStore {
  return index ? archivedStore(raw, { index, ...(head ? { head: () => head.read() } : {}) }) : raw;
}

/**
 * Opens the event store the configuration names: JetStream on `nats.url`, or, with no URL
 * (an in-process runtime), the in-memory store. Everything that needs NATS at start happens
 * here, before a runtime serves anything.
 */
export async function openStoreSide(opts: StoreSideOptions): Promise<StoreSide> {
  const { config, log } = opts;
  if (config.nats.url === '') {
    const raw = opts.memory ?? createMemoryEventStore();
    const streamId = (await raw.head()).identity.stream;
    // A store of the app's own making that cannot be archived from is read as it is.
    const index = isArchivable(raw) ? opts.archive?.(streamId) : undefined;
    let keys: KeyStore | undefined;
    if (opts.personal && opts.personal.size > 0) {
      keys = memoryKeys.get(raw) ?? memoryKeyStore({ cacheSize: config.eventStore.keyCacheSize });
      memoryKeys.set(raw, keys);
    }
    const store = sealed(through(raw, index), keys, opts.personal);
    return { store, raw, index, keys, link: undefined, streamId, head: await store.head(), close: async () => undefined };
  }
  const link = await connectNats(config.nats.url, { auth: natsAuthOf(config), name: opts.name, timeoutMs: config.nats.requestTimeoutMs, log });
  if (opts.onReconnect) link.onReconnect(opts.onReconnect);
  try {
    const { duplicateWindowMs } = config.eventStore;
    const streamId = opts.streams === 'create' ? await ensureEventStream(link, duplicateWindowMs, config.nats.replicas) : await awaitEventStream(link, log);
    if (opts.notices) await ensureNoticeStreams(link, { duplicateWindowMs, maxAgeMs: config.notices.maxAgeMs, replicas: config.nats.replicas });
    const fenced = opts.appends === true && (await appendsNeedFence(link));
    const raw = createJetStreamEventStore(link, { ...config.eventStore, ...(opts.tracing ? { tracing: opts.tracing } : {}), fenced });
    const index = opts.archive?.(streamId);
    const keys = opts.personal && opts.personal.size > 0 ? await kvKeyStore(link, { replicas: config.nats.replicas, cacheSize: config.eventStore.keyCacheSize }) : undefined;
    const store = sealed(through(raw, index, kvArchiveHead(link, streamId)), keys, opts.personal);
    return { store, raw, index, keys, link, streamId, head: await store.head(), close: () => link.close() };
  } catch (err) {
    await link.close();
    throw err;
  }
}
