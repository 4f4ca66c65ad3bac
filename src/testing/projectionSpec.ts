import type { AnyAggregate, DomainEvent, EventsOf, NameOf } from '../core/aggregate.js';
import type { StoredCommit } from '../core/eventStore.js';
import type { Projection, ViewKey } from '../core/projection.js';
import { applyBatch, upcaster, type Target } from '../read/apply.js';
import { createMemoryViews } from '../read/memoryViews.js';
import type { IndexKey, ParkedEvent } from '../read/viewStore.js';
import { nodeAssert, SPEC_TIME, type Assertions } from './assert.js';

/** A commit as the specs take it: whose events, and optionally when. Made by `commit`. */
export interface SpecCommit<N extends string = string> {
  /** The aggregate, so that its upcaster reads `events` as the runtime would. */
  readonly definition: AnyAggregate;
  readonly aggregate: N;
  readonly id: string;
  readonly events: readonly DomainEvent[];
  /** The events' time; `SPEC_TIME` by default. */
  readonly at?: string;
}

/**
 * A commit of `events` to the aggregate `aggregate` (its definition, so the name cannot be
 * misspelt and the events are typed by it) with id `id`, for `given`.
 */
export function commit<A extends AnyAggregate>(aggregate: A, id: string, ...events: EventsOf<A>[]): SpecCommit<NameOf<A>> {
  return { definition: aggregate, aggregate: aggregate.name as NameOf<A>, id, events };
}

/** The same, at a given time. */
export function commitAt<A extends AnyAggregate>(at: string, aggregate: A, id: string, ...events: EventsOf<A>[]): SpecCommit<NameOf<A>> {
  return { ...commit(aggregate, id, ...events), at };
}

/** A commit of events as an older version stored them (their upcaster turns them into the current shape). */
export function storedCommit<A extends AnyAggregate>(aggregate: A, id: string, ...events: DomainEvent[]): SpecCommit<NameOf<A>> {
  return { definition: aggregate, aggregate: aggregate.name as NameOf<A>, id, events };
}

/** Commits as the event store would hold them: positions 1, 2, … and each aggregate's version counting its events. */
export function storedCommits(commits: readonly SpecCommit[], firstPosition = 1): StoredCommit[] {
  const versions = new Map<string, number>();
  return commits.map((c, i) => {
    const key = `${c.aggregate}/${c.id}`;
    const version = (versions.get(key) ?? 0) + c.events.length;
    versions.set(key, version);
    const events = c.events.map((e) => ({ type: e.type, data: e.data, at: c.at ?? SPEC_TIME }));
    return { commandId: `spec-${i + 1}`, commandType: 'Spec', aggregate: c.aggregate, id: c.id, version, events, position: firstPosition + i };
  });
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
 * projectionSpec(shopDisplay)
 *   .given(commit(shop, 's1', { type: 'ShopRegistered', data: { ... } }))
 *   .then('s1', { id: 's1', ... });
 * ```
 *
 * Commits take positions 1, 2, … in the order given, and each aggregate's version counts
 * its events, as the event store numbers them. Each commit's aggregate upcasts its events,
 * and a document that does not fit the projection's `document` schema is handled as a fold
 * that threw, as the runner handles it.
 */
export function projectionSpec<E extends DomainEvent, D extends object>(
  projection: Projection<E, D>,
  opts: { readonly assert?: Assertions; readonly now?: () => string } = {},
) {
  const assert = opts.assert ?? nodeAssert;
  return {
    given(...commits: SpecCommit[]): ProjectionOutcome<D> {
      const views = createMemoryViews();
      const target: Target = { projection, gen: 1 };
      const upcast = upcaster([...new Set(commits.map((c) => c.definition))]);
      // One commit per batch, as a live projector under light load applies them.
      for (const c of storedCommits(commits)) applyBatch(views, [target], [c], upcast, opts.now ?? (() => SPEC_TIME));
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
