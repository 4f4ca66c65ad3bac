import type { AnyReactor, ReactionCommand, ReactionMeta, ReactionResult } from '../core/reactions.js';
import type { StoredEvent } from '../core/aggregate.js';
import type { StoredCommit } from '../core/eventStore.js';
import type { DispatchOptions } from '../write/envelope.js';
import type { ReactionInput } from './reactionFeed.js';

/** The events of a commit that a reaction handles, upcast, each with its meta. */
export function handledEvents(
  commit: StoredCommit,
  handles: ReadonlySet<string>,
  upcast: (aggregate: string, event: StoredEvent) => StoredEvent,
): { event: StoredEvent; meta: ReactionMeta }[] {
  return commit.events.flatMap((raw, eventIndex) => {
    const event = upcast(commit.aggregate, raw);
    if (!handles.has(event.type)) return [];
    const { aggregate, id, version, position, metadata } = commit;
    return [{ event, meta: { aggregate, id, version, position, at: event.at, eventIndex, ...(metadata ? { metadata } : {}) } }];
  });
}

/** Sends a command a reaction decided, as `dispatch` would, with the key and metadata given. */
export type ReactionDispatch = (command: ReactionCommand, opts: DispatchOptions) => Promise<ReactionResult>;

/** A reactor's default sequence: the event's aggregate instance. */
const byInstance = (_event: StoredEvent, meta: ReactionMeta) => `${meta.aggregate}.${meta.id}`;

/** The event's sequence key; throws for one that is not a string (a promise, undefined), rather than let them all share one. */
function keyOf(sequenceKey: (event: StoredEvent, meta: ReactionMeta) => string, event: StoredEvent, meta: ReactionMeta): string {
  const key: unknown = sequenceKey(event, meta);
  if (typeof key !== 'string') throw new TypeError(`sequenceKey answered ${key === null ? 'null' : typeof key} for ${event.type} at ${meta.position}:${meta.eventIndex}; it must answer a string`);
  return key;
}

/**
 * What a reactor does for a commit: `handle` for each event of a type it handles, with a
 * context whose `dispatch` gives each command the key `r.<reactor>.<position>.<index>.<n>`
 * (n counting the calls of one handling), the commit's correlation, the event as its cause
 * and the reactor as its caller (docs/architecture.md, "Reactions"). Each input is keyed by
 * the reactor's `sequenceKey`: the feed runs one key's inputs in order, different keys
 * concurrently. An input whose key throws has none, so it runs alone, where its handling
 * throws the same under the reactor's policy.
 */
export function reactorInputs(
  reactor: AnyReactor,
  upcast: (aggregate: string, event: StoredEvent) => StoredEvent,
  dispatch: ReactionDispatch,
  services: unknown,
): (commit: StoredCommit) => ReactionInput[] {
  const handles = new Set<string>(reactor.handles);
  const sequenceKey = reactor.sequenceKey ?? byInstance;
  return (commit) =>
    handledEvents(commit, handles, upcast).map(({ event, meta }): ReactionInput => {
      const { eventIndex } = meta;
      let key: string | undefined;
      try {
        key = keyOf(sequenceKey, event, meta);
      } catch {
        key = undefined;
      }
      return {
        eventIndex,
        type: event.type,
        ...(key === undefined ? {} : { key }),
        run: async () => {
          if (key === undefined) keyOf(sequenceKey, event, meta);
          let n = 0;
          const context = {
            services,
            dispatch: (command: ReactionCommand) =>
              dispatch(command, {
                idempotencyKey: `r.${reactor.name}.${commit.position}.${eventIndex}.${n++}`,
                correlationId: commit.metadata?.correlationId ?? commit.commandId,
                causationId: `${commit.position}:${eventIndex}`,
                caller: `reactor:${reactor.name}`,
              }),
          };
          await reactor.handle(event, meta, context);
        },
      };
    });
}
