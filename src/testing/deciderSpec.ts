import type { AnyAggregate, CommandsOf, DecideContext, Decision, DomainEvent, EventsOf, LookupOf, RejectionOf, StateOf, StoredEvent } from '../core/aggregate.js';
import type { Commit } from '../core/eventStore.js';
import { rootMetadata, type CommandMetadata } from '../core/metadata.js';
import { schemaIssues, type SchemaIssue } from '../core/schemas.js';
import { checkEvents } from '../write/execute.js';
import { applyCommit, emptyMemory } from '../write/rehydrate.js';
import { nodeAssert, SPEC_TIME, type Assertions } from './assert.js';

/** What a spec's command runs with beside its data; anything left out takes a fixed value. */
export interface SpecContext<A extends AnyAggregate> {
  /** The aggregate's id; `spec` by default. */
  readonly id?: string;
  /** `decide`'s `now`; `SPEC_TIME` by default. */
  readonly now?: string | Date;
  readonly metadata?: Partial<CommandMetadata>;
  /** What the aggregate's `lookup` would have answered: the spec tests `decide`, and a lookup is a plain function. */
  readonly lookup?: LookupOf<A>;
}

/** What one command came to, with the assertions a spec makes of it. */
export interface DeciderOutcome<A extends AnyAggregate> {
  /** What `decide` answered; undefined when the command did not fit its schema. */
  readonly decision: Decision<EventsOf<A>, RejectionOf<A>> | undefined;
  /** How the command failed its schema, as the HTTP edge would have refused it (400). */
  readonly invalid: readonly SchemaIssue[];
  /** Asserts that the command emits exactly these events, each fitting its schema. */
  then(expected: readonly EventsOf<A>[]): void;
  /** Asserts that the command is rejected with this reason. */
  rejects(reason: RejectionOf<A>): void;
  /** Asserts that the command fails its schema (at `path`, when given). */
  isInvalid(path?: string): void;
}

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
 * The history is folded by the runtime's rehydration (upcasters included) and `decide`
 * runs as the actor host runs it, with `now`, the id, the metadata and the lookup's answer
 * from `when`'s context. The command is first checked against its schema as the HTTP edge
 * checks it, and emitted events against theirs. `given` takes the aggregate's events and
 * `deps`, the states of other aggregates the command reads; `givenStored` takes events as
 * stored, of any version, which the upcaster turns into the current shape.
 */
export function deciderSpec<A extends AnyAggregate>(aggregate: A, opts: { readonly assert?: Assertions } = {}) {
  const assert = opts.assert ?? nodeAssert;
  const given = (history: readonly DomainEvent[], deps: object = {}) => {
    const events = history.map((e): StoredEvent => ({ type: e.type, data: e.data, at: (e as Partial<StoredEvent>).at ?? SPEC_TIME }));
    const base = emptyMemory(aggregate);
    const commit: Commit = { commandId: 'given', commandType: 'Given', aggregate: aggregate.name, id: 'spec', version: events.length, events };
    const state = (events.length > 0 ? applyCommit(aggregate, base, commit, 1, 1) : base).state as StateOf<A>;
    return {
      /** The state the history folds to. */
      state,
      when(command: CommandsOf<A>, context: SpecContext<A> = {}): DeciderOutcome<A> {
        const invalid = commandIssues(aggregate, command);
        const decision = invalid.length > 0 ? undefined : (aggregate.decide(state, command, decideContext(context, deps)) as Decision<EventsOf<A>, RejectionOf<A>>);
        const named = `${command.type}`;
        const valid = () => assert.deepEqual(invalid, [], `${named} fits its schema`);
        return {
          decision,
          invalid,
          then(expected) {
            valid();
            assert.deepEqual(decision, { ok: true, events: expected }, `${named} emits ${expected.map((e) => e.type).join(', ') || 'nothing'}`);
            if (decision?.ok) assert.deepEqual(eventIssues(aggregate, decision.events), '', `${named}'s events fit their schemas`);
          },
          rejects(reason) {
            valid();
            assert.deepEqual(decision, { ok: false, reason }, `${named} is rejected with ${reason}`);
          },
          isInvalid(path) {
            const paths = invalid.map((i) => i.path);
            assert.deepEqual(path === undefined ? paths.length > 0 : paths.includes(path), true, `${named} fails its schema${path ? ` at ${path}` : ''} (${JSON.stringify(invalid)})`);
          },
        };
      },
    };
  };
  return {
    given: (history: readonly EventsOf<A>[], deps?: object) => given(history, deps),
    givenStored: (history: readonly DomainEvent[], deps?: object) => given(history, deps),
  };
}

function decideContext(context: SpecContext<AnyAggregate>, deps: object): DecideContext<object, unknown> {
  const commandId = context.metadata?.commandId ?? 'spec-command';
  const now = context.now === undefined ? new Date(SPEC_TIME) : new Date(context.now);
  return { id: context.id ?? 'spec', now, metadata: { ...rootMetadata(commandId), ...context.metadata }, deps, lookup: context.lookup };
}

/** How a command fails the schema of its type in the aggregate's command table. */
function commandIssues(aggregate: AnyAggregate, command: { type: string; data: unknown }): SchemaIssue[] {
  const spec = Object.values(aggregate.commands).find((c) => c.type === command.type);
  if (!spec) return [{ path: '/type', message: `${command.type} is not a command of ${aggregate.name}` }];
  return schemaIssues(spec.schema, command.data);
}

/** How emitted events fail their schemas, as one line ('' when they fit). */
function eventIssues(aggregate: AnyAggregate, events: readonly DomainEvent[]): string {
  try {
    checkEvents(aggregate, { type: 'spec', id: 'spec' }, events);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}
