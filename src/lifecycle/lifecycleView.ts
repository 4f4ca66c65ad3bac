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
  /** The position of the commit that finished it, its last. */
  readonly position: number;
  /** When that commit was made, in ms since the epoch. */
  readonly finishedAt: number;
}

/**
 * The aggregate names the archive takes, each with how long a finished instance stays
 * live: every aggregate that declares `finished` (its `archiveAfterMs`, else `afterMs`), and
 * every process's instance streams (`afterMs`).
 */
export function archivables(aggregates: readonly AnyAggregate[], processes: readonly AnyProcess[], afterMs: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of aggregates) if (a.finished) out.set(a.name, a.archiveAfterMs ?? afterMs);
  for (const p of processes) out.set(processStream(p.name), afterMs);
  return out;
}

/**
 * The archiver's work list (docs/architecture.md, "Archive"): one document per aggregate
 * whose last commit finished it (`metadata.finished`) and per ended process instance. A
 * later commit that does not finish the aggregate removes it, and so does the archive
 * record that archives it. The index `['finished', aggregate, finishedAt, id]` is scanned
 * per aggregate up to `now - archiveAfterMs`.
 */
export function lifecycleView(aggregates: readonly AnyAggregate[], processes: readonly AnyProcess[]): AnyProjection {
  const names = new Set(archivables(aggregates, processes, 0).keys());
  const processStreams = new Set(processes.map((p) => processStream(p.name)));
  const handles = new Set<string>([ARCHIVED, ...Object.values(RECORD)]);
  for (const a of aggregates) {
    if (!a.finished) continue;
    if (!a.events) throw new TypeError(`aggregate ${a.name} declares finished, so it must declare its events (defineEvents): the archive's work list follows them`);
    for (const type of Object.keys(a.events)) handles.add(type);
  }
  return defineProjection<{ type: string; data: object }, FinishedDoc>({
    name: LIFECYCLE_VIEW,
    version: 1,
    handles: [...handles],
    key(event: StoredEvent<{ type: string; data: object }>, meta: EventMeta) {
      if (meta.aggregate === ARCHIVE_AGGREGATE) {
        const archived = event.data as unknown as ArchivedAggregate;
        return event.type === ARCHIVED && names.has(archived.aggregate) ? [archived.aggregate, archived.id] : undefined;
      }
      return names.has(meta.aggregate) ? [meta.aggregate, meta.id] : undefined;
    },
    fold(doc, event, meta) {
      if (meta.aggregate === ARCHIVE_AGGREGATE) {
        const archived = event.data as unknown as ArchivedAggregate;
        const last = Math.max(0, ...archived.commits.map((c) => c.position));
        return doc && doc.position > last ? doc : undefined;
      }
      const finished = { aggregate: meta.aggregate, id: meta.id, position: meta.position, finishedAt: Date.parse(meta.at) };
      // An ended instance takes no input after `~Ended`; an aggregate is finished by its last commit alone.
      if (processStreams.has(meta.aggregate)) return event.type === RECORD.ended ? finished : doc;
      return meta.metadata?.finished ? finished : undefined;
    },
    indexes: (doc) => [['finished', doc.aggregate, doc.finishedAt, doc.id]],
  });
}
