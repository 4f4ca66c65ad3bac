import { isProcessStream, type AnyProcess } from '../core/reactions.js';
import { defineProjection, type AnyProjection, type EventMeta } from '../core/projection.js';
import type { StoredEvent } from '../core/aggregate.js';
import { RECORD } from './instances.js';

/** The name of converge's view of process instances: their pending timers and whether they are open. */
export const PROCESSES_VIEW = 'converge-processes';

/** One process instance as the view holds it. */
export interface InstanceDoc {
  readonly process: string;
  readonly id: string;
  readonly open: boolean;
  /** Pending timers by name: when each falls due (ms since the epoch) and its scheduling's `seq`. */
  readonly timers: Readonly<Record<string, { readonly due: number; readonly seq: number }>>;
}

type RecordEvent = { readonly type: (typeof RECORD)[keyof typeof RECORD]; readonly data: Record<string, unknown> };

/**
 * The due index of every process's timers (docs/architecture.md, "Reactions"): a view
 * folded from the instance streams like any other, so it is kept by each host's projector,
 * survives restarts in LMDB, and is rebuilt from `EVENTS` like any view. Its index entries:
 * `['due', due, process, name]` per pending timer, which the timer service scans from the
 * start to find what has fallen due; `['pending', process, due, name]`, to count a process's
 * pending timers and find its next; `['open', process]` per open instance.
 */
export function processesView(processes: readonly AnyProcess[]): AnyProjection {
  const names = new Set(processes.map((p) => `~${p.name}`));
  return defineProjection<RecordEvent, InstanceDoc>({
    name: PROCESSES_VIEW,
    version: 1,
    handles: [RECORD.handled, RECORD.scheduled, RECORD.cancelled, RECORD.fired, RECORD.ended],
    key: (_event: StoredEvent<RecordEvent>, meta: EventMeta) => (isProcessStream(meta.aggregate) && names.has(meta.aggregate) ? [meta.aggregate.slice(1), meta.id] : undefined),
    fold(doc, event, meta) {
      const current: InstanceDoc = doc ?? { process: meta.aggregate.slice(1), id: meta.id, open: true, timers: {} };
      const name = String(event.data['name']);
      switch (event.type) {
        case RECORD.scheduled:
          return { ...current, timers: { ...current.timers, [name]: { due: Date.parse(String(event.data['due'])), seq: Number(event.data['seq']) } } };
        case RECORD.cancelled:
        case RECORD.fired: {
          const { [name]: _gone, ...timers } = current.timers;
          return { ...current, timers };
        }
        case RECORD.ended:
          return { ...current, open: false, timers: {} };
        default:
          return current;
      }
    },
    indexes: (doc) => [
      ...Object.entries(doc.timers).flatMap(([name, t]) => [
        ['due', t.due, doc.process, name],
        ['pending', doc.process, t.due, name],
      ]),
      ...(doc.open ? [['open', doc.process]] : []),
    ],
  });
}
