import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { EventStoreUnavailableError } from '../core/errors.js';
import type { NatsLink } from '../nats/connection.js';
import { getStreamMessage, JetStreamRequestError } from '../nats/requests.js';
import { REACTIONS_BUCKET } from '../react/reactionStore.js';

/** Where the archiver announces the archive's last record, in the `converge-reactions` bucket. */
const HEAD_KEY = 'archive.head';

/**
 * The archive's head (docs/architecture.md, "Archive"): the position of a record at or
 * after every record whose commits the archiver has begun to remove. The archiver announces
 * it before it removes anything, so a read whose index has applied the head lacks nothing
 * of the archive; one whose index is behind it reads the records it lacks.
 *
 * A read asks this instead of `next_by_subj` after its index's last record, which
 * nats-server 2.9.10 answers by walking a block of `EVENTS` message by message once the
 * archive has records: while the archiver worked, that walk was 62% of the server's CPU,
 * asked by the first command of every new order. A key of the bucket is read in about
 * 15 µs of the server's time.
 */
export interface ArchiveHead {
  /** The announced head; undefined when none has been announced yet (then the caller asks the stream). */
  read(): Promise<number | undefined>;
  /** Moves the head to `position`, unless it is there or past it already. */
  announce(position: number): Promise<void>;
}

/**
 * The archive's head of the stream `stream` (an incarnation of `EVENTS`, see `StoreIdentity`)
 * in the `converge-reactions` bucket. A head announced for another incarnation (the store
 * recreated or restored while the bucket was kept) counts as none, and the next announcement
 * replaces it. The bucket is opened when first asked; the archiver's side creates it.
 */
export function kvArchiveHead(link: NatsLink, stream: string): ArchiveHead {
  let bucket: Promise<KV> | undefined;
  const kv = () => {
    bucket ??= new Kvm(link.js).open(REACTIONS_BUCKET).catch((err: unknown) => {
      bucket = undefined;
      throw err;
    });
    return bucket;
  };
  /**
   * The head as stored, with its revision; its position is undefined when it is another
   * stream's. Read from the bucket's stream by the connection's requester: the first command
   * of every new aggregate asks it, and nats.js's own request costs two errors and their
   * stacks for each (docs/architecture.md, "Event store").
   */
  const current = async () => {
    const m = await getStreamMessage(link.requests, `KV_${REACTIONS_BUCKET}`, { last_by_subj: `$KV.${REACTIONS_BUCKET}.${HEAD_KEY}` }, link.requestTimeoutMs);
    if (!m) return undefined;
    // A deleted or purged key is a marker without a value: no head, and the next announcement updates it.
    const value = parseHead(Buffer.from(m.data).toString('utf8'));
    return { position: value?.stream === stream ? value.position : undefined, revision: m.seq };
  };
  return {
    async read() {
      try {
        return (await current())?.position;
      } catch (err) {
        // No bucket yet: nothing was ever announced (no archiver has run on this store).
        if (err instanceof JetStreamRequestError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
        throw new EventStoreUnavailableError(`the archive's head could not be read: ${(err as Error).message}`, { cause: err });
      }
    },
    async announce(position) {
      // Compared and set: an archiver that lost its lease never moves the head back.
      for (;;) {
        const now = await current();
        if (now?.position !== undefined && now.position >= position) return;
        const store = await kv();
        const value = JSON.stringify({ stream, position });
        try {
          if (now) await store.update(HEAD_KEY, value, now.revision);
          else await store.create(HEAD_KEY, value);
          return;
        } catch (err) {
          // Another announcement came between: read it again.
          if (!(err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown))) throw err;
        }
      }
    },
  };
}

function parseHead(text: string): { stream: string; position: number } | undefined {
  try {
    const value = JSON.parse(text) as { stream?: unknown; position?: unknown };
    return typeof value.stream === 'string' && typeof value.position === 'number' ? { stream: value.stream, position: value.position } : undefined;
  } catch {
    return undefined;
  }
}
