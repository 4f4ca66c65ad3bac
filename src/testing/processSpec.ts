import type { DomainEvent, StoredEvent } from '../core/aggregate.js';
import type { AnyProcess, AnyReactor, ProcessInput, ReactionCommand, ReactionMeta, ReactionResult } from '../core/reactions.js';
import { decisionRecords, foldInstance, freshInstance, handledAlready, inputTime, RECORD, type InstanceMemory } from '../react/instances.js';
import { upcaster } from '../read/apply.js';
import { nodeAssert, SPEC_TIME, type Assertions } from './assert.js';
import { storedCommits, type SpecCommit } from './projectionSpec.js';

/** What one input came to for a process instance: its decision, recorded as the runtime records it. */
export interface ProcessOutcome {
  /** The instance the input was for; undefined when the process ignored it. */
  readonly instance: string | undefined;
  readonly commands: readonly ReactionCommand[];
  /** Timers scheduled (`at`: when each falls due) and cancelled. */
  readonly schedules: ReadonlyArray<{ readonly name: string; readonly at: string; readonly data: object }>;
  readonly cancels: readonly string[];
  /** The process's own events. */
  readonly events: readonly DomainEvent[];
  readonly ended: boolean;
  /** The instance's state after the input. */
  readonly state: unknown;
  /** Asserts each part given: the commands, schedules, cancels, events and whether it ended. */
  then(expected: {
    readonly commands?: readonly ReactionCommand[];
    readonly schedules?: ReadonlyArray<{ readonly name: string; readonly at: string; readonly data?: object }>;
    readonly cancels?: readonly string[];
    readonly events?: readonly DomainEvent[];
    readonly ended?: boolean;
  }): ProcessOutcome;
  /** Asserts that the process had nothing to do with the input (not correlated, not started, ended, or a stale timer). */
  ignored(): void;
}

/**
 * Given/when/then for a process manager, on the runtime's own decision path (docs/
 * architecture.md, "Reactions"): the given commits are routed by `correlate` and decided
 * one after another, each decision recorded and folded as the instance's stream holds it;
 * then the input of `when` (a commit's events, or a timer of the instance falling due) is
 * decided, and its outputs asserted.
 *
 * ```ts
 * processSpec(orderAcceptance, { settings: { orders: { acceptTimeoutMs: 600_000 } } })
 *   .given(commit(order, 'o1', placed))
 *   .whenTimer('accept')
 *   .then({ commands: [{ aggregate: 'order', id: 'o1', type: 'RejectOrder', data: { reason: 'not_accepted_in_time' } }], ended: true });
 * ```
 *
 * A decision's `now` is its input's time, as in the runtime: the event's (`SPEC_TIME`, or the
 * time `commitAt` gives), or the timer's due time.
 */
export function processSpec(process: AnyProcess, opts: { readonly settings?: unknown; readonly assert?: Assertions } = {}) {
  const assert = opts.assert ?? nodeAssert;
  return {
    given(...given: SpecCommit[]) {
      const upcast = upcaster([...new Set(given.map((c) => c.definition))]);
      let instance: string | undefined;
      let memory: InstanceMemory = freshInstance(process);
      const run = (input: ProcessInput & { readonly seq?: number }, id: string, start: boolean): Omit<ProcessOutcome, 'then' | 'ignored'> | undefined => {
        if (memory.ended) return undefined;
        const now = inputTime(input, Date.parse(SPEC_TIME));
        if (input.kind === 'event' && ((memory.version === 0 && !start) || handledAlready(memory, input.meta.position, input.meta.eventIndex))) return undefined;
        const decision = process.decide(memory.state, input, { id, now: new Date(now), settings: opts.settings });
        const records = decisionRecords(process, memory, input, decision, now);
        const at = new Date(now).toISOString();
        const events = records.map((e): StoredEvent => ({ type: e.type, data: e.data, at }));
        memory = foldInstance(process, memory, { commandId: 'spec', commandType: 'Spec', aggregate: `~${process.name}`, id, version: memory.version + events.length, events }, memory.position + 1);
        instance = id;
        const data = (type: string) => events.filter((e) => e.type === type).map((e) => e.data as Record<string, unknown>);
        return {
          instance: id,
          commands: data(RECORD.issued).flatMap((d) => d['commands'] as ReactionCommand[]),
          schedules: data(RECORD.scheduled).map((d) => ({ name: String(d['name']), at: String(d['due']), data: d['data'] as object })),
          cancels: data(RECORD.cancelled).map((d) => String(d['name'])),
          events: events.filter((e) => !e.type.startsWith('~')).map(({ type, data }) => ({ type, data })),
          ended: memory.ended,
          state: memory.state,
        };
      };
      /** Decides each event of the commits that the process correlates; the last decision's outcome. */
      const feed = (commits: readonly SpecCommit[], firstPosition: number) => {
        let last: Omit<ProcessOutcome, 'then' | 'ignored'> | undefined;
        for (const commit of storedCommits(commits, firstPosition)) {
          commit.events.forEach((raw, eventIndex) => {
            const event = upcast(commit.aggregate, raw);
            if (!process.handles.includes(event.type)) return;
            const meta: ReactionMeta = { aggregate: commit.aggregate, id: commit.id, version: commit.version, position: commit.position, at: event.at, eventIndex };
            const target = process.correlate(event, meta);
            if (!target) return;
            assert.deepEqual(instance === undefined || target.id === instance, true, `every input of a spec is for one instance (${instance}, then ${target.id})`);
            last = run({ kind: 'event', event, meta }, target.id, target.start === true) ?? last;
          });
        }
        return last;
      };
      feed(given, 1);
      const outcome = (result: Omit<ProcessOutcome, 'then' | 'ignored'> | undefined): ProcessOutcome => {
        const o: ProcessOutcome = {
          ...(result ?? { instance: undefined, commands: [], schedules: [], cancels: [], events: [], ended: memory.ended, state: memory.state }),
          then(expected) {
            assert.deepEqual(result !== undefined, true, `${process.name} decided on the input`);
            for (const key of ['commands', 'schedules', 'cancels', 'events', 'ended'] as const) {
              if (expected[key] === undefined) continue;
              const actual = key === 'schedules' ? o.schedules.map((s) => ('data' in (expected.schedules?.[0] ?? {}) ? s : { name: s.name, at: s.at })) : o[key];
              assert.deepEqual(actual, expected[key], `${process.name}: ${key}`);
            }
            return o;
          },
          ignored() {
            assert.deepEqual(result, undefined, `${process.name} ignores the input`);
          },
        };
        return o;
      };
      return {
        /** The state the given inputs folded to. */
        get state() {
          return memory.state;
        },
        /** Decides the events of these commits, positioned after the given ones (`commitAt` sets their time). */
        when: (...commits: SpecCommit[]) => outcome(feed(commits, given.length + 1)),
        /** Fires the instance's pending timer `name` (failing the spec when there is none), at its due time. */
        whenTimer(name: string): ProcessOutcome {
          const pending = memory.timers[name];
          assert.deepEqual(pending !== undefined, true, `${process.name} has a pending timer ${name}`);
          if (!pending || instance === undefined) return outcome(undefined);
          return outcome(run({ kind: 'timer', name, data: pending.data, due: new Date(pending.due).toISOString(), seq: pending.seq }, instance, false));
        },
      };
    },
  };
}

/**
 * When/then for a reactor: its `handle` runs for each event of the commits it handles, as
 * the runtime runs it, and the commands it sends are recorded (each answered by `answer`,
 * accepted by default) and asserted.
 *
 * ```ts
 * await reactorSpec(reviewsOnOrders).when(commit(review, 'r1', posted)).then([{ aggregate: 'order', ... }]);
 * ```
 */
export function reactorSpec(
  reactor: AnyReactor,
  opts: { readonly services?: unknown; readonly answer?: (command: ReactionCommand) => ReactionResult; readonly assert?: Assertions } = {},
) {
  const assert = opts.assert ?? nodeAssert;
  const handle = async (commits: readonly SpecCommit[]): Promise<ReactionCommand[]> => {
    const upcast = upcaster([...new Set(commits.map((c) => c.definition))]);
    const sent: ReactionCommand[] = [];
    const answer = opts.answer ?? ((c: ReactionCommand): ReactionResult => ({ kind: 'accepted', id: c.id, version: 1, position: 1, events: [] }));
    for (const commit of storedCommits(commits)) {
      for (const [eventIndex, raw] of commit.events.entries()) {
        const event = upcast(commit.aggregate, raw);
        if (!reactor.handles.includes(event.type)) continue;
        const meta: ReactionMeta = { aggregate: commit.aggregate, id: commit.id, version: commit.version, position: commit.position, at: event.at, eventIndex };
        await reactor.handle(event, meta, {
          services: opts.services,
          dispatch: async (command: ReactionCommand) => {
            sent.push({ aggregate: command.aggregate, id: command.id, type: command.type, data: command.data });
            return answer(command);
          },
        });
      }
    }
    return sent;
  };
  return {
    when: (...commits: SpecCommit[]) => ({
      /** Runs the reactor on the commits and asserts the commands it sent, in order; answers them. */
      then: async (expected: readonly ReactionCommand[]): Promise<{ readonly commands: readonly ReactionCommand[] }> => {
        const commands = await handle(commits);
        assert.deepEqual(commands, expected, `${reactor.name} sends ${expected.length} command(s)`);
        return { commands };
      },
    }),
  };
}
