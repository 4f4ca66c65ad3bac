import type { AnyAggregate, StoredEvent } from '../core/aggregate.js';
import type { StoredCommit } from '../core/eventStore.js';
import type { AnyProjection, EventMeta, ViewKey } from '../core/projection.js';
import { schemaIssues } from '../core/schemas.js';
import fastJson from 'fast-json-stringify';
import { Type, type TObject } from 'typebox';
import { encodeDoc, keyString, type DocSerializer, type IndexKey, type ViewGeneration, type ViewStore } from './viewStore.js';

/** A projection generation the runner writes to. */
export interface Target {
  readonly projection: AnyProjection;
  gen: number;
  /** Set when a fold failed under the `stop` policy; the target takes no more commits until resumed. */
  stopped?: { position: number; error: string };
}

/** Documents a batch changed, each with the position of the event that last changed it. */
type Staged = Map<string, { key: ViewKey; doc: object | undefined; position: number }>;


/** Turns stored events into their current shape with the aggregates' upcasters. */
export function upcaster(aggregates: readonly AnyAggregate[]): (aggregate: string, event: StoredEvent) => StoredEvent {
  const byName = new Map(aggregates.map((a) => [a.name, a]));
  return (aggregate, event) => byName.get(aggregate)?.upcast?.(event) ?? event;
}

/**
 * Applies a batch of commits to each target and advances its checkpoint, all in one
 * LMDB transaction, so each event takes effect exactly once even across crashes.
 * Commits at or below a target's checkpoint are skipped. A fold that throws is
 * retried, parked or stops its target, as the projection's policy says.
 */
export function applyBatch(
  views: ViewStore,
  targets: readonly Target[],
  commits: readonly StoredCommit[],
  upcast: (aggregate: string, event: StoredEvent) => StoredEvent,
  now: () => string,
): void {
  views.transaction(() => {
    for (const target of targets) {
      if (target.stopped) continue;
      const { projection, gen } = target;
      const generation = views.generation(projection.name, gen);
      const handles = new Set(projection.handles);
      const batch: Staged = new Map();
      // What writing a document back needs of it as stored before this batch: whether there
      // was one, and its index entries. Taken when the fold first reads it, before the fold
      // could change it, so that the write need not read and decode it again.
      const stored = new Map<string, Before>();
      let checkpoint = views.checkpoint(projection.name, gen);
      for (const commit of commits) {
        if (commit.position <= checkpoint) continue;
        const staged: Staged = new Map();
        const read = (key: ViewKey) => {
          const k = keyString(key);
          if (staged.has(k)) return staged.get(k)!.doc;
          if (batch.has(k)) return batch.get(k)!.doc;
          const doc = generation.docs.get(key);
          if (!stored.has(k)) stored.set(k, beforeOf(projection, key, doc));
          return doc;
        };
        const ok = commit.events.every((raw, eventIndex) => {
          const event = upcast(commit.aggregate, raw);
          if (!handles.has(event.type)) return true;
          const meta: EventMeta = { aggregate: commit.aggregate, id: commit.id, version: commit.version, position: commit.position, at: event.at, ...(commit.metadata ? { metadata: commit.metadata } : {}) };
          return foldOne(views, target, event, meta, eventIndex, read, staged, now);
        });
        if (!ok) break;
        for (const [k, v] of staged) batch.set(k, v);
        checkpoint = commit.position;
      }
      for (const [k, { key, doc, position }] of batch) write(generation, projection, key, doc, position, stored.get(k));
      views.setCheckpoint(projection.name, gen, checkpoint);
    }
  });
}

/** Folds one event into the staged documents; false when the target must stop at this commit. */
function foldOne(
  views: ViewStore,
  target: Target,
  event: StoredEvent,
  meta: EventMeta,
  eventIndex: number,
  read: (key: ViewKey) => object | undefined,
  staged: Staged,
  now: () => string,
): boolean {
  const { projection } = target;
  const policy = projection.onError ?? { kind: 'park' };
  const attempts = policy.kind === 'retry' ? policy.times + 1 : 1;
  let error: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      const key = projection.key(event, meta);
      if (key === undefined) return true;
      staged.set(keyString(key), { key, doc: checkedFold(projection, read(key), event, meta, key), position: meta.position });
      return true;
    } catch (err) {
      error = err;
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  if (policy.kind === 'stop') {
    target.stopped = { position: meta.position, error: message };
    return false;
  }
  views.park({
    projection: projection.name,
    position: meta.position,
    eventIndex,
    aggregate: meta.aggregate,
    id: meta.id,
    type: event.type,
    error: message,
    parkedAt: now(),
  });
  return true;
}

/**
 * The fold's document, checked against the projection's `document` schema when it declares
 * one: a document that does not fit throws as a failing fold would, and the projection's
 * error policy decides what happens, so a misshapen document never reaches a reader.
 */
function checkedFold(projection: AnyProjection, doc: object | undefined, event: StoredEvent, meta: EventMeta, key: ViewKey): object | undefined {
  const next = projection.fold(doc, event, meta) as object | undefined;
  if (next === undefined || !projection.document) return next;
  const issues = schemaIssues(projection.document, next);
  if (issues.length > 0) {
    throw new Error(`${projection.name} ${keyString(key)}: the document does not fit its schema: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`);
  }
  return next;
}

const serializers = new WeakMap<AnyProjection, DocSerializer | undefined>();

/**
 * The serializer of a projection's served documents: its `document` schema less its hidden
 * fields, compiled as Fastify compiles a response schema; none without a schema (JSON).
 */
function serializerOf(projection: AnyProjection): DocSerializer | undefined {
  if (serializers.has(projection)) return serializers.get(projection);
  const document = projection.document as TObject | undefined;
  const served = document && (projection.hidden?.length ? Type.Omit(document, [...projection.hidden]) : document);
  const serializer = served && { serialize: fastJson(served) as (doc: object) => string, fields: new Set(Object.keys(served.properties ?? {})) };
  serializers.set(projection, serializer);
  return serializer;
}

/** A document as stored before a change: whether there was one, and its index entries. */
interface Before {
  readonly existed: boolean;
  readonly entries: readonly IndexKey[];
}

/** A document's index entries, each ending in the document's key (see `documentKeyOf`). */
function entriesOf(projection: AnyProjection, key: ViewKey, doc: object | undefined): IndexKey[] {
  if (!doc || !projection.indexes) return [];
  const k = keyString(key);
  return projection.indexes(doc).map((e) => [...e, k]);
}

function beforeOf(projection: AnyProjection, key: ViewKey, doc: object | undefined): Before {
  return { existed: doc !== undefined, entries: entriesOf(projection, key, doc) };
}

/** Two index entries alike, element by element (as their JSON would be, but for NaN). */
function sameEntry(a: IndexKey, b: IndexKey): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Past this many pairs of old and new entries, they are compared through sets of their JSON. */
const SCAN_PAIRS = 1024;

/**
 * Removes the entries of `old` that `next` lacks, then puts those `next` adds. A document
 * has a few entries (the shop list's twelve), so they are compared pair by pair: the
 * sets of their JSON this replaced were 6% of the projector's busy time under the mixed
 * command load. A NaN differs from itself here; its entry is removed and put again.
 */
function updateIndex(generation: ViewGeneration, old: readonly IndexKey[], next: readonly IndexKey[]): void {
  if (old.length === next.length && old.every((e, i) => sameEntry(e, next[i]!))) return;
  if (old.length * next.length <= SCAN_PAIRS) {
    for (const e of old) if (!next.some((n) => sameEntry(n, e))) generation.index.remove(e);
    for (const e of next) if (!old.some((o) => sameEntry(o, e))) generation.index.put(e);
    return;
  }
  const oldJson = old.map((e) => JSON.stringify(e));
  const nextJson = next.map((e) => JSON.stringify(e));
  const nextSet = new Set(nextJson);
  const oldSet = new Set(oldJson);
  for (let i = 0; i < old.length; i++) if (!nextSet.has(oldJson[i]!)) generation.index.remove(old[i]!);
  for (let i = 0; i < next.length; i++) if (!oldSet.has(nextJson[i]!)) generation.index.put(next[i]!);
}

/**
 * Writes a document as changed by the event at `position`, and keeps its index entries in
 * step with it. `known` is the document as stored before, when the caller has read it already.
 */
export function write(generation: ViewGeneration, projection: AnyProjection, key: ViewKey, doc: object | undefined, position: number, known?: Before): void {
  const { existed, entries: old } = known ?? beforeOf(projection, key, generation.docs.get(key));
  if (projection.indexes) updateIndex(generation, old, entriesOf(projection, key, doc));
  if (doc === undefined) {
    if (existed) generation.docs.remove(key);
  } else {
    generation.docs.put(key, encodeDoc(doc, position, projection.hidden, serializerOf(projection)));
  }
}

/** Applies one parked event again to its projection's active view and unparks it; throws if the fold still fails. */
export function reapply(
  views: ViewStore,
  target: Target,
  commit: StoredCommit,
  eventIndex: number,
  upcast: (aggregate: string, event: StoredEvent) => StoredEvent,
): void {
  const { projection, gen } = target;
  const raw = commit.events[eventIndex];
  views.transaction(() => {
    if (raw) {
      const event = upcast(commit.aggregate, raw);
      const meta: EventMeta = { aggregate: commit.aggregate, id: commit.id, version: commit.version, position: commit.position, at: event.at, ...(commit.metadata ? { metadata: commit.metadata } : {}) };
      const key = projection.key(event, meta);
      const generation = views.generation(projection.name, gen);
      // The document's position becomes the parked event's: a value its ETag has not had, as that event never changed it.
      if (key !== undefined) write(generation, projection, key, checkedFold(projection, generation.docs.get(key), event, meta, key), commit.position);
    }
    views.unpark(projection.name, commit.position, eventIndex);
  });
}
