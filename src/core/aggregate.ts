import type { Static, TObject, TSchema } from 'typebox';

/** An event as a decider emits it: a past-tense type name and its data. */
export interface DomainEvent {
  readonly type: string;
  readonly data: object;
}

/** An event as it is stored: stamped with the time its command was handled. */
export type StoredEvent<E extends DomainEvent = DomainEvent> = E & { readonly at: string };

/** A command as a decider receives it: an imperative type name and its validated body. */
export interface DomainCommand {
  readonly type: string;
  readonly data: object;
}

/** What `decide` returns: the events to append, or a business rejection as a value. */
export type Decision<E extends DomainEvent> =
  | { readonly ok: true; readonly events: readonly E[] }
  | { readonly ok: false; readonly reason: string };

/** A successful decision carrying the given events. */
export function emit<E extends DomainEvent>(...events: E[]): Decision<E> {
  return { ok: true, events };
}

/** A business rejection: a value, so it stays in the types all the way to the HTTP reply. */
export function reject<E extends DomainEvent>(reason: string): Decision<E> {
  return { ok: false, reason };
}

/** A reference to another aggregate whose current state a command needs. */
export interface AggregateRef {
  readonly aggregate: string;
  readonly id: string;
}

/** One command of an aggregate's HTTP surface: the type name its decider sees and the body schema the edge checks. */
export interface CommandSpec<T extends string = string, S extends TSchema = TObject> {
  readonly type: T;
  readonly schema: S;
}

/** URL segment (`change-menu-price`) → command spec. */
export type CommandTable = Readonly<Record<string, CommandSpec>>;

/**
 * The command union of an aggregate, derived from its command table, so that the URL
 * table, the schemas and the decider's types cannot drift apart.
 */
export type CommandOf<R extends CommandTable> = {
  [K in keyof R]: { readonly type: R[K]['type']; readonly data: Static<R[K]['schema']> };
}[keyof R];

/**
 * An aggregate: pure `decide` and total `evolve`, plus what the runtime needs to
 * host it. `Deps` are the current states of other aggregates a command reads
 * (an order reads its shop); the host fetches them from their owners, never from a view.
 */
export interface AggregateDefinition<
  S,
  C extends DomainCommand,
  E extends DomainEvent,
  Deps extends object = Record<string, never>,
> {
  /** Singular name, used in subjects: `events.<name>.<id>`. */
  readonly name: string;
  /** Plural name, used in URLs: `/<plural>/<id>/<command>`. */
  readonly plural: string;
  /** Bump when the shape of `S` changes, so that older snapshots are ignored. */
  readonly snapshotVersion: number;
  /** URL segment (`change-menu-price`) → command spec. */
  readonly commands: CommandTable;
  initialState(): S;
  decide(state: S, command: C, deps: Deps): Decision<E>;
  /** Must be total: it runs on every rehydration, so it never throws. */
  evolve(state: S, event: E): S;
  /**
   * The parts of the state a command touches, for merging a command that carries a
   * stale `If-Match` version. Absent or `undefined`: the whole aggregate, so every
   * stale command conflicts.
   */
  touches?(command: C): readonly string[] | undefined;
  /** The parts of the state an event changed; absent or `undefined`: the whole aggregate. */
  eventTouches?(event: E): readonly string[] | undefined;
  /** Other aggregates whose current state `decide` needs for this command. */
  requires?(command: C): { readonly [K in keyof Deps]: AggregateRef } | undefined;
  /** Turns an older stored event shape into the current one at read time. */
  upcast?(event: StoredEvent): StoredEvent<E>;
}

/** What `defineAggregate` takes: an aggregate whose command union comes from its command table. */
export type AggregateOptions<S, R extends CommandTable, E extends DomainEvent, Deps extends object> = Omit<
  AggregateDefinition<S, CommandOf<R>, E, Deps>,
  'commands'
> & { readonly commands: R };

/**
 * Declares an aggregate. Its command union is derived from `commands`, so `decide` sees
 * exactly the validated bodies the HTTP edge accepts:
 *
 * ```ts
 * export const shop = defineAggregate({
 *   name: 'shop', plural: 'shops', snapshotVersion: 1,
 *   commands: { rename: { type: 'RenameShop', schema: RenameShopBody } },
 *   initialState: () => ({ status: 'unregistered' }),
 *   decide, evolve,
 * });
 * ```
 */
export function defineAggregate<S, R extends CommandTable, E extends DomainEvent, Deps extends object = Record<string, never>>(
  definition: AggregateOptions<S, R, E, Deps>,
): AggregateDefinition<S, CommandOf<R>, E, Deps> {
  return Object.freeze({ ...definition });
}

/** An aggregate definition with its type parameters erased, for registries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyAggregate = AggregateDefinition<any, any, any, any>;

/** True when two touch sets overlap; `undefined` stands for "everything". */
export function overlaps(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  return a.some((key) => b.includes(key));
}
