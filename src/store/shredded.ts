import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { StoredEvent } from '../core/aggregate.js';
import { ConvergeError, EventStoreUnavailableError } from '../core/errors.js';
import type { Commit, CommitSubscription, Delivered, EventStore } from '../core/eventStore.js';
import { FORGOTTEN, type PersonalDecl } from '../core/personal.js';
import type { KeyStore, SubjectKey } from './keys.js';

const SEALED = '~sealed';

/**
 * A personal field as stored: the JSON of its value sealed with AES-256-GCM under the key `k`
 * (base64 `iv`, `tag` and `data`). `kc` tells that key apart from one made for the same subject
 * after it was forgotten, which must read as forgotten rather than fail as corrupt. `r`, where
 * the key store has one, is the key's sequence in its bucket, to read it by.
 */
export interface SealedField {
  readonly '~sealed': { readonly k: string; readonly kc: string; readonly r?: number; readonly iv: string; readonly tag: string; readonly data: string };
}

/** A sealed field failed authentication with its own key: the stored value or the key is corrupt. */
export class SealedFieldError extends ConvergeError {
  constructor(where: string, cause?: unknown) {
    super('internal_error', `${where} does not open with its key: the stored value or the key is corrupt`, { cause });
  }
}

/**
 * An event store whose personal fields are sealed (see docs/architecture.md, "Forgetting"):
 * `append` replaces each field that `personal` declares for the commit's aggregate with a
 * `SealedField` under its subject's key, and every read opens them again, giving `FORGOTTEN`
 * for a field whose key was forgotten. Positions, versions and everything else pass through.
 * An event without its subject is stored as it is.
 */
export function shreddedStore(inner: EventStore, opts: { readonly keys: KeyStore; readonly personal: ReadonlyMap<string, PersonalDecl> }): EventStore {
  const { keys, personal } = opts;
  const open = <C extends Commit>(commit: C) => unsealCommit(commit, keys);
  return {
    async append(commit, expectedPosition) {
      const decl = personal.get(commit.aggregate);
      return inner.append(decl ? await sealCommit(commit, decl, keys) : commit, expectedPosition);
    },
    async *read(aggregate, id, afterPosition) {
      for await (const commit of inner.read(aggregate, id, afterPosition)) yield await open(commit);
    },
    async *readSince(aggregate, id, sinceMs) {
      for await (const commit of inner.readSince(aggregate, id, sinceMs)) yield await open(commit);
    },
    lastPosition: (aggregate, id) => inner.lastPosition(aggregate, id),
    async commitAt(position) {
      const commit = await inner.commitAt(position);
      return commit && open(commit);
    },
    head: () => inner.head(),
    async subscribe(afterPosition, o) {
      const sub = await inner.subscribe(afterPosition, o);
      if (o.sealed) return sub;
      // Opened several at a time, delivered in order: a commit whose subject's key is not in
      // the cache waits for the key store, and one at a time a feed would go no faster than
      // those round trips whenever its subjects outnumber the cache (docs/architecture.md, "Forgetting").
      const opened = mapAhead(sub, OPEN_AHEAD, async (delivered: Delivered) => {
        const commit = await open(delivered.commit);
        return commit === delivered.commit ? delivered : { ...delivered, commit };
      });
      return { [Symbol.asyncIterator]: () => opened[Symbol.asyncIterator](), close: () => sub.close() } satisfies CommitSubscription;
    },
    isAvailable: () => inner.isAvailable(),
    onReconnect: (listener) => inner.onReconnect(listener),
  };
}

/** Commits of a subscription opened at once, at most. */
const OPEN_AHEAD = 64;

/**
 * `source` mapped through `map` in its order, with up to `ahead` items read and mapped before
 * the one the reader waits for. An error, of the source or of a map, reaches the reader in
 * its place, after every item before it.
 */
export function mapAhead<T, U>(source: AsyncIterable<T>, ahead: number, map: (item: T) => Promise<U>): AsyncIterable<U> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<U> {
      const it = source[Symbol.asyncIterator]();
      const queue: Array<Promise<IteratorResult<U>>> = [];
      let ended = false;
      const fill = () => {
        while (!ended && queue.length < ahead) {
          const next = it.next().then((r): Promise<IteratorResult<U>> | IteratorResult<U> => {
            if (r.done) {
              ended = true;
              return { done: true, value: undefined };
            }
            return map(r.value).then((value) => ({ done: false, value }));
          });
          // Awaited in turn; meanwhile a rejection is not an unhandled one.
          next.catch(() => undefined);
          queue.push(next);
        }
      };
      const finish = (): IteratorResult<U> => {
        ended = true;
        queue.length = 0;
        return { done: true, value: undefined };
      };
      return {
        async next() {
          fill();
          const head = queue.shift();
          if (!head) return finish();
          try {
            const r = await head;
            return r.done ? finish() : r;
          } catch (err) {
            finish();
            throw err;
          }
        },
        async return() {
          finish();
          // Not awaited: it ends once the source's pending reads do, which its own close brings about.
          void it.return?.()?.catch(() => undefined);
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/**
 * The commit with the personal fields `decl` names sealed under their subjects' keys; the same
 * object when none of its events has any. A key that cannot be had fails the append before
 * anything is stored.
 */
export async function sealCommit(commit: Commit, decl: PersonalDecl, keys: KeyStore): Promise<Commit> {
  let events: StoredEvent[] | undefined;
  for (const [i, event] of commit.events.entries()) {
    const spec = decl[event.type];
    const data = event.data as Record<string, unknown>;
    const subject = spec && data[spec.subject];
    // A forgotten subject stays forgotten: an event made from a state that reads it as
    // `FORGOTTEN` (a later command on the same order) is not sealed under a key for that word.
    if (!spec || typeof subject !== 'string' || subject === '' || subject === FORGOTTEN) continue;
    const key = await keys.keyFor(subject).catch((err: unknown) => {
      throw new EventStoreUnavailableError('the key store is unavailable; retry with the same Idempotency-Key', { cause: err });
    });
    const sealed = { ...data };
    for (const field of spec.fields) if (sealed[field] !== undefined) sealed[field] = seal(sealed[field], key);
    (events ??= [...commit.events])[i] = { ...event, data: sealed };
  }
  return events ? { ...commit, events } : commit;
}

/**
 * The commit with every sealed field opened, or `FORGOTTEN` where its key is gone; the same
 * object when it has none. It looks at the values, not at a declaration, so it also opens
 * commits kept sealed elsewhere (the archive) and those of an aggregate that has since dropped
 * its declaration. Throws `SealedFieldError` for a field that its own key does not open.
 */
export async function unsealCommit<C extends Commit>(commit: C, keys: KeyStore): Promise<C> {
  let events: StoredEvent[] | undefined;
  const lookups = new Map<string, Promise<Buffer | undefined>>();
  for (const [i, event] of commit.events.entries()) {
    let data: Record<string, unknown> | undefined;
    for (const field in event.data) {
      const value = (event.data as Record<string, unknown>)[field];
      if (!isSealed(value)) continue;
      const where = `${commit.aggregate} ${commit.id} event ${i} (${event.type}) field ${field}${'position' in commit ? ` at position ${String(commit.position)}` : ''}`;
      data ??= { ...event.data };
      data[field] = await openField(value[SEALED], keys, lookups, where);
    }
    if (data) (events ??= [...commit.events])[i] = { ...event, data };
  }
  return events ? { ...commit, events } : commit;
}

function isSealed(value: unknown): value is SealedField {
  return typeof value === 'object' && value !== null && Object.hasOwn(value, SEALED);
}

/** A short, one-way mark of a key, to tell its generations apart. */
function keyCheck(key: Buffer): string {
  let check = keyChecks.get(key);
  if (check === undefined) keyChecks.set(key, (check = createHash('sha256').update(key).digest('hex').slice(0, 16)));
  return check;
}

/**
 * Each key's check, by the key's own buffer: the key store's cache hands out the same buffer,
 * so a feed opening every commit's fields hashes each key once instead of twice a field.
 */
const keyChecks = new WeakMap<Buffer, string>();

/** A field's IV: 12 bytes, never reused under a key, which random IVs of this size keep to. */
const IV_BYTES = 12;
/** IVs drawn from the CSPRNG this many at a time: a draw of its own per field cost 2% of a worker's CPU. */
const IVS_PER_DRAW = 256;
let ivs = Buffer.alloc(0);
let ivAt = 0;

function nextIv(): Buffer {
  if (ivAt === ivs.length) {
    ivs = randomBytes(IV_BYTES * IVS_PER_DRAW);
    ivAt = 0;
  }
  return ivs.subarray(ivAt, (ivAt += IV_BYTES));
}

function seal(value: unknown, key: SubjectKey): SealedField {
  const iv = nextIv();
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return { [SEALED]: { k: key.id, kc: keyCheck(key.key), ...(key.revision === undefined ? {} : { r: key.revision }), iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') } };
}

async function openField(sealed: SealedField['~sealed'], keys: KeyStore, lookups: Map<string, Promise<Buffer | undefined>>, where: string): Promise<unknown> {
  if ([sealed.k, sealed.kc, sealed.iv, sealed.tag, sealed.data].some((s) => typeof s !== 'string')) throw new SealedFieldError(where);
  if (sealed.r !== undefined && !(Number.isSafeInteger(sealed.r) && sealed.r > 0)) throw new SealedFieldError(where);
  const id = `${sealed.k}/${sealed.kc}`;
  let lookup = lookups.get(id);
  if (!lookup) lookups.set(id, (lookup = keyOf(sealed.k, sealed.kc, sealed.r, keys)));
  const key = await lookup;
  if (!key) return FORGOTTEN;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'), { authTagLength: 16 });
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return JSON.parse(Buffer.concat([decipher.update(sealed.data, 'base64'), decipher.final()]).toString('utf8'));
  } catch (err) {
    throw new SealedFieldError(where, err);
  }
}

/** The key a field was sealed with, or `undefined` when it was forgotten (even if one was made again since). */
async function keyOf(keyId: string, check: string, revision: number | undefined, keys: KeyStore): Promise<Buffer | undefined> {
  try {
    let key = await keys.get(keyId, revision);
    if (key && keyCheck(key) !== check) {
      // Either it was forgotten and made again, or this process's cache holds an older key than the field's.
      keys.evict(keyId);
      key = await keys.get(keyId, revision);
    }
    return key && keyCheck(key) === check ? key : undefined;
  } catch (err) {
    throw new EventStoreUnavailableError('the key store is unavailable', { cause: err });
  }
}
