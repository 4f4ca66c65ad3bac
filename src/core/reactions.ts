import type { DomainEvent, EventTable, StoredEvent } from './aggregate.js';
import type { EventMeta } from './projection.js';

// Reactors and processes: the domain's own reactions to its events (docs/architecture.md,
// "Reactions"). Both are declarations; the reaction runner owns feeds, checkpoints,
// leases, the outbox and the timers.

/** Where an event a reaction handles came from: its commit, its index in it, and the commit's metadata. */
export interface ReactionMeta extends EventMeta {
  /** The event's index in its commit; with `position`, the event's id (`<position>:<index>`). */
  readonly eventIndex: number;
}

/** A command a reaction sends: which aggregate instance, the command's type and data. */
export interface ReactionCommand {
  readonly aggregate: string;
  readonly id: string;
  readonly type: string;
  readonly data: object;
}

/** What a command a reaction sent came to (faults are thrown, as `dispatch` throws them). */
export type ReactionResult =
  | { readonly kind: 'accepted'; readonly id: string; readonly version: number; readonly position: number; readonly events: readonly string[] }
  | { readonly kind: 'rejected'; readonly reason: string }
  | { readonly kind: 'conflict'; readonly currentVersion: number };

/**
 * What to do when a reaction throws (a command it sent failed with a fault, a service it
 * called was down): `retry` N more times with a doubling pause from `backoffMs` (100 ms),
 * then park (or stop with `then: 'stop'`); `park`: set the event aside and go on (admin can
 * retry it); `stop`: stop before the event until `resume`.
 */
export type ReactionErrorPolicy =
  | { readonly kind: 'retry'; readonly times: number; readonly backoffMs?: number; readonly then?: 'park' | 'stop' }
  | { readonly kind: 'park' }
  | { readonly kind: 'stop' };

/** The policy of a reaction that declares none: five retries with backoff, then park. */
export const DEFAULT_REACTION_POLICY: ReactionErrorPolicy = { kind: 'retry', times: 5, then: 'park' };

/** What a reactor's `handle` can do besides reading the event. */
export interface ReactorContext<Svc = unknown> {
  /**
   * Sends a command on the reaction's behalf. Its idempotency key is derived from the
   * reactor, the event's position and index, and the call's order in this handling
   * (`r.<reactor>.<position>.<index>.<n>`), so an event handled again (a redelivery after a
   * crash) takes effect once. Its correlation is the event's commit's; its cause, the event.
   */
  dispatch(command: ReactionCommand): Promise<ReactionResult>;
  /** The services the app was started with, for reactions that reach outside (a mail service). */
  readonly services: Svc;
}

/**
 * A reactor: runs after commit for every event of the types it `handles`, at least once,
 * from a durable checkpoint of its own. Events of one sequence (`sequenceKey`, by default
 * their aggregate instance) are handled one at a time, in position order; events of
 * different sequences concurrently.
 */
export interface Reactor<E extends DomainEvent = DomainEvent, Svc = unknown> {
  readonly name: string;
  readonly handles: readonly E['type'][];
  handle(event: StoredEvent<E>, meta: ReactionMeta, context: ReactorContext<Svc>): void | Promise<void>;
  /** Default: five retries with backoff, then park. */
  readonly onError?: ReactionErrorPolicy;
  /**
   * Which events must be handled one after another: those with the same key, in position
   * order. Default: the event's aggregate instance (`<aggregate>.<id>`), so one instance's
   * events keep their order while the others' run beside them. A constant (`() => 'all'`)
   * handles every event in position order, one at a time: as slow as one handling's round
   * trip allows. A key that throws, or is not a string, makes its event run alone, and
   * fail there.
   */
  readonly sequenceKey?: (event: StoredEvent<E>, meta: ReactionMeta) => string;
}

/**
 * Declares a reactor (docs/architecture.md, "Reactions"):
 *
 * ```ts
 * export const reviewsOnOrders = defineReactor({
 *   name: 'reviewsOnOrders',
 *   handles: ['ReviewPosted'],
 *   handle: (event: StoredEvent<ReviewPosted>, _meta, { dispatch }) =>
 *     dispatch({ aggregate: 'order', id: event.data.orderId, type: 'RecordReview', data: { ... } }),
 * });
 * ```
 */
export function defineReactor<E extends DomainEvent, Svc = unknown>(reactor: Reactor<E, Svc>): Reactor<E, Svc> {
  checkName('reactor', reactor.name);
  return Object.freeze({ ...reactor });
}

/** An input of a process: an event it handles, or one of its timers falling due. */
export type ProcessInput<E extends DomainEvent = DomainEvent> =
  | { readonly kind: 'event'; readonly event: StoredEvent<E>; readonly meta: ReactionMeta }
  | { readonly kind: 'timer'; readonly name: string; readonly data: object; readonly due: string };

/** A change to a process instance's timers: schedule (replacing one of the same name) or cancel. */
export type TimerChange =
  | { readonly schedule: string; readonly at: string | Date; readonly data?: object }
  | { readonly schedule: string; readonly after: number; readonly data?: object }
  | { readonly cancel: string };

/**
 * What a process decides for an input. All of it is recorded in the instance's own stream
 * before anything goes out: `events` (the process's own, folded by `evolve`), `commands` to
 * send, `timers` to schedule or cancel, and `end` to close the instance (it then ignores
 * further inputs and its timers are cancelled).
 */
export interface ProcessDecision<PE extends DomainEvent = DomainEvent> {
  readonly events?: readonly PE[];
  readonly commands?: readonly ReactionCommand[];
  readonly timers?: readonly TimerChange[];
  readonly end?: boolean;
}

/** What `decide` sees beside the state and the input. */
export interface ProcessContext<Settings = unknown> {
  /** The instance's id. */
  readonly id: string;
  /**
   * The input's time: the event's (when its command was received), or the timer's due time.
   * `after` timers count from it, so a decision is the same however late it is made.
   */
  readonly now: Date;
  /** The configuration's app settings (`ConvergeApp.settings`), such as `orders.acceptTimeoutMs`. */
  readonly settings: Settings;
}

/**
 * A process manager: a decider whose inputs are events (picked and routed to an instance by
 * `correlate`) and its own timers, whose outputs are commands and timer changes, and whose
 * state is the fold of its own stream in the event store (`events.~<name>.<id>`).
 */
export interface ProcessDefinition<S = unknown, E extends DomainEvent = DomainEvent, PE extends DomainEvent = DomainEvent, Settings = unknown> {
  /** 1–40 of `[A-Za-z0-9_-]`: the instance streams are `events.~<name>.<id>`. */
  readonly name: string;
  readonly handles: readonly E['type'][];
  /**
   * The instance an event is for, and whether it may start one (`start: true`); `undefined`:
   * the process ignores it. An event for an instance that does not exist and may not start
   * one, or for an ended instance, is ignored.
   */
  correlate(event: StoredEvent<E>, meta: ReactionMeta): { readonly id: string; readonly start?: boolean } | undefined;
  initialState(): S;
  /** Pure, as an aggregate's: the same input on the same state decides the same. */
  decide(state: S, input: ProcessInput<E>, context: ProcessContext<Settings>): ProcessDecision<PE>;
  /** Must be total: it runs on every load of an instance. */
  evolve(state: S, event: PE): S;
  /** The process's own events in TypeBox, when declared: every one it decides is checked. */
  readonly events?: EventTable;
  /** What to do when deciding or recording fails; default: five retries with backoff, then park. */
  readonly onError?: ReactionErrorPolicy;
}

/** Declares a process manager (docs/architecture.md, "Reactions"). */
export function defineProcess<S, E extends DomainEvent, PE extends DomainEvent = never, Settings = unknown>(
  process: ProcessDefinition<S, E, PE, Settings>,
): ProcessDefinition<S, E, PE, Settings> {
  checkName('process', process.name);
  return Object.freeze({ ...process });
}

/** A reactor or process with its types erased, for registries and the runner. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyReactor = Reactor<any, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyProcess = ProcessDefinition<any, any, any, any>;

/** The aggregate name of a process's instance streams: `~<name>`, which no aggregate may have. */
export function processStream(name: string): string {
  return `~${name}`;
}

/** Whether an aggregate name is a process's instance stream. */
export function isProcessStream(aggregate: string): boolean {
  return aggregate.startsWith('~');
}

function checkName(kind: string, name: string): void {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(name)) throw new TypeError(`a ${kind}'s name must be 1-40 of [A-Za-z0-9_-]: ${JSON.stringify(name)}`);
}
