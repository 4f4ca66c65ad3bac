import type { FastifyReply } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import type { AnyAggregate } from '../core/aggregate.js';
import type { EventStore, StoredCommit } from '../core/eventStore.js';
import { stateAt } from '../write/rehydrate.js';
import { sendError } from './replies.js';

/** `?fromVersion=&limit=` of a history read. */
export const historyQuery = (maxPageSize: number) =>
  Type.Object(
    { fromVersion: Type.Optional(Type.Integer({ minimum: 1 })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: maxPageSize })) },
    { additionalProperties: false },
  );

/** `?atVersion=` of a state read. */
export const StateQuery = Type.Object({ atVersion: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false });

/**
 * An aggregate's events from `fromVersion` on, upcast, at most `limit`, read from the event
 * store; `nextFromVersion` when there are more. Shared by the query API's history route and
 * the admin API's event browser, so both show the same thing (docs/architecture.md, "HTTP").
 */
export async function sendHistory(
  reply: FastifyReply,
  aggregate: AnyAggregate,
  store: EventStore,
  id: string,
  query: { fromVersion?: number; limit?: number },
  maxPageSize: number,
) {
  const from = query.fromVersion ?? 1;
  const limit = query.limit ?? maxPageSize;
  const events = [];
  let next: number | undefined;
  for await (const commit of store.read(aggregate.name, id, 0)) {
    const first = commit.version - commit.events.length + 1;
    for (const [i, event] of commit.events.entries()) {
      const version = first + i;
      if (version < from) continue;
      if (events.length === limit) {
        next = version;
        break;
      }
      events.push({ version, position: commit.position, commandId: commit.commandId, ...conversationOf(commit), ...(aggregate.upcast?.(event) ?? event) });
    }
    if (next !== undefined) break;
  }
  if (events.length === 0 && from === 1) return sendError(reply, 'not_found', `${aggregate.name} ${id} has no events`);
  return { aggregate: aggregate.name, id, events, ...(next === undefined ? {} : { nextFromVersion: next }) };
}

/** A commit's correlation, causation and caller, as history shows them; none for a commit stored before they were recorded. */
function conversationOf(commit: StoredCommit): { correlationId?: string; causationId?: string; caller?: string } {
  const m = commit.metadata;
  if (!m) return {};
  return { correlationId: m.correlationId, causationId: m.causationId, ...(m.caller === undefined ? {} : { caller: m.caller }) };
}

/**
 * An aggregate's state as of `atVersion` (the latest without it), folded by the same
 * rehydration the actors use; `version_not_found` when the version falls inside a commit.
 */
export async function sendState(reply: FastifyReply, aggregate: AnyAggregate, store: EventStore, id: string, atVersion: number | undefined) {
  const at = atVersion ?? Number.MAX_SAFE_INTEGER;
  const memory = await stateAt(aggregate, store, id, at);
  if (memory.version === 0) return sendError(reply, 'not_found', `${aggregate.name} ${id} has no events`);
  if (atVersion !== undefined && memory.version !== at) {
    return sendError(reply, 'version_not_found', `version ${at} falls inside a commit or beyond the last one (${memory.version})`);
  }
  return { aggregate: aggregate.name, id, version: memory.version, position: memory.position, state: memory.state };
}
