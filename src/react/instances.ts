import type { DomainEvent, StoredEvent } from '../core/aggregate.js';
import type { Commit } from '../core/eventStore.js';
import type { AnyProcess, ProcessDecision, ProcessInput, ReactionCommand, TimerChange } from '../core/reactions.js';
import { schemaIssues } from '../core/schemas.js';

// A process instance as its stream records it (docs/architecture.md, "Reactions"). Each
// input the instance handles is one commit of `events.~<process>.<id>` holding what the
// decision was: converge's records (`~`-prefixed types) and the process's own events.

/** The types of converge's records in a process instance's stream. */
export const RECORD = {
  /** The input handled: `e:<position>:<index>` for an event, `t:<name>:<seq>` for a timer. */
  handled: '~Handled',
  /** The commands to send: the outbox, relayed after the commit. */
  issued: '~Issued',
  scheduled: '~Scheduled',
  cancelled: '~Cancelled',
  fired: '~Fired',
  ended: '~Ended',
} as const;

/** A pending timer of an instance. */
export interface InstanceTimer {
  /** When it falls due, ms since the epoch. */
  readonly due: number;
  /** Which scheduling this is: a timer scheduled again under its name gets the next one, so an old firing is told apart. */
  readonly seq: number;
  readonly data: object;
}

/** What converge knows of a process instance: the fold of its stream. */
export interface InstanceMemory {
  /** The process's own state: the fold of its own events by its `evolve`. */
  readonly state: unknown;
  readonly version: number;
  /** The position of its last commit; 0 for an instance not started. */
  readonly position: number;
  readonly ended: boolean;
  readonly timers: Readonly<Record<string, InstanceTimer>>;
  readonly nextSeq: number;
  /** The last event input it handled, `[position, index]`: inputs come in position order, so anything not after it was handled. */
  readonly lastEvent: readonly [number, number];
  /** The conversation that started it: its timers' firings belong to it too. */
  readonly correlationId?: string;
}

/** The memory of an instance that has not started. */
export function freshInstance(process: AnyProcess): InstanceMemory {
  return { state: process.initialState(), version: 0, position: 0, ended: false, timers: {}, nextSeq: 1, lastEvent: [0, -1] };
}

/** Folds one commit of an instance's stream: converge's records into the memory, the process's own events through `evolve`. */
export function foldInstance(process: AnyProcess, memory: InstanceMemory, commit: Commit, position: number): InstanceMemory {
  let { state, ended, nextSeq, lastEvent } = memory;
  const timers: Record<string, InstanceTimer> = { ...memory.timers };
  for (const event of commit.events) {
    const data = event.data as Record<string, unknown>;
    switch (event.type) {
      case RECORD.handled: {
        const input = String(data['input']);
        if (input.startsWith('e:')) {
          const [, p, i] = input.split(':');
          lastEvent = [Number(p), Number(i)];
        }
        break;
      }
      case RECORD.scheduled:
        timers[String(data['name'])] = { due: Date.parse(String(data['due'])), seq: Number(data['seq']), data: (data['data'] as object | undefined) ?? {} };
        nextSeq = Math.max(nextSeq, Number(data['seq']) + 1);
        break;
      case RECORD.cancelled:
      case RECORD.fired:
        delete timers[String(data['name'])];
        break;
      case RECORD.ended:
        ended = true;
        break;
      case RECORD.issued:
        break;
      default:
        state = process.evolve(state, event);
    }
  }
  const correlationId = memory.correlationId ?? commit.metadata?.correlationId;
  return { state, version: commit.version, position, ended, timers, nextSeq, lastEvent, ...(correlationId === undefined ? {} : { correlationId }) };
}

/**
 * The time of an input, the `now` its decision sees: the event's (when its command was
 * received), or the timer's due time. So a decision is the same whenever it is made, and an
 * `after` timer counts from the input, not from when a lagging reaction got to it.
 */
export function inputTime(input: ProcessInput, fallback: number): number {
  const t = Date.parse(input.kind === 'event' ? input.event.at : input.due);
  return Number.isFinite(t) ? t : fallback;
}

/** Whether an event input was handled by the instance already. */
export function handledAlready(memory: InstanceMemory, position: number, eventIndex: number): boolean {
  const [p, i] = memory.lastEvent;
  return position < p || (position === p && eventIndex <= i);
}

/** An input's key: its `~Handled` record and the id of the commit that records it. */
export function inputKey(input: ProcessInput): string {
  return input.kind === 'event' ? `e:${input.meta.position}:${input.meta.eventIndex}` : `t:${input.name}:${(input as { seq?: number }).seq ?? 0}`;
}

/**
 * The records of a decision, in the order they are folded: the input handled (and the timer
 * fired), the process's own events, the timers scheduled or cancelled, the commands to send,
 * and the end (which cancels what is still pending). Checks the process's own events
 * against its schemas, when it declared them; throws on one that does not fit.
 */
export function decisionRecords(
  process: AnyProcess,
  memory: InstanceMemory,
  input: ProcessInput & { readonly seq?: number },
  decision: ProcessDecision,
  now: number,
): DomainEvent[] {
  const records: DomainEvent[] = [{ type: RECORD.handled, data: { input: inputKey(input) } }];
  if (input.kind === 'timer') records.push({ type: RECORD.fired, data: { name: input.name, seq: input.seq ?? 0 } });
  for (const event of decision.events ?? []) {
    checkOwnEvent(process, event);
    records.push({ type: event.type, data: event.data });
  }
  const pending = new Set(Object.keys(memory.timers));
  if (input.kind === 'timer') pending.delete(input.name);
  let seq = memory.nextSeq;
  for (const change of decision.timers ?? []) {
    if ('cancel' in change) {
      if (pending.delete(change.cancel)) records.push({ type: RECORD.cancelled, data: { name: change.cancel } });
      continue;
    }
    records.push({ type: RECORD.scheduled, data: { name: change.schedule, due: new Date(dueOf(change, now)).toISOString(), seq: seq++, data: change.data ?? {} } });
    pending.add(change.schedule);
  }
  const commands: ReactionCommand[] = [...(decision.commands ?? [])].map(({ aggregate, id, type, data }) => ({ aggregate, id, type, data }));
  if (commands.length > 0) records.push({ type: RECORD.issued, data: { commands } });
  if (decision.end) {
    for (const name of pending) records.push({ type: RECORD.cancelled, data: { name } });
    records.push({ type: RECORD.ended, data: {} });
  }
  return records;
}

/** The commands a recorded commit issued (its outbox), if any. */
export function issuedBy(events: readonly StoredEvent[]): ReactionCommand[] {
  const issued = events.find((e) => e.type === RECORD.issued);
  return issued ? ((issued.data as { commands?: ReactionCommand[] }).commands ?? []) : [];
}

function dueOf(change: Exclude<TimerChange, { cancel: string }>, now: number): number {
  if ('after' in change) {
    if (!Number.isFinite(change.after) || change.after < 0) throw new RangeError(`timer ${change.schedule}: after must be a number of ms, 0 or more`);
    return now + change.after;
  }
  const at = change.at instanceof Date ? change.at.getTime() : Date.parse(change.at);
  if (!Number.isFinite(at)) throw new RangeError(`timer ${change.schedule}: at is not a time: ${String(change.at)}`);
  return at;
}

function checkOwnEvent(process: AnyProcess, event: DomainEvent): void {
  if (event.type.startsWith('~')) throw new TypeError(`${process.name} decided an event named ${event.type}: names starting with ~ are converge's`);
  const table = process.events;
  if (!table) return;
  const schema = Object.hasOwn(table, event.type) ? table[event.type] : undefined;
  const issues = schema ? schemaIssues(schema, event.data) : [{ path: '/type', message: `${event.type} is not one of ${process.name}'s events` }];
  if (issues.length > 0) throw new TypeError(`${process.name} decided ${event.type}, which does not fit its schema: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`);
}
