import { ARCHIVE_AGGREGATE, ARCHIVED, type ArchivedAggregate } from '../core/archive.js';
import type { AnyAggregate, StoredEvent } from '../core/aggregate.js';
import { defineProjection, type AnyProjection, type EventMeta } from '../core/projection.js';
import { processStream, type AnyProcess } from '../core/reactions.js';
import { RECORD } from '../react/instances.js';

/** The name of converge's view of finished aggregates waiting for the archive. */
export const LIFECYCLE_VIEW = 'converge-lifecycle';

/** A finished aggregate, or an ended process instance, as the view holds it. */
export interface FinishedDoc {
  readonly aggregate: string;
  readonly id: string;
  /** The position of its last commit, the one that finished it. */
  readonly position: number;
  /** When it falls due for the archive: the last commit's time plus its `archiveAfterMs`, in ms since the epoch. */
  readonly dueAt: number;
}

/** What can be archived, and after how long: each aggregate that declares `finished`, each process. */
export function archivables(aggregates: readonly AnyAggregate[], processes: readonly AnyProcess[], defaultAfterMs: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of aggregates) if (a.finished) out.set(a.name, a.archiveAfterMs ?? defaultAfterMs);
  for (const p of processes) out.set(processStream(p.name), defaultAfterMs);
  return out;
}

/**
 * The archiver's work list (docs/architecture.md, "Archive"): a view with one document per
 * aggregate whose last commit finished it (`metadata.finished`), which a later commit that
 * does not finish it removes, as does the archive record that archives it. Its index
 * `['due', dueAt, aggregate, id]` is scanned from the start for what has fallen due.
 */
export function lifecycleView(aggregates: readonly AnyAggregate[], processes: readonly AnyProcess[], defaultAfterMs: number): AnyProjection {
  const afterMs = archivables(aggregates, processes, defaultAfterMs);
  const handles = new Set<string>([ARCHIVED, RECORD.handled]);
  for (const a of aggregates) {
    if (!a.finished) continue;
    if (!a.events) throw new TypeError(`aggregate ${a.name} declares finished, so it must declare its events (defineEvents): the archive follows them`);
    for (const type of Object.keys(a.events)) handles.add(type);
  }
  return defineProjection<{ type: string; data: object }, FinishedDoc>({
    name: LIFECYCLE_VIEW,
    version: 1,
    handles: [...handles],
    key(event: StoredEvent<{ type: string; data: object }>, meta: EventMeta) {
      if (meta.aggregate === ARCHIVE_AGGREGATE) {
        const archived = event.data as unknown as ArchivedAggregate;
        return event.type === ARCHIVED && afterMs.has(archived.aggregate) ? [archived.aggregate, archived.id] : undefined;
      }
      return afterMs.has(meta.aggregate) ? [meta.aggregate, meta.id] : undefined;
    },
    fold(doc, event, meta) {
      if (meta.aggregate === ARCHIVE_AGGREGATE) {
        const archived = event.data as unknown as ArchivedAggregate;
        const last = Math.max(0, ...archived.commits.map((c) => c.position));
        return doc && doc.position > last ? doc : undefined;
      }
      if (!meta.metadata?.finished) return undefined;
      return { aggregate: meta.aggregate, id: meta.id, position: meta.position, dueAt: Date.parse(meta.at) + (afterMs.get(meta.aggregate) ?? defaultAfterMs) };
    },
    indexes: (doc) => [['due', doc.dueAt, doc.aggregate, doc.id]],
  });
}
