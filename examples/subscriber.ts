/**
 * Another system's copy of converge's shops, to copy: NATS notices say *what* changed, the import API serves the data.
 *   COPY_FILE=search-shops.json node dist/examples/subscriber.js search
 * NATS_URL names the server; without it, the URL of the embedded server that `npm start` in this
 * directory runs is read from `data/run/nats.url` (`CONVERGE_DATA_DIR/run/nats.url`).
 * QUERY_TOKEN is a reader token for the import routes, when converge has tokens configured.
 * NATS_USER and NATS_PASSWORD (or NATS_TOKEN, or NATS_CREDS, a creds file) authenticate it;
 * `converge nats-credentials --env` prints the embedded server's subscriber user as those variables,
 * with NATS_INBOX_PREFIX, the only inboxes that user may read.
 */
import { readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { connect, credsAuthenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { jetstream, type Consumer, type JsMsg } from '@nats-io/jetstream';

/** A zero-payload notice from `NOTIFY` (or this system's `REPLAY` subject). */
export interface Notice { aggregate: string; id: string; version: number; position: number; at: string }
/** A shop as the import API serves it (the `GET /shops/:id` document); kept whole. */
export interface Shop { id: string; position: number; [field: string]: unknown }
/** The local copy: shops by id. */
export type Copy = Map<string, Shop>;
/** What one sync applied: the notices, the shop documents fetched for them, and the highest notice position. */
export interface Synced { notices: number; shops: number; position: number }

/** The import routes need a reader token once converge has tokens configured: QUERY_TOKEN. */
function readerAuth(): Record<string, string> {
  const token = process.env['QUERY_TOKEN'];
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Keeps the newer version of a shop: imports and notices may arrive in any order. */
export function upsert(copy: Copy, shop: Shop): void {
  const old = copy.get(shop.id);
  if (!old || old.position <= shop.position) copy.set(shop.id, shop);
}

/** Copies every shop (`GET /import/shops`, NDJSON). A broken download resumes after the last id received. */
export async function fullImport(queryUrl: string, copy: Copy, attempts = 5): Promise<number> {
  let cursor: string | undefined;
  let count = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${queryUrl}/import/shops${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ''}`, { headers: readerAuth() });
      if (!res.ok || !res.body) throw new Error(`GET /import/shops answered ${res.status}`);
      const decoder = new TextDecoder();
      let tail = '';
      for await (const chunk of res.body) {
        const lines = (tail + decoder.decode(chunk, { stream: true })).split('\n');
        tail = lines.pop() ?? '';
        for (const line of lines.filter(Boolean)) {
          const shop = JSON.parse(line) as Shop;
          upsert(copy, shop);
          cursor = shop.id;
          count++;
        }
      }
      return count;
    } catch (err) {
      if (attempt >= attempts) throw err;
      await sleep(1000);
    }
  }
}

/**
 * Fetches the shops that up to 1000 notices name (`POST /import/shops/batch`) and upserts
 * them. A notice may come before the view has its change, so the request waits for the
 * latest position named (`X-Min-Position`); a 504 means "not yet" and throws, to retry.
 * Order and review notices do not name their shop, yet they change its counters and
 * rating: for those it pulls the shops changed since the oldest such notice
 * (`GET /import/shops/changed?since=<position - 1>`), which include the shop they touched.
 */
export async function syncOnce(queryUrl: string, copy: Copy, notices: readonly Notice[]): Promise<Synced> {
  if (notices.length === 0) return { notices: 0, shops: 0, position: 0 };
  const position = Math.max(...notices.map((n) => n.position));
  const wait = { 'x-min-position': String(position) };
  let fetched = 0;
  const shops = notices.filter((n) => n.aggregate === 'shop');
  if (shops.length > 0) {
    const res = await fetch(`${queryUrl}/import/shops/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...wait, ...readerAuth() },
      body: JSON.stringify({ ids: [...new Set(shops.map((n) => n.id))] }),
    });
    if (!res.ok) throw new Error(`POST /import/shops/batch answered ${res.status}: ${await res.text()}`);
    const { items, missing } = (await res.json()) as { items: Shop[]; missing: string[] };
    for (const shop of items) upsert(copy, shop);
    for (const id of missing) copy.delete(id);
    fetched += items.length;
  }
  const done = () => ({ notices: notices.length, shops: fetched, position });
  const others = notices.filter((n) => n.aggregate !== 'shop');
  if (others.length === 0) return done();
  let url = `${queryUrl}/import/shops/changed?since=${Math.min(...others.map((n) => n.position)) - 1}&limit=100`;
  for (;;) {
    const res = await fetch(url, { headers: { ...wait, ...readerAuth() } });
    if (!res.ok) throw new Error(`GET /import/shops/changed answered ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { items: Shop[]; next?: string };
    for (const shop of page.items) upsert(copy, shop);
    fetched += page.items.length;
    if (!page.next) return done();
    url = `${url.replace(/&cursor=.*$/, '')}&cursor=${encodeURIComponent(page.next)}`;
  }
}

const TIMEOUT = Symbol('timeout');

/**
 * Pulls notices from one durable consumer, up to 500 or 100 ms at a time, hands each batch
 * to `handle`, and acks it once handled; a failed batch is redelivered a second later.
 */
export async function follow(consumer: Consumer, handle: (notices: Notice[]) => Promise<void>, signal: AbortSignal): Promise<void> {
  const messages = await consumer.consume({ max_messages: 1000 });
  signal.addEventListener('abort', () => void messages.close(), { once: true });
  const it = messages[Symbol.asyncIterator]();
  let next = it.next();
  for (let first = await next; !first.done; first = await next) {
    const batch: JsMsg[] = [first.value];
    next = it.next();
    const deadline = sleep(100, TIMEOUT);
    while (batch.length < 500) {
      const r = await Promise.race([next, deadline]);
      if (r === TIMEOUT || r.done) break;
      batch.push(r.value);
      next = it.next();
    }
    const valid = batch.flatMap((m) => parse(m));
    try {
      await handle(valid.map((v) => v.notice));
      for (const { m } of valid) m.ack();
    } catch (err) {
      console.error(`${batch.length} notices not synced; retrying in 1 s: ${err instanceof Error ? err.message : String(err)}`);
      for (const { m } of valid) m.nak(1000);
    }
  }
}

/** A message with its notice; one that is not a notice is terminated, never redelivered. */
function parse(m: JsMsg): Array<{ m: JsMsg; notice: Notice }> {
  try { return [{ m, notice: m.json<Notice>() }]; } catch { m.term(); return []; }
}

/** Reads the copy from `file`; an absent file is an empty copy. */
export async function loadCopy(file: string): Promise<Copy> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '{}' : Promise.reject(err)));
  return new Map(Object.entries(JSON.parse(text) as Record<string, Shop>));
}

/** Writes the copy to `file` whole, through a temp file so a crash never leaves half of it. */
export async function saveCopy(file: string, copy: Copy): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(Object.fromEntries(copy)));
  await rename(`${file}.tmp`, file);
}

/** The program: full import when the copy is empty, then follow `NOTIFY` and `REPLAY` as `<name>`. */
async function main(): Promise<void> {
  const name = process.argv[2] ?? process.env['SUBSCRIBER_NAME'];
  if (!name) {
    console.error('usage: node dist/examples/subscriber.js <subscriber name>   (or SUBSCRIBER_NAME=<name>)');
    process.exit(2);
  }
  const queryUrl = process.env['QUERY_URL'] ?? 'http://127.0.0.1:8081';
  const file = process.env['COPY_FILE'] ?? `${name}-shops.json`;
  const copy = await loadCopy(file);
  if (copy.size === 0) {
    console.log(`full import: ${count(await fullImport(queryUrl, copy), 'shop')}`);
    await saveCopy(file, copy);
  }
  // A user that may subscribe only to its own inboxes says which: NATS_INBOX_PREFIX.
  const inboxPrefix = process.env['NATS_INBOX_PREFIX'];
  const nc = await connect({ servers: natsUrl(), ...natsAuth(), ...(inboxPrefix ? { inboxPrefix } : {}) });
  const stop = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop.abort());
  // Both consumers share the copy; saves run one after another, so the file never goes back.
  let saved: Promise<void> = Promise.resolve();
  const handle = (stream: string) => async (notices: Notice[]) => {
    const synced = await syncOnce(queryUrl, copy, notices);
    await (saved = saved.catch(() => undefined).then(() => saveCopy(file, copy)));
    // One line a batch, so that an operator sees the copy keep up.
    if (synced.notices > 0) console.log(`${stream}: ${batchLine(synced)}; the copy has ${count(copy.size, 'shop')}`);
  };
  const consumers = await Promise.all(['NOTIFY', 'REPLAY'].map(async (stream) => ({ stream, consumer: await jetstream(nc).consumers.get(stream, name) })));
  console.log(`following NOTIFY and REPLAY as ${name}; the copy (${file}) has ${count(copy.size, 'shop')}`);
  await Promise.all(consumers.map(({ stream, consumer }) => follow(consumer, handle(stream), stop.signal)));
  await nc.drain();
}

/** What a batch applied, as the program logs it: `3 notices applied, 2 shops fetched, up to position 1042`. */
export function batchLine(synced: Synced): string {
  return `${count(synced.notices, 'notice')} applied, ${count(synced.shops, 'shop')} fetched, up to position ${synced.position}`;
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** How to authenticate: NATS_USER and NATS_PASSWORD, NATS_TOKEN, or NATS_CREDS; none when unset. */
function natsAuth(): Partial<ConnectionOptions> {
  const env = process.env;
  if (env['NATS_USER']) return { user: env['NATS_USER'], pass: env['NATS_PASSWORD'] ?? '' };
  if (env['NATS_TOKEN']) return { token: env['NATS_TOKEN'] };
  const creds = env['NATS_CREDS'];
  if (creds) return { authenticator: credsAuthenticator(() => readFileSync(creds)) };
  return {};
}

/** NATS_URL, or the embedded server of the converge started in this directory. */
function natsUrl(): string {
  const given = process.env['NATS_URL'];
  if (given) return given;
  const file = join(process.env['CONVERGE_DATA_DIR'] ?? 'data', 'run', 'nats.url');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    console.error(`no NATS_URL given, and no ${file}: start converge here (npm start), or set NATS_URL to its NATS server`);
    process.exit(2);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => (console.error(err), process.exit(1)));
}
