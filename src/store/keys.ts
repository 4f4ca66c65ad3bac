import type { KV } from '@nats-io/kv';
import { createHmac, randomBytes } from 'node:crypto';
import { openBucket } from '../nats/buckets.js';
import type { NatsLink } from '../nats/connection.js';
import { getStreamMessage, type StreamMessage } from '../nats/requests.js';

/** The KV bucket of the data subjects' keys and the secret that names them. */
export const KEYS_BUCKET = 'converge-keys';
/** The bucket's reserved entry for the HMAC secret; a key id is 32 hex digits, so it cannot clash. */
const SECRET = 'secret';
const CACHE_SIZE = 10_000;

/** A key's length: AES-256. */
const KEY_BYTES = 32;

/** A key as its backend holds it. */
export interface StoredKey {
  readonly key: Buffer;
  /** Its message's sequence in the bucket, when the backend has one: a read by it costs the same however large the bucket. */
  readonly revision?: number;
}

/** One data subject's AES-256-GCM key, under its key id. */
export interface SubjectKey extends StoredKey {
  readonly id: string;
}

/**
 * The data subjects' keys (see docs/architecture.md, "Forgetting"): one AES-256-GCM key per
 * subject, under an id that does not reveal the subject's id, so neither the bucket nor the
 * sealed events hold it. Forgetting a subject deletes its key, which makes every field sealed
 * with it unreadable wherever it was copied.
 */
export interface KeyStore {
  /** The subject's key id: HMAC-SHA256 of its id under the store's secret, the first 32 hex digits. */
  keyId(subject: string): string;
  /** The subject's key, made on first use; made once even when several processes ask at the same time. */
  keyFor(subject: string): Promise<SubjectKey>;
  /**
   * The key under `keyId`; `undefined` when it was forgotten or never made. `revision`, where
   * the key was at sealing (a sealed field's `r`), lets a backend read it by sequence.
   */
  get(keyId: string, revision?: number): Promise<Buffer | undefined>;
  /** Drops `keyId` from this process's cache, because another process may have forgotten it. */
  evict(keyId: string): void;
  /** Deletes the subject's key for good; answers its key id. */
  forget(subject: string): Promise<string>;
}

/** Where the keys live: the cache and the key ids are the same for every backend. */
export interface KeyBackend {
  load(keyId: string): Promise<StoredKey | undefined>;
  /** The key at `revision` when that is where the id's key is; otherwise as `load`. */
  loadAt?(keyId: string, revision: number): Promise<StoredKey | undefined>;
  /** Stores `key` unless the id has one already; answers the key the id holds afterwards. */
  createOrLoad(keyId: string, key: Buffer): Promise<StoredKey>;
  erase(keyId: string): Promise<void>;
}

/** A key store on `backend`, with its `cacheSize` most recently used keys in memory. */
export function keyStore(secret: Buffer, backend: KeyBackend, cacheSize: number): KeyStore {
  const cache = lru<StoredKey>(cacheSize);
  /** The loads under way, by key id (and revision, when asked by one). */
  const loading = new Map<string, Promise<Buffer | undefined>>();
  const unload = (id: string) => {
    for (const k of loading.keys()) if (k === id || k.startsWith(`${id}@`)) loading.delete(k);
  };
  // A subject's id never changes under the secret; an HMAC per sealed event was 2% of a worker's CPU.
  const ids = lru<string>(cacheSize);
  const keyId = (subject: string) => {
    let id = ids.get(subject);
    if (id === undefined) ids.set(subject, (id = createHmac('sha256', secret).update(subject, 'utf8').digest('hex').slice(0, 32)));
    return id;
  };
  return {
    keyId,
    async keyFor(subject) {
      const id = keyId(subject);
      let stored = cache.get(id);
      if (stored === undefined) cache.set(id, (stored = await backend.createOrLoad(id, randomBytes(KEY_BYTES))));
      return { id, key: stored.key, ...(stored.revision === undefined ? {} : { revision: stored.revision }) };
    },
    async get(id, revision) {
      const cached = cache.get(id);
      if (cached) return cached.key;
      // One load per key at a time: a feed opens many commits of one subject at once.
      const slot = revision === undefined || !backend.loadAt ? id : `${id}@${revision}`;
      let load = loading.get(slot);
      if (!load) {
        load = (slot === id ? backend.load(id) : backend.loadAt!(id, revision!)).then(
          (stored) => {
            // A missing key is not cached: it may be made a moment later by another process.
            // Nor one loaded before an `evict` or `forget` of its id.
            if (loading.get(slot) === load) {
              loading.delete(slot);
              if (stored) cache.set(id, stored);
            }
            return stored?.key;
          },
          (err: unknown) => {
            if (loading.get(slot) === load) loading.delete(slot);
            throw err;
          },
        );
        loading.set(slot, load);
      }
      return load;
    },
    evict(id) {
      cache.delete(id);
      unload(id);
      // Nor does the process keep which subject the id was (a scan: forgetting is rare).
      ids.deleteValue(id);
    },
    async forget(subject) {
      const id = keyId(subject);
      await backend.erase(id);
      cache.delete(id);
      unload(id);
      ids.delete(subject);
      return id;
    },
  };
}

/** Keys in memory, for the in-memory runtime and tests; the secret is random per store. */
export function memoryKeyStore(opts: { readonly cacheSize?: number } = {}): KeyStore {
  const keys = new Map<string, Buffer>();
  const stored = (key: Buffer | undefined) => key && { key };
  return keyStore(randomBytes(32), {
    load: async (id) => stored(keys.get(id)),
    async createOrLoad(id, key) {
      if (!keys.has(id)) keys.set(id, key);
      return { key: keys.get(id)! };
    },
    erase: async (id) => void keys.delete(id),
  }, opts.cacheSize ?? CACHE_SIZE);
}

/**
 * Keys in the `converge-keys` KV bucket, with `replicas` copies. The secret is kept in the same
 * bucket, made by whichever process opens it first. The bucket keeps one revision per key and
 * is read from the stream's leader, not by direct gets: a replica that has not caught up would
 * answer that a live key is missing, and its fields would be read, and folded, as forgotten.
 */
export async function kvKeyStore(link: NatsLink, opts: { readonly replicas: number; readonly cacheSize?: number }): Promise<KeyStore> {
  const { kv, info } = await openBucket(link, KEYS_BUCKET, { history: 1, replicas: opts.replicas, allow_direct: false });
  const stream = `KV_${KEYS_BUCKET}`;
  // A bucket that keeps one message per key (converge makes it so) holds a key's only message
  // as its subject's first. On nats-server 2.9 a read of a subject's first message costs the
  // same however large the bucket, one of its last (what `kv.get` asks for) more the larger
  // it is (docs/architecture.md, "Forgetting").
  const onlyMessage = info.config.max_msgs_per_subject === 1;
  const subject = (id: string) => `$KV.${KEYS_BUCKET}.${id}`;
  /** The key a message of the bucket holds for `id`: none when it is another id's, or a forget's marker, which has no value. */
  const keyIn = (id: string, message: StreamMessage | undefined) =>
    message?.subject === subject(id) && message.data.length === KEY_BYTES ? { key: Buffer.from(message.data), revision: message.seq } : undefined;
  const load = async (id: string): Promise<Required<StoredKey> | undefined> => {
    if (!onlyMessage) {
      const entry = await kv.get(id);
      return entry?.operation === 'PUT' ? { key: Buffer.from(entry.value), revision: entry.revision } : undefined;
    }
    return keyIn(id, await getStreamMessage(link.requests, stream, { seq: 1, next_by_subj: subject(id) }, link.requestTimeoutMs));
  };
  const createOrLoad = (id: string, key: Buffer) => createOnce(kv, id, key, load);
  return keyStore((await createOrLoad(SECRET, randomBytes(32))).key, {
    load,
    // By its message's sequence, where the field names it.
    async loadAt(id, revision) {
      // Erased (forgotten), or not this id's message: read as by id, and the field's key check decides.
      return keyIn(id, await getStreamMessage(link.requests, stream, { seq: revision }, link.requestTimeoutMs)) ?? load(id);
    },
    createOrLoad,
    async erase(id) {
      const entry = await load(id);
      // A purge alone leaves the key's bytes in the stream's files until they are compacted;
      // an erased message is overwritten first. The purge then leaves a marker without a value.
      if (entry) {
        await link.jsm.streams.deleteMessage(stream, entry.revision, true).catch(async (err: unknown) => {
          // Fine when another process forgot it first; not when the key is still there.
          if ((await load(id))?.revision === entry.revision) throw err;
        });
      }
      await kv.purge(id);
    },
  }, opts.cacheSize ?? CACHE_SIZE);
}

/** `create` refuses a key that exists, so a process that lost the race reads the winner's. */
async function createOnce(kv: KV, id: string, value: Buffer, load: (id: string) => Promise<StoredKey | undefined>): Promise<StoredKey> {
  const found = await load(id);
  if (found) return found;
  try {
    return { key: value, revision: await kv.create(id, value) };
  } catch (err) {
    const winner = await load(id);
    if (winner) return winner;
    throw err;
  }
}

/** A map that keeps its `size` most recently used entries. */
function lru<V>(size: number) {
  const map = new Map<string, V>();
  return {
    get(k: string): V | undefined {
      const v = map.get(k);
      if (v !== undefined) {
        map.delete(k);
        map.set(k, v);
      }
      return v;
    },
    set(k: string, v: V): void {
      map.delete(k);
      map.set(k, v);
      if (map.size > size) map.delete(map.keys().next().value!);
    },
    delete: (k: string) => void map.delete(k),
    deleteValue(v: V): void {
      for (const [k, x] of map) if (x === v) map.delete(k);
    },
  };
}
