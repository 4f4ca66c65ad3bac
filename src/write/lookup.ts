import type { AnyAggregate } from '../core/aggregate.js';
import type { CommandEnvelope } from './execute.js';
import { metadataOf } from './execute.js';

/** What a command's lookup came to: its answer, or the error it failed with. */
export type LookupOutcome = { readonly value: unknown } | { readonly error: unknown };

const none: Promise<LookupOutcome> = Promise.resolve({ value: undefined });

/**
 * Starts the aggregate's `lookup` for a command as it arrives, so that the lookups of
 * queued commands run while earlier ones execute, and the actor still takes the commands
 * in arrival order (docs/architecture.md, "Handler context"). Never rejects: a failure is
 * an outcome, which the command answers when its turn comes.
 */
export function startLookup(aggregate: AnyAggregate, command: CommandEnvelope, services: unknown): Promise<LookupOutcome> {
  if (!aggregate.lookup) return none;
  const context = { id: command.id, now: new Date(command.at), metadata: metadataOf(command), services };
  try {
    return Promise.resolve(aggregate.lookup({ type: command.type, data: command.data }, context)).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    );
  } catch (error) {
    return Promise.resolve({ error });
  }
}
