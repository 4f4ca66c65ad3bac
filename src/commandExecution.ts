import { overlaps, type AnyAggregate, type StoredEvent } from './aggregate.js';
import { IdempotencyKeyReusedError, WrongExpectedPositionError } from './errors.js';
import type { Commit, EventStore } from './eventStore.js';

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
  /** When the command was received (ISO 8601); stamped on its events. */
  readonly at: string;
}

/** The outcome of a command. Faults are thrown; these are answers. */
export type CommandResult =
  | { readonly kind: 'accepted'; readonly id: string; readonly version: number; readonly position: number; readonly events: readonly string[] }
  | { readonly kind: 'rejected'; readonly reason: string }
  | { readonly kind: 'conflict'; readonly currentVersion: number };

/** A commit an actor remembers, to answer retries and merge stale `If-Match` commands. */
export interface RecentCommit {
  readonly commandId: string;
  readonly commandType: string;
  /** Version before and after the commit. */
  readonly fromVersion: number;
  readonly version: number;
  readonly position: number;
  readonly events: readonly string[];
  /** What the commit's events changed; `undefined` is everything. */
  readonly touched: readonly string[] | undefined;
}

/** What an actor knows of its aggregate: the fold of its commits so far. */
export interface Memory {
  readonly state: unknown;
  readonly version: number;
  /** Stream position of the last commit; 0 for a new aggregate. */
  readonly position: number;
  readonly recent: readonly RecentCommit[];
}

/** The memory of an aggregate with no commits. */
export function emptyMemory(aggregate: AnyAggregate): Memory {
  return { state: aggregate.initialState(), version: 0, position: 0, recent: [] };
}

/** Folds one commit into memory, keeping at most `keep` recent commits. */
export function applyCommit(aggregate: AnyAggregate, memory: Memory, commit: Commit, position: number, keep: number): Memory {
  let state = memory.state;
  let touched: string[] | undefined = [];
  for (const stored of commit.events) {
    const event = aggregate.upcast ? aggregate.upcast(stored) : stored;
    state = aggregate.evolve(state, event);
    const keys = aggregate.eventTouches?.(event);
    touched = keys === undefined || touched === undefined ? undefined : [...touched, ...keys];
  }
  const recent: RecentCommit = {
    commandId: commit.commandId,
    commandType: commit.commandType,
    fromVersion: memory.version,
    version: commit.version,
    position,
    events: commit.events.map((e) => e.type),
    touched,
  };
  const kept = memory.recent.length >= keep ? memory.recent.slice(memory.recent.length - keep + 1) : memory.recent;
  return { state, version: commit.version, position, recent: [...kept, recent] };
}

/** Reads and folds the commits after what memory already holds. */
export async function catchUp(aggregate: AnyAggregate, store: EventStore, id: string, memory: Memory, keep: number): Promise<Memory> {
  let current = memory;
  for await (const commit of store.read(aggregate.name, id, memory.position)) {
    current = applyCommit(aggregate, current, commit, commit.position, keep);
  }
  return current;
}

/** What executing a command needs from its host. */
export interface ExecutionContext {
  readonly aggregate: AnyAggregate;
  readonly store: EventStore;
  /** Current states of the other aggregates the command reads. */
  loadDeps(command: CommandEnvelope): Promise<Record<string, unknown>>;
  readonly recentCommits: number;
  readonly conflictRetries: number;
}

/**
 * Runs one command against an aggregate's memory: answers a retry from memory,
 * merges or refuses a stale `If-Match`, decides, and appends with the expected
 * position. When another writer got there first, it catches up and decides again.
 */
export async function executeCommand(
  ctx: ExecutionContext,
  initial: Memory,
  command: CommandEnvelope,
): Promise<{ memory: Memory; result: CommandResult }> {
  const { aggregate, store } = ctx;
  let memory = initial;
  for (let attempt = 0; ; attempt++) {
    const seen = memory.recent.find((c) => c.commandId === command.commandId);
    if (seen) {
      if (seen.commandType !== command.type) throw new IdempotencyKeyReusedError(command.commandId);
      return { memory, result: accepted(command.id, seen) };
    }
    if (!mergeable(ctx, memory, command)) return { memory, result: { kind: 'conflict', currentVersion: memory.version } };

    const domainCommand = { type: command.type, data: command.data };
    const decision = aggregate.decide(memory.state, domainCommand, await ctx.loadDeps(command));
    if (!decision.ok) return { memory, result: { kind: 'rejected', reason: decision.reason } };

    const events: StoredEvent[] = decision.events.map((e: StoredEvent) => ({ type: e.type, data: e.data, at: command.at }));
    const commit: Commit = {
      commandId: command.commandId,
      commandType: command.type,
      aggregate: aggregate.name,
      id: command.id,
      version: memory.version + events.length,
      events,
    };
    try {
      const ack = await store.append(commit, memory.position);
      if (ack.duplicate) {
        // Appended by an earlier attempt whose reply was lost: answer as the original did.
        const original = await store.commitAt(ack.position);
        memory = await catchUp(aggregate, store, command.id, memory, ctx.recentCommits);
        const version = original?.version ?? memory.version;
        const types = original?.events.map((e) => e.type) ?? [];
        return { memory, result: { kind: 'accepted', id: command.id, version, position: ack.position, events: types } };
      }
      memory = applyCommit(aggregate, memory, commit, ack.position, ctx.recentCommits);
      return { memory, result: accepted(command.id, memory.recent[memory.recent.length - 1]!) };
    } catch (err) {
      if (!(err instanceof WrongExpectedPositionError) || attempt >= ctx.conflictRetries) {
        if (err instanceof WrongExpectedPositionError) return { memory, result: { kind: 'conflict', currentVersion: memory.version } };
        throw err;
      }
      // Two writers in lockstep would keep colliding: a jittered pause breaks the tie.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** attempt, 20)));
      memory = await catchUp(aggregate, store, command.id, memory, ctx.recentCommits);
    }
  }
}

/**
 * A command based on an older version goes ahead only when every commit since that
 * version is known and touched nothing the command touches (DESIGN §1).
 */
function mergeable(ctx: ExecutionContext, memory: Memory, command: CommandEnvelope): boolean {
  const expected = command.expectedVersion;
  if (expected === undefined || expected === memory.version) return true;
  if (expected > memory.version) return false;
  const since = memory.recent.filter((c) => c.version > expected);
  const complete = since.length > 0 && since[0]!.fromVersion <= expected;
  if (!complete) return false;
  const touches = ctx.aggregate.touches?.({ type: command.type, data: command.data });
  return since.every((c) => !overlaps(c.touched, touches));
}

function accepted(id: string, commit: RecentCommit): CommandResult {
  return { kind: 'accepted', id, version: commit.version, position: commit.position, events: commit.events };
}
