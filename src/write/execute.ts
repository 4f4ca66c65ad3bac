import { overlaps, type AggregateRef, type AnyAggregate, type DecideContext, type DomainEvent, type StoredEvent } from '../core/aggregate.js';
import { EventStoreUnavailableError, IdempotencyKeyReusedError, InvalidEventError, ServiceUnavailableError, WrongExpectedPositionError } from '../core/errors.js';
import type { Commit, EventStore } from '../core/eventStore.js';
import { rootMetadata, type CommandMetadata } from '../core/metadata.js';
import { fnv1a } from '../core/partition.js';
import { schemaIssues } from '../core/schemas.js';
import type { LookupOutcome } from './lookup.js';
import { applyCommit, catchUp, type Memory, type RecentCommit } from './rehydrate.js';

/** A command as it travels to its aggregate's owner. */
export interface CommandEnvelope {
  /** The `Idempotency-Key`, or a fresh id. */
  readonly commandId: string;
  readonly aggregate: string;
  readonly id: string;
  /** Command type name, e.g. `ChangeMenuPrice`. */
  readonly type: string;
  readonly data: object;
  /** From `If-Match`: the version the client based the command on. */
  readonly expectedVersion?: number;
  /** When the command was received (ISO 8601); stamped on its events and `decide`'s `now`. */
  readonly at: string;
  /** The conversation it belongs to; absent: its own (`commandId`). */
  readonly correlationId?: string;
  /** What caused it; absent: the request itself (`commandId`). */
  readonly causationId?: string;
  /** The name of the token that sent it, when access control knows one. */
  readonly caller?: string;
  /** W3C trace context of the span the command runs under, when tracing is on; the append's span is its child. */
  readonly traceparent?: string;
}

/** The metadata of a command as `decide` and its commit see it. */
export function metadataOf(command: CommandEnvelope): CommandMetadata {
  const root = rootMetadata(command.commandId, { correlationId: command.correlationId, caller: command.caller });
  return command.causationId === undefined ? root : { ...root, causationId: command.causationId };
}

/** The outcome of a command. Faults are thrown; these are answers. */
export type CommandResult =
  | { readonly kind: 'accepted'; readonly id: string; readonly version: number; readonly position: number; readonly events: readonly string[] }
  | { readonly kind: 'rejected'; readonly reason: string }
  | { readonly kind: 'conflict'; readonly currentVersion: number };

/** An aggregate's current state as its owner knows it. */
export interface StateView {
  readonly state: unknown;
  readonly version: number;
  readonly position: number;
}

/** Reads another aggregate's current state from its owner, which may be another worker. */
export type ReadState = (ref: AggregateRef) => Promise<StateView>;

/** What executing a command needs. */
export interface ExecutionContext {
  readonly aggregate: AnyAggregate;
  readonly store: EventStore;
  readonly readState: ReadState;
  /** Recent commits an actor remembers. */
  readonly keep: number;
  /** How often a command is decided again after another writer got there first. */
  readonly conflictRetries: number;
  /**
   * How long the store remembers a command id (JetStream's duplicate window): a retry
   * within it is answered as the original was, also when memory has forgotten the original.
   */
  readonly duplicateWindowMs: number;
  /** Told of each append another writer got to first: `retrying` unless `conflictRetries` are used up (for metrics). */
  readonly onConflict?: (aggregate: string, retrying: boolean) => void;
}

/** Memory after a command, and the command's answer. */
export interface Executed {
  readonly memory: Memory;
  readonly result: CommandResult;
}

/**
 * Runs one command against an aggregate's memory, in four steps: answer a retry from
 * memory (`replayed`), refuse a stale `If-Match` that cannot merge (`ifMatchHolds`),
 * `decide` (with what the command's lookup `looked` up), and `append` with the expected
 * position. When another writer got there
 * first, `retryOnConflict` catches up and runs the steps again.
 */
export async function executeCommand(ctx: ExecutionContext, initial: Memory, command: CommandEnvelope, looked: LookupOutcome = { value: undefined }): Promise<Executed> {
  let memory = initial;
  return retryOnConflict(
    ctx.conflictRetries,
    async () => {
      const replay = replayed(memory, command);
      if (replay) return { memory, result: replay };
      if (!ifMatchHolds(ctx.aggregate, memory, command)) return (await replayedByStore(ctx, memory, command)) ?? { memory, result: conflict(memory) };
      // A retry of a command that took effect is answered above, whatever its lookup did now.
      if ('error' in looked) throw new ServiceUnavailableError(ctx.aggregate.name, command.type, { cause: looked.error });
      const context = decideContext(command, await readDeps(ctx, command), looked.value);
      const decision = ctx.aggregate.decide(memory.state, { type: command.type, data: command.data }, context);
      if (!decision.ok) return (await replayedByStore(ctx, memory, command)) ?? { memory, result: { kind: 'rejected', reason: decision.reason } };
      checkEvents(ctx.aggregate, command, decision.events);
      return append(ctx, memory, command, decision.events);
    },
    async () => {
      ctx.onConflict?.(ctx.aggregate.name, true);
      memory = await catchUp(ctx.aggregate, ctx.store, command.id, memory, ctx.keep);
    },
    async (last) => {
      ctx.onConflict?.(ctx.aggregate.name, false);
      // The last attempt lost to another writer: the answer names the version that writer made.
      memory = await catchUp(ctx.aggregate, ctx.store, command.id, memory, ctx.keep);
      const replay = replayed(memory, command);
      if (replay) return { memory, result: replay };
      // It may have lost to this very command, run by a partition's old owner: only a retry with the same key can tell.
      if (last instanceof StagedDuplicateError) throw new EventStoreUnavailableError(`${ctx.aggregate.name} ${command.id}: an append for its position has not landed yet`, { cause: last });
      return { memory, result: conflict(memory) };
    },
  );
}

/** The original answer when this command id is among the recent commits; throws when the id was used by another command. */
export function replayed(memory: Memory, command: CommandEnvelope): CommandResult | undefined {
  const id = command.commandId;
  const hash = fnv1a(id);
  const seen = memory.recent.find((c) => (c.idHash ?? fnv1a(c.commandId)) === hash && c.commandId === id);
  if (!seen) return undefined;
  if (seen.commandType !== command.type) throw new IdempotencyKeyReusedError(command.commandId);
  return accepted(command.id, seen);
}

/**
 * Whether a command may run at this version: it names no version, names this one, or
 * names an older one and every commit since is known and touched nothing the command
 * touches (see docs/architecture.md, "Merging stale commands").
 */
export function ifMatchHolds(aggregate: AnyAggregate, memory: Memory, command: CommandEnvelope): boolean {
  const expected = command.expectedVersion;
  if (expected === undefined || expected === memory.version) return true;
  if (expected > memory.version) return false;
  const since = memory.recent.filter((c) => c.version > expected);
  const complete = since.length > 0 && since[0]!.fromVersion <= expected;
  if (!complete) return false;
  const touches = aggregate.touches?.({ type: command.type, data: command.data });
  return since.every((c) => !overlaps(c.touched, touches));
}

/**
 * The original answer to a command whose commit memory no longer holds (more than `keep`
 * commits followed it) but the store still treats as a duplicate. Only asked for before a
 * command would be refused: an accepted one finds out at its append. A command id used
 * by a different command is refused.
 */
async function replayedByStore(ctx: ExecutionContext, memory: Memory, command: CommandEnvelope): Promise<Executed | undefined> {
  // Memory holds every commit of an aggregate with fewer than `keep` of them.
  if (memory.recent.length < ctx.keep) return undefined;
  const since = Date.parse(command.at) - ctx.duplicateWindowMs;
  for await (const commit of ctx.store.readSince(ctx.aggregate.name, command.id, since)) {
    if (commit.commandId !== command.commandId) continue;
    if (commit.commandType !== command.type) throw new IdempotencyKeyReusedError(command.commandId);
    const result: CommandResult = { kind: 'accepted', id: command.id, version: commit.version, position: commit.position, events: commit.events.map((e) => e.type) };
    return { memory, result };
  }
  return undefined;
}

/** What `decide` sees beside the state and the command: the same on every attempt of one command. */
export function decideContext(command: CommandEnvelope, deps: object, lookup: unknown): DecideContext<object, unknown> {
  return { id: command.id, now: new Date(command.at), metadata: metadataOf(command), deps, lookup };
}

/**
 * Checks the decided events against the aggregate's event schemas, when it declared them:
 * an event of an undeclared type, or whose data does not fit, is a bug in the decider and
 * is never appended.
 */
export function checkEvents(aggregate: AnyAggregate, command: Pick<CommandEnvelope, 'type' | 'id'>, events: readonly DomainEvent[]): void {
  const table = aggregate.events;
  if (!table) return;
  for (const event of events) {
    const schema = Object.hasOwn(table, event.type) ? table[event.type] : undefined;
    const issues = schema ? schemaIssues(schema, event.data) : [{ path: '/type', message: `${event.type} is not one of ${aggregate.name}'s events` }];
    if (issues.length > 0) throw new InvalidEventError(aggregate.name, command.id, command.type, event.type, issues);
  }
}

/** The current states of the other aggregates `decide` reads for this command. */
async function readDeps(ctx: ExecutionContext, command: CommandEnvelope): Promise<Record<string, unknown>> {
  const refs = ctx.aggregate.requires?.({ type: command.type, data: command.data });
  if (!refs) return {};
  const names = Object.keys(refs);
  const views = await Promise.all(names.map((name) => ctx.readState(refs[name] as AggregateRef)));
  return Object.fromEntries(names.map((name, i) => [name, views[i]!.state]));
}

/**
 * Appends the decided events as one commit at the aggregate's position. A duplicate (an
 * earlier attempt of the same command committed, and its answer was lost) is answered as
 * the original was. Throws `WrongExpectedPositionError` when another writer got there first.
 */
export async function append(ctx: ExecutionContext, memory: Memory, command: CommandEnvelope, decided: readonly DomainEvent[]): Promise<Executed> {
  const events: StoredEvent[] = decided.map((e) => ({ type: e.type, data: e.data, at: command.at }));
  const { correlationId, causationId, caller } = metadataOf(command);
  const commit: Commit = {
    commandId: command.commandId,
    commandType: command.type,
    aggregate: ctx.aggregate.name,
    id: command.id,
    version: memory.version + events.length,
    events,
    metadata: {
      correlationId,
      causationId,
      ...(caller === undefined ? {} : { caller }),
      ...(command.traceparent === undefined ? {} : { traceparent: command.traceparent }),
    },
  };
  // Folded before the append when the aggregate can be finished, so the commit says whether it is.
  const folded = ctx.aggregate.finished ? applyCommit(ctx.aggregate, memory, commit, 0, ctx.keep) : undefined;
  const finished = folded !== undefined && ctx.aggregate.finished!(folded.state);
  const ack = await ctx.store.append(finished ? { ...commit, metadata: { ...commit.metadata!, finished: true } } : commit, memory.position);
  if (ack.duplicate) {
    // A fenced append (see `appendMsgId`) collides with any commit at its position, so a
    // duplicate of another command's commit means another writer got there first. A
    // replicated stream answers position 0 for a duplicate of an append it has not stored
    // yet. Either way the retry catches up, and finds this command there if it was its own.
    if (ack.position === 0) throw new StagedDuplicateError(`${ctx.aggregate.name}.${command.id}`, memory.position);
    const original = await ctx.store.commitAt(ack.position);
    if (original?.commandId !== command.commandId) throw new WrongExpectedPositionError(`${ctx.aggregate.name}.${command.id}`, memory.position);
    if (original.commandType !== command.type) throw new IdempotencyKeyReusedError(command.commandId);
    const caughtUp = await catchUp(ctx.aggregate, ctx.store, command.id, memory, ctx.keep);
    const events = original.events.map((e) => e.type);
    return { memory: caughtUp, result: { kind: 'accepted', id: command.id, version: original.version, position: ack.position, events } };
  }
  const next = folded ? atPosition(folded, ack.position) : applyCommit(ctx.aggregate, memory, commit, ack.position, ctx.keep);
  return { memory: next, result: accepted(command.id, next.recent[next.recent.length - 1]!) };
}

/** Memory folded before its commit's position was known, given it. */
function atPosition(memory: Memory, position: number): Memory {
  const last = memory.recent[memory.recent.length - 1]!;
  return { ...memory, position, recent: [...memory.recent.slice(0, -1), { ...last, position }] };
}

/**
 * A fenced append's duplicate answer for an append at the same position that the stream
 * has not stored yet (position 0): which command that is, this one from another owner or
 * another one, cannot be told until it lands.
 */
class StagedDuplicateError extends WrongExpectedPositionError {}

/**
 * Runs `attempt`; when it throws `WrongExpectedPositionError`, waits a jittered moment
 * (two writers in lockstep would keep colliding), runs `beforeRetry`, and tries again, up
 * to `retries` times. Past that it answers `exhausted(last)`. Any other error is thrown.
 */
export async function retryOnConflict<T>(
  retries: number,
  attempt: () => Promise<T>,
  beforeRetry: () => Promise<void>,
  exhausted: (last: WrongExpectedPositionError) => Promise<T>,
): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof WrongExpectedPositionError)) throw err;
      if (n >= retries) return exhausted(err);
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** n, 20)));
      await beforeRetry();
    }
  }
}

function conflict(memory: Memory): CommandResult {
  return { kind: 'conflict', currentVersion: memory.version };
}

function accepted(id: string, commit: RecentCommit): CommandResult {
  return { kind: 'accepted', id, version: commit.version, position: commit.position, events: commit.events };
}
