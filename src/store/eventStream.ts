import { randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { JetStreamApiCodes, JetStreamApiError, StorageType, type StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { ARCHIVE_AGGREGATE } from '../core/archive.js';
import type { Commit, StoreIdentity } from '../core/eventStore.js';
import type { NatsLink } from '../nats/connection.js';

// The `EVENTS` stream itself: its subjects and settings, the id converge marks it with, the
// identity views are bound to, and whether appends need a fence (docs/architecture.md).

/** The stream that holds every commit. */
export const EVENTS = 'EVENTS';

/** Subject of an aggregate's commits. */
export function eventSubject(aggregate: string, id: string): string {
  return `events.${aggregate}.${id}`;
}

/** The first byte of a gzip stream. A commit's JSON begins with `{`. */
const GZIP_FIRST_BYTE = 0x1f;

/**
 * A commit as `EVENTS` stores it: its JSON, but gzipped for the archive's records, which
 * hold the commits of finished aggregates (docs/architecture.md, "Archive"). They are most
 * of the stream's bytes once the archiver has run, every feed from an early position passes
 * over them, and nats-server's memory after a restart grows with the blocks it holds.
 */
export function encodeCommit(commit: Commit): string | Uint8Array {
  const json = JSON.stringify(commit);
  return commit.aggregate === ARCHIVE_AGGREGATE ? gzipSync(json) : json;
}

/** A stored commit read back from its message (see `encodeCommit`): gzipped or not, whatever wrote it. */
export function decodeStoredCommit<T = Commit>(m: { readonly data: Uint8Array; json<J>(): J }): T {
  return m.data[0] === GZIP_FIRST_BYTE ? (JSON.parse(gunzipSync(m.data).toString('utf8')) as T) : m.json<T>();
}

/** How converge marks the `EVENTS` stream with its id, in the stream's description. */
const STREAM_ID_PREFIX = 'converge event store ';

/**
 * The id converge gave this incarnation of `EVENTS`, kept in the stream's description.
 * Not the stream's `created` time: nats-server 2.9.10 gives a restored stream its restart
 * time in memory, and a later stream update writes that to disk, so after a kill -9 and
 * an update `created` changes for the same, intact stream (see docs/architecture.md).
 */
export function streamIdOf(info: Pick<StreamInfo, 'config'>): string | undefined {
  const description = info.config.description ?? '';
  return description.startsWith(STREAM_ID_PREFIX) ? description.slice(STREAM_ID_PREFIX.length) : undefined;
}

/**
 * Creates the `EVENTS` stream, or brings its settings up to date; safe to call from
 * every worker. Answers the stream's id (see `streamIdOf`), which names this incarnation
 * of it: a new stream gets a random one. A stream that has none yet (made by hand) is
 * given its creation time as it reads now, which every process adopting it at once reads
 * alike. The stream is updated only when a setting differs, since every update rewrites
 * its metadata file. `replicas` is its number of copies on a NATS cluster; a stream with
 * another number is scaled to it.
 */
export async function ensureEventStream(link: NatsLink, duplicateWindowMs: number, replicas = 1): Promise<string> {
  const settings = {
    name: EVENTS,
    subjects: ['events.>'],
    storage: StorageType.File,
    duplicate_window: duplicateWindowMs * 1_000_000,
    allow_direct: true,
    num_replicas: replicas,
  };
  let info: StreamInfo;
  try {
    info = await link.jsm.streams.info(EVENTS);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
    try {
      return streamIdOf(await link.jsm.streams.add({ ...settings, description: `${STREAM_ID_PREFIX}${randomUUID()}` }))!;
    } catch (addErr) {
      // Another process created it between our info and add.
      info = await link.jsm.streams.info(EVENTS).catch(() => Promise.reject(addErr));
    }
  }
  const id = streamIdOf(info) ?? info.created;
  const wanted = { ...settings, description: `${STREAM_ID_PREFIX}${id}` };
  const current = info.config;
  const differs =
    current.description !== wanted.description ||
    current.duplicate_window !== wanted.duplicate_window ||
    current.allow_direct !== wanted.allow_direct ||
    (current.num_replicas || 1) !== wanted.num_replicas ||
    current.subjects.join() !== wanted.subjects.join();
  if (differs) info = await link.jsm.streams.update(EVENTS, { ...current, ...wanted });
  return streamIdOf(info) ?? id;
}

/**
 * Whether a nats-server enforces an append's expected sequence on a replicated stream when
 * appends race: before 2.9.21 two concurrent appends with the same expected sequence can
 * both be stored (nats-server#4320; reproduced here on 2.9.10, see docs/architecture.md,
 * "Verified facts"), and converge's optimistic concurrency rests on that check.
 */
export function replicatedAppendsAreSafe(serverVersion: string): boolean {
  const [major = 0, minor = 0, patch = 0] = serverVersion.split(/[.-]/).map((n) => Number.parseInt(n, 10) || 0);
  return major > 2 || (major === 2 && (minor > 9 || (minor === 9 && patch >= 21)));
}

/**
 * Whether appends to `EVENTS` must be fenced by their expected position (see
 * `appendMsgId`): the stream has more than one copy and the server is older than 2.9.21.
 */
export async function appendsNeedFence(link: NatsLink): Promise<boolean> {
  const info = await link.jsm.streams.info(EVENTS);
  return (info.config.num_replicas || 1) > 1 && !replicatedAppendsAreSafe(link.nc.info?.version ?? '0.0.0');
}

/**
 * An append's message id. Normally the command's (`<aggregate>.<id>.<commandId>`, scoped so
 * one client key cannot collide across aggregates): a retried command within the duplicate
 * window gets the original ack. Fenced, it is the aggregate and the expected position
 * (`<aggregate>.<id>@<position>`): every append racing for one position carries the same id,
 * and JetStream's duplicate check, unlike its expected-sequence check before 2.9.21, holds
 * for racing appends on a replicated stream, so one of them is stored (docs/architecture.md,
 * "Verified facts"). A retry then finds its original by the command id of the commit it
 * collided with.
 */
export function appendMsgId(commit: Pick<Commit, 'aggregate' | 'id' | 'commandId'>, expectedPosition: number, fenced: boolean): string {
  return fenced ? `${commit.aggregate}.${commit.id}@${expectedPosition}` : `${commit.aggregate}.${commit.id}.${commit.commandId}`;
}

/**
 * Waits for the `EVENTS` stream that command hosts create, and answers its id (see
 * `streamIdOf`); for a read replica, which follows a store and never makes one. Asks again
 * every second, and says once that it is waiting.
 */
export async function awaitEventStream(link: NatsLink, log: Logger): Promise<string> {
  for (let waited = false; ; waited = true) {
    try {
      const info = await link.jsm.streams.info(EVENTS);
      return streamIdOf(info) ?? info.created;
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
      if (!waited) log.warn(`no ${EVENTS} stream on NATS yet: a read replica waits for a command host to create it`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/**
 * The identity of the store behind a stream info and the server a client is connected to
 * (see docs/architecture.md, "Views belong to one event store"). `server` is the NATS
 * cluster's name, or a single server's name when the operator gave it one. A single server
 * started without a name reports its server id as its name, and that id is generated
 * afresh at every start, so it would make every restart look like a new store: it is left
 * out then. A stream converge has not marked yet is named by its creation time.
 */
export function storeIdentityOf(
  info: Pick<StreamInfo, 'config' | 'created'>,
  server: Pick<NonNullable<NatsConnection['info']>, 'server_id' | 'server_name' | 'cluster'>,
): StoreIdentity {
  const stream = streamIdOf(info) ?? info.created;
  const name = server.cluster ?? (server.server_name && server.server_name !== server.server_id ? server.server_name : undefined);
  return name === undefined ? { stream } : { stream, server: name };
}
