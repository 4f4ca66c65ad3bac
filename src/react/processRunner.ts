import type { Logger } from 'pino';
import type { StoredEvent } from '../core/aggregate.js';
import type { Clock } from '../core/clock.js';
import { WrongExpectedPositionError } from '../core/errors.js';
import type { Commit, EventStore, StoredCommit } from '../core/eventStore.js';
import { processStream, type AnyProcess, type ProcessInput, type ReactionCommand } from '../core/reactions.js';
import { decisionRecords, foldInstance, freshInstance, handledAlready, inputKey, inputTime, issuedBy, type InstanceMemory } from './instances.js';
import type { ReactionInput } from './reactionFeed.js';
import { handledEvents, type ReactionDispatch } from './reactorRunner.js';

/** What became of a timer the timer service fired. */
export type Firing = 'fired' | 'stale';

/** A process's decisions and its outbox: what the reaction feed and the timer service call. */
export interface ProcessInstances {
  /** What the process does for a commit: decide on each event it handles, or relay the commands one of its own commits issued. */
  inputs(commit: StoredCommit): ReactionInput[];
  /** Fires a timer of an instance, if it is still pending in that scheduling (`seq`); `stale` otherwise. */
  fire(id: string, name: string, seq: number): Promise<Firing>;
  /** Drops every instance kept in memory: they are folded from the store again when next needed. */
  forget(): void;
}

export interface ProcessInstancesOptions {
  readonly process: AnyProcess;
  readonly store: EventStore;
  readonly dispatch: ReactionDispatch;
  /** Throws for a command the app cannot run (no such aggregate or command, data its schema refuses). */
  readonly check?: (command: ReactionCommand) => void;
  readonly settings: unknown;
  readonly clock: Clock;
  readonly upcast: (aggregate: string, event: StoredEvent) => StoredEvent;
  readonly log: Logger;
  /** Instances kept in memory; the least recently used beyond are folded from the store again when needed. */
  readonly cacheSize?: number;
}

/** How often a decision is made again after another writer got to the instance first. */
const CONFLICT_RETRIES = 5;

/**
 * A process manager's instances (docs/architecture.md, "Reactions"). An input (an event the
 * process handles, or one of its timers falling due) is decided on the instance's state and
 * recorded as one commit of the instance's stream, appended at the instance's last position:
 * what was handled, the process's own events, the timers it scheduled or cancelled, and the
 * commands it issued. The commands go out only when that commit comes back through the feed
 * (the outbox relay), each with the key `p.<process>.<position>.<n>`, so a crash anywhere
 * repeats them and they take effect once. Decisions of one instance are made one at a time.
 */
export function processInstances(opts: ProcessInstancesOptions): ProcessInstances {
  const { process, store, log, clock } = opts;
  const stream = processStream(process.name);
  const handles = new Set<string>(process.handles);
  const cache = new Map<string, InstanceMemory>();
  const chains = new Map<string, Promise<unknown>>();
  const cacheSize = opts.cacheSize ?? 10_000;

  async function load(id: string): Promise<InstanceMemory> {
    const cached = cache.get(id);
    if (cached) {
      // Most recently used last.
      cache.delete(id);
      cache.set(id, cached);
      return cached;
    }
    let memory = freshInstance(process);
    for await (const commit of store.read(stream, id, 0)) memory = foldInstance(process, memory, commit, commit.position);
    remember(id, memory);
    return memory;
  }

  function remember(id: string, memory: InstanceMemory): void {
    cache.delete(id);
    cache.set(id, memory);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
  }

  /** Runs `work` after the instance's earlier work, one decision at a time per instance. */
  function serially<T>(id: string, work: () => Promise<T>): Promise<T> {
    const run = (chains.get(id) ?? Promise.resolve()).then(work, work);
    const tail = run.catch(() => undefined);
    chains.set(id, tail);
    void tail.then(() => chains.get(id) === tail && chains.delete(id));
    return run;
  }

  /**
   * Decides an input for an instance and records the decision; answers false when the
   * instance had nothing to do with it (not started, ended, already handled, a stale timer).
   */
  async function decide(id: string, input: ProcessInput & { readonly seq?: number }, start: boolean, correlationId: string, causationId: string): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const memory = await load(id);
      if (memory.ended) {
        if (input.kind === 'event' && start && attempt === 0 && !handledAlready(memory, input.meta.position, input.meta.eventIndex)) {
          log.warn(
            { process: process.name, instance: id, event: input.event.type, position: input.meta.position },
            `${process.name} ${id} has ended, so ${input.event.type} at ${input.meta.position} does not start it again: an instance id is used once; correlate to an id per run (e.g. the aggregate's id and version) when one aggregate starts it again`,
          );
        }
        return false;
      }
      if (input.kind === 'event') {
        if (memory.version === 0 && !start) return false;
        if (handledAlready(memory, input.meta.position, input.meta.eventIndex)) return false;
      } else {
        const pending = memory.timers[input.name];
        if (!pending || pending.seq !== input.seq) return false;
      }
      const recordedAt = clock.now();
      const now = inputTime(input, recordedAt);
      const decision = process.decide(memory.state, input, { id, now: new Date(now), settings: opts.settings });
      for (const command of decision.commands ?? []) opts.check?.(command);
      const at = new Date(recordedAt).toISOString();
      const events = decisionRecords(process, memory, input, decision, now).map((e) => ({ type: e.type, data: e.data, at }));
      const commit: Commit = {
        commandId: inputKey(input),
        commandType: input.kind === 'event' ? `~${input.event.type}` : `~Timer`,
        aggregate: stream,
        id,
        version: memory.version + events.length,
        events,
        metadata: { correlationId, causationId, caller: `process:${process.name}` },
      };
      try {
        const ack = await store.append(commit, memory.position);
        // A duplicate: this very decision was recorded already (an earlier attempt whose answer was lost).
        if (ack.duplicate) cache.delete(id);
        else remember(id, foldInstance(process, memory, commit, ack.position));
        return true;
      } catch (err) {
        // Refused because another writer (a former holder of the reactions' lease) moved the
        // instance on, or not answered and perhaps stored all the same (NATS paused): either
        // way the memory may be behind the stream, and the next load reads the stream again.
        cache.delete(id);
        if (!(err instanceof WrongExpectedPositionError) || attempt >= CONFLICT_RETRIES) throw err;
      }
    }
  }

  /** The commands one of the process's own commits issued, sent with keys derived from it. */
  function relay(commit: StoredCommit): ReactionInput[] {
    const index = commit.events.findIndex((e) => e.type === '~Issued');
    if (index < 0) return [];
    const commands = issuedBy(commit.events);
    return [
      {
        eventIndex: index,
        type: '~Issued',
        key: commit.id,
        run: async () => {
          await Promise.all(
            commands.map(async (command, n) => {
              const result = await opts.dispatch(command, {
                idempotencyKey: `p.${process.name}.${commit.position}.${n}`,
                correlationId: commit.metadata?.correlationId ?? commit.commandId,
                causationId: `${commit.position}:${index}`,
                caller: `process:${process.name}`,
              });
              if (result.kind !== 'accepted') {
                log.info({ process: process.name, instance: commit.id, command: command.type, result }, `${process.name} ${commit.id}: ${command.type} on ${command.aggregate} ${command.id} was ${result.kind === 'rejected' ? `rejected: ${result.reason}` : 'in conflict'}`);
              }
            }),
          );
        },
      },
    ];
  }

  return {
    inputs(commit) {
      if (commit.aggregate === stream) return relay(commit);
      const inputs: ReactionInput[] = [];
      for (const { event, meta } of handledEvents(commit, handles, opts.upcast)) {
        const { eventIndex } = meta;
        // Correlated once, here: inputs of different instances run concurrently. An event for no
        // instance is no input; a correlate that throws does so again in `run`, under the policy.
        let target: ReturnType<typeof process.correlate>;
        let threw = false;
        try {
          target = process.correlate(event, meta);
        } catch {
          threw = true;
        }
        if (!threw && !target) continue;
        inputs.push({
          eventIndex,
          type: event.type,
          ...(target ? { key: target.id } : {}),
          run: async () => {
            target ??= process.correlate(event, meta);
            if (!target) return;
            const { id, start } = target;
            const correlationId = commit.metadata?.correlationId ?? commit.commandId;
            await serially(id, () => decide(id, { kind: 'event', event, meta }, start === true, correlationId, `${commit.position}:${eventIndex}`));
          },
        });
      }
      return inputs;
    },
    forget: () => cache.clear(),
    async fire(id, name, seq) {
      return serially(id, async () => {
        const memory = await load(id);
        const pending = memory.timers[name];
        if (!pending || pending.seq !== seq || memory.ended) return 'stale';
        const input = { kind: 'timer' as const, name, data: pending.data, due: new Date(pending.due).toISOString(), seq };
        const decided = await decide(id, input, false, memory.correlationId ?? `${process.name}:${id}`, `timer:${name}:${seq}`);
        return decided ? 'fired' : 'stale';
      });
    },
  };
}
