import type { Static, TObject, TSchema } from 'typebox';
import type { CommandMetadata } from './metadata.js';
import { checkPersonal, type PersonalData } from './personal.js';

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

/**
 * What `decide` returns: the events to append, or a business rejection as a value. `R`
 * is the aggregate's rejection reasons, so they are in the types all the way to the reply.
 */
export type Decision<E extends DomainEvent, R extends string = string> =
  | { readonly ok: true; readonly events: readonly E[] }
  | { readonly ok: false; readonly reason: R };

/** A successful decision carrying the given events. */
export function emit<const E extends DomainEvent>(...events: E[]): Decision<E, never> {
  return { ok: true, events };
}

/** A business rejection: a value, typed by its reason (`reject('cart_closed')`). */
export function reject<const R extends string>(reason: R): Decision<never, R> {
  return { ok: false, reason };
}

/** A reference to another aggregate whose current state a command needs. */
export interface AggregateRef {
  readonly aggregate: string;
  readonly id: string;
}

/** The methods a command route may use. */
export type CommandMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The statuses an accepted command may answer with: 200, 201 and 202 carry the reply body, 204 none. */
export type AcceptedStatus = 200 | 201 | 202 | 204;

/**
 * One command of an aggregate's HTTP surface: the type name its decider sees, the schema
 * its data must satisfy, and how it is reached. By default `POST /<plural>/:id/<segment>`,
 * answered 200. A `path` names the aggregate id as `:<idParam>` (`:id` by default); its
 * other parameters are fields of the command's data, taken from the path and left out of
 * the body (`DELETE /carts/:id/items/:productId`).
 */
export interface CommandSpec<T extends string = string, S extends TSchema = TObject> {
  readonly type: T;
  readonly schema: S;
  readonly method?: CommandMethod;
  readonly path?: string;
  readonly status?: AcceptedStatus;
  /** The path parameter that holds the aggregate id; `id` by default. */
  readonly idParam?: string;
  /** Not reached over HTTP: only `dispatch`, reactors and processes send it. */
  readonly internal?: boolean;
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

/** Event type → the TypeBox schema of its data: one declaration gives the types and the runtime check. */
export type EventTable = Readonly<Record<string, TSchema>>;

/**
 * The event union of an event table (`EventOf<typeof cartEvents>`), or one event of it
 * (`EventOf<typeof cartEvents, 'CartOpened'>`).
 */
export type EventOf<T extends EventTable, K extends keyof T & string = keyof T & string> = {
  [P in K]: { readonly type: P; readonly data: Static<T[P]> };
}[K];

/**
 * Declares an aggregate's events in TypeBox, one schema per type; derive the types with
 * `EventOf`. converge checks every event a decider emits against its schema before it is
 * appended, so a malformed event never reaches the store.
 */
export function defineEvents<const T extends EventTable>(table: T): T {
  return Object.freeze({ ...table });
}

/** What `decide` sees beside the state and the command. */
export interface DecideContext<Deps = Record<string, never>, L = undefined> {
  /** The aggregate instance's id. */
  readonly id: string;
  /** When the command was received; the same time is stamped on its events (tests set the clock). */
  readonly now: Date;
  /** The command's id, correlation and causation, and the caller when known. */
  readonly metadata: CommandMetadata;
  /** Current states of the other aggregates `requires` names, read from their owners. */
  readonly deps: Deps;
  /** What the aggregate's `lookup` answered for this command (`undefined` without one). */
  readonly lookup: L;
}

/** What `lookup` sees: the command's context and the services the app was started with. */
export interface LookupContext<Svc = unknown> {
  readonly id: string;
  readonly now: Date;
  readonly metadata: CommandMetadata;
  readonly services: Svc;
}

/**
 * An aggregate: pure `decide` and total `evolve`, plus what the runtime needs to host it.
 * `N` is its name, `S` its state, `C` and `E` its commands and events, `Deps` the states
 * of other aggregates a command reads (an order reads its shop), `R` its rejection
 * reasons, `L` what its `lookup` answers and `Svc` the services that lookup uses.
 */
export interface AggregateDefinition<
  N extends string,
  S,
  C extends DomainCommand,
  E extends DomainEvent,
  Deps extends object = Record<string, never>,
  R extends string = string,
  L = undefined,
  Svc = unknown,
> {
  /** Singular name, used in subjects: `events.<name>.<id>`. */
  readonly name: N;
  /** Plural name, used in URLs: `/<plural>/<id>/<command>`. */
  readonly plural: string;
  /** Bump when the shape of `S` changes, so that older snapshots are ignored. */
  readonly snapshotVersion: number;
  /** URL segment (`change-menu-price`) → command spec. */
  readonly commands: CommandTable;
  /** The event schemas, when declared with `defineEvents`: every emitted event is checked against them. */
  readonly events?: EventTable;
  /**
   * The ids the HTTP edge accepts, as a regular expression's source; by default 1–64 of
   * `[A-Za-z0-9_-]`. An id is also a NATS subject token, so `.`, `*`, `>` and white space
   * are refused whatever the pattern says.
   */
  readonly idPattern: string;
  initialState(): S;
  decide(state: S, command: C, context: DecideContext<Deps, L>): Decision<E, R>;
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
  /**
   * What `decide` needs from outside converge for this command (a price from a price list),
   * fetched through the app's services before `decide` runs; its answer is `context.lookup`.
   * It starts when the command arrives, so commands of one aggregate still take effect in
   * arrival order. A lookup that throws fails the command with `503 service_unavailable`
   * and nothing is appended.
   */
  lookup?(command: C, context: LookupContext<Svc>): L | Promise<L>;
  /** Turns an older stored event shape into the current one at read time. */
  upcast?(event: StoredEvent): StoredEvent<E>;
  /**
   * Which fields of which events are a data subject's personal data: stored sealed with the
   * subject's key, and read as `FORGOTTEN` once the key is forgotten (docs/architecture.md, "Forgetting").
   */
  readonly personal?: PersonalData<E>;
  /**
   * Whether an instance in this state is done with (an order delivered, rejected or
   * cancelled): once it has been finished for `archiveAfterMs`, the archiver moves its
   * commits out of the live store (docs/architecture.md, "Archive"). Absent: never archived.
   */
  finished?(state: S): boolean;
  /** How long a finished instance stays live before it is archived; `archive.afterMs` by default. */
  readonly archiveAfterMs?: number;
}

/** The id pattern of an aggregate that declares none: 1–64 URL-safe characters. */
export const DEFAULT_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';

/** What `defineAggregate` takes: an aggregate whose command union comes from its command table. */
export type AggregateOptions<N extends string, S, T extends CommandTable, E extends DomainEvent, Deps extends object, R extends string, L, Svc> = Omit<
  AggregateDefinition<N, S, CommandOf<T>, E, Deps, R, L, Svc>,
  'commands' | 'plural' | 'snapshotVersion' | 'idPattern'
> & {
  readonly commands: T;
  /** Plural name in URLs; `<name>s` by default. */
  readonly plural?: string;
  /** 1 by default. */
  readonly snapshotVersion?: number;
  readonly idPattern?: string;
};

/**
 * Declares an aggregate. Its command union is derived from `commands`, so `decide` sees
 * exactly the validated bodies the HTTP edge accepts, and every type parameter is inferred:
 *
 * ```ts
 * export const cart = defineAggregate({
 *   name: 'cart',
 *   commands: { open: { type: 'OpenCart', schema: OpenCartBody } },
 *   events: cartEvents,
 *   initialState: (): CartState => ({ status: 'empty' }),
 *   decide, evolve,
 * });
 * ```
 *
 * A route `path` that does not name the id parameter, or names a parameter that is not a
 * field of the command's schema, is an error here, not at the first request.
 */
export function defineAggregate<
  const N extends string,
  S,
  T extends CommandTable,
  V extends EventTable,
  Deps extends object = Record<string, never>,
  R extends string = never,
  L = undefined,
  Svc = unknown,
>(definition: AggregateOptions<N, S, T, EventOf<V>, Deps, R, L, Svc> & { readonly events: V }): AggregateDefinition<N, S, CommandOf<T>, EventOf<V>, Deps, R, L, Svc>;
/** An aggregate whose events are TypeScript types only: they are not checked at run time. */
export function defineAggregate<
  const N extends string,
  S,
  T extends CommandTable,
  E extends DomainEvent,
  Deps extends object = Record<string, never>,
  R extends string = never,
  L = undefined,
  Svc = unknown,
>(definition: AggregateOptions<N, S, T, E, Deps, R, L, Svc>): AggregateDefinition<N, S, CommandOf<T>, E, Deps, R, L, Svc>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function defineAggregate(definition: AggregateOptions<string, any, CommandTable, any, any, any, any, any>): AnyAggregate {
  for (const [segment, spec] of Object.entries(definition.commands)) checkCommandRoute(definition.name, segment, spec);
  if (definition.personal) checkPersonal(definition.name, definition.personal, definition.events);
  return Object.freeze({
    ...definition,
    plural: definition.plural ?? `${definition.name}s`,
    snapshotVersion: definition.snapshotVersion ?? 1,
    idPattern: definition.idPattern ?? DEFAULT_ID_PATTERN,
  });
}

const idPatterns = new Map<string, RegExp>();

/**
 * Whether an id fits its aggregate's `idPattern` and can be a NATS subject token (no `.`,
 * `*`, `>` or white space): the HTTP edge and `dispatch` both refuse one that does not.
 */
export function acceptsId(aggregate: Pick<AnyAggregate, 'idPattern'>, id: string): boolean {
  let pattern = idPatterns.get(aggregate.idPattern);
  if (!pattern) idPatterns.set(aggregate.idPattern, (pattern = new RegExp(aggregate.idPattern)));
  return id.length > 0 && pattern.test(id) && !/[.*>\s]/.test(id);
}

/** A command route's path parameters, in order: `/carts/:id/items/:productId` → `id`, `productId`. */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);
}

function checkCommandRoute(aggregate: string, segment: string, spec: CommandSpec): void {
  if (spec.path === undefined) return;
  const idParam = spec.idParam ?? 'id';
  const params = pathParams(spec.path);
  const where = `${aggregate} command ${segment} (${spec.type})`;
  if (!spec.path.startsWith('/')) throw new TypeError(`${where}: path ${spec.path} must start with /`);
  if (!params.includes(idParam)) throw new TypeError(`${where}: path ${spec.path} must name the aggregate id as :${idParam}`);
  const properties = (spec.schema as Partial<TObject>).properties ?? {};
  for (const p of params) {
    if (p !== idParam && !Object.hasOwn(properties, p)) throw new TypeError(`${where}: path parameter :${p} is not a field of the command's schema`);
  }
}

/** An aggregate definition with its type parameters erased, for registries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyAggregate = AggregateDefinition<string, any, any, any, any, any, any, any>;

/** The name of an aggregate. */
export type NameOf<A> = A extends AggregateDefinition<infer N, any, any, any, any, any, any, any> ? N : never; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The events of an aggregate, in their current shape. */
export type EventsOf<A> = A extends AggregateDefinition<any, any, any, infer E, any, any, any, any> ? E : never; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The commands of an aggregate. */
export type CommandsOf<A> = A extends AggregateDefinition<any, any, infer C, any, any, any, any, any> ? C : never; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The state of an aggregate. */
export type StateOf<A> = A extends AggregateDefinition<any, infer S, any, any, any, any, any, any> ? S : never; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The rejection reasons of an aggregate. */
export type RejectionOf<A> = A extends AggregateDefinition<any, any, any, any, any, infer R, any, any> ? R : never; // eslint-disable-line @typescript-eslint/no-explicit-any
/** What an aggregate's lookup answers. */
export type LookupOf<A> = A extends AggregateDefinition<any, any, any, any, any, any, infer L, any> ? L : never; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The services an aggregate's lookup uses. */
export type ServicesOf<A> = A extends AggregateDefinition<any, any, any, any, any, any, any, infer Svc> ? (unknown extends Svc ? never : Svc) : never; // eslint-disable-line @typescript-eslint/no-explicit-any

/** True when two touch sets overlap; `undefined` stands for "everything". */
export function overlaps(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined || b === undefined) return true;
  return a.some((key) => b.includes(key));
}
