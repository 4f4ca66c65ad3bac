/**
 * converge/testing: specifications in the given/when/then form, run on converge's own code
 * paths rather than on a copy of them.
 *
 * - `deciderSpec`: the history is folded by the runtime's rehydration (upcasters included),
 *   then `decide` runs as the actor host runs it.
 * - `projectionSpec`: commits go through the projector's own apply path (upcasters, the
 *   `handles` filter, index entries, checkpoints and the projection's error policy) into
 *   an in-memory view store with LMDB's key order.
 *
 * Assertions throw `AssertionError` (node:assert) unless an `assert` of your test
 * framework's is given.
 */
import { deepStrictEqual } from 'node:assert/strict';
import type { AggregateDefinition, AnyAggregate, Decision, DomainCommand, DomainEvent, StoredEvent } from './core/aggregate.js';
import type { Commit, StoredCommit } from './core/eventStore.js';
import type { Projection, ViewKey } from './core/projection.js';
import { applyBatch, upcaster, type Target } from './read/apply.js';
import { createMemoryViews } from './read/memoryViews.js';
import type { IndexKey, ParkedEvent } from './read/viewStore.js';
import { applyCommit, emptyMemory } from './write/rehydrate.js';

/** The one assertion the specs make; tap's `t.same` and node's `assert.deepStrictEqual` both fit. */
export interface Assertions {
  deepEqual(actual: unknown, expected: unknown, message?: string): void;
}

const nodeAssert: Assertions = { deepEqual: (actual, expected, message) => deepStrictEqual(actual, expected, message) };

/** The time stamped on events a spec does not date. */
export const SPEC_TIME = '2026-01-01T00:00:00.000Z';

/**
 * Given/when/then for an aggregate's decider:
 *
 * ```ts
 * deciderSpec(shop)
 *   .given([{ type: 'ShopRegistered', data: { ... } }])
 *   .when({ type: 'RenameShop', data: { name: 'New' } })
 *   .then([{ type: 'ShopRenamed', data: { name: 'New' } }]);
 * ```
 *
 * `given` takes the aggregate's events and `deps`, the states of other aggregates the
 * command reads; `givenStored` takes events as stored, of any version, which the
 * aggregate's upcaster turns into the current shape as on rehydration.
 */
export function deciderSpec<S, C extends DomainCommand, E extends DomainEvent, Deps extends object>(
  aggregate: AggregateDefinition<S, C, E, Deps>,
  opts: { readonly assert?: Assertions } = {},
) {
  const assert = opts.assert ?? nodeAssert;
  const given = (history: readonly DomainEvent[], deps: Deps = {} as Deps) => {
    const events = history.map((e): StoredEvent => ({ type: e.type, data: e.data, at: (e as Partial<StoredEvent>).at ?? SPEC_TIME }));
    const base = emptyMemory(aggregate as AnyAggregate);
    const commit: Commit = { commandId: 'given', commandType: 'Given', aggregate: aggregate.name, id: 'spec', version: events.length, events };
    const state = (events.length > 0 ? applyCommit(aggregate as AnyAggregate, base, commit, 1, 1) : base).state as S;
    return {
      /** The state the history folds to. */
      state,
      when(command: C) {
        const decision: Decision<E> = aggregate.decide(state, command, deps);
        return {
          decision,
          then(expected: readonly E[]): void {
            assert.deepEqual(decision, { ok: true, events: expected }, `${command.type} emits ${expected.map((e) => e.type).join(', ') || 'nothing'}`);
          },
          rejects(reason: string): void {
            assert.deepEqual(decision, { ok: false, reason }, `${command.type} is rejected with ${reason}`);
          },
        };
      },
    };
  };
  return {
    given: (history: readonly E[], deps?: Deps) => given(history, deps),
    givenStored: (history: readonly DomainEvent[], deps?: Deps) => given(history, deps),
  };
}

/** A commit as a projection spec takes it: whose events, and optionally when. */
export interface SpecCommit {
  readonly aggregate: string;
  readonly id: string;
  readonly events: readonly DomainEvent[];
  /** The events' time; `SPEC_TIME` by default. */
  readonly at?: string;
}

/** A commit of `events` to aggregate `aggregate` `id`, for `projectionSpec(...).given(...)`. */
export function commit(aggregate: string, id: string, ...events: DomainEvent[]): SpecCommit {
  return { aggregate, id, events };
}

/** The same, at a given time. */
export function commitAt(at: string, aggregate: string, id: string, ...events: DomainEvent[]): SpecCommit {
  return { aggregate, id, events, at };
}

/** What a projection made of the commits it was given. */
export interface ProjectionOutcome<D extends object> {
  /** The document at `key`, as the view holds it. */
  doc(key: ViewKey): D | undefined;
  /** Every document with its key, in LMDB's key order. */
  documents(): Array<{ key: ViewKey; doc: D }>;
  /** Every index entry (prefix plus document key), in LMDB's key order. */
  indexEntries(): IndexKey[];
  /** The documents whose index entries start with `prefix`, in index order, read as query routes read them. */
  byIndex(prefix: readonly (string | number)[]): D[];
  /** Events the fold threw on and the `park` policy set aside. */
  parked(): ParkedEvent[];
  /** Set when a fold threw under the `stop` policy: where it stopped and why. */
  readonly stopped: { readonly position: number; readonly error: string } | undefined;
  /** The position the view has applied. */
  readonly position: number;
  /** Asserts that the document at `key` is `expected` (`undefined`: that there is none). */
  then(key: ViewKey, expected: D | undefined): ProjectionOutcome<D>;
}

/**
 * Given/when/then for a projection, on the projector's own apply path:
 *
 * ```ts
 * projectionSpec(shopDisplay, { aggregates: [shop, order] })
 *   .given(commit('shop', 's1', { type: 'ShopRegistered', data: { ... } }))
 *   .then('s1', { id: 's1', ... });
 * ```
 *
 * Commits take positions 1, 2, … in the order given, and each aggregate's version counts
 * its events, as the event store numbers them. `aggregates` provide the upcasters.
 */
export function projectionSpec<E extends DomainEvent, D extends object>(
  projection: Projection<E, D>,
  opts: { readonly aggregates?: readonly AnyAggregate[]; readonly assert?: Assertions; readonly now?: () => string } = {},
) {
  const assert = opts.assert ?? nodeAssert;
  const upcast = upcaster(opts.aggregates ?? []);
  return {
    given(...commits: SpecCommit[]): ProjectionOutcome<D> {
      const views = createMemoryViews();
      const target: Target = { projection, gen: 1 };
      const versions = new Map<string, number>();
      const stored: StoredCommit[] = commits.map((c, i) => {
        const key = `${c.aggregate}/${c.id}`;
        const version = (versions.get(key) ?? 0) + c.events.length;
        versions.set(key, version);
        const events = c.events.map((e) => ({ type: e.type, data: e.data, at: c.at ?? SPEC_TIME }));
        return { commandId: `spec-${i + 1}`, commandType: 'Spec', aggregate: c.aggregate, id: c.id, version, events, position: i + 1 };
      });
      // One commit per batch, as a live projector under light load applies them.
      for (const c of stored) applyBatch(views, [target], [c], upcast, opts.now ?? (() => SPEC_TIME));
      const generation = () => views.generation(projection.name, 1);
      const outcome: ProjectionOutcome<D> = {
        doc: (key) => generation().docs.get(key) as D | undefined,
        documents: () => views.documents(projection.name, 1) as Array<{ key: ViewKey; doc: D }>,
        indexEntries: () => views.indexEntries(projection.name, 1),
        byIndex: (prefix) => {
          const items: D[] = [];
          let cursor: string | undefined;
          do {
            const page = views.byIndex(projection, prefix, { limit: 100, ...(cursor === undefined ? {} : { cursor }) });
            items.push(...page.items);
            cursor = page.next;
          } while (cursor !== undefined);
          return items;
        },
        parked: () => views.parked(projection.name),
        stopped: target.stopped,
        position: views.checkpoint(projection.name, 1),
        then(key, expected) {
          assert.deepEqual(outcome.doc(key), expected, `${projection.name} ${JSON.stringify(key)}`);
          return outcome;
        },
      };
      return outcome;
    },
  };
}
