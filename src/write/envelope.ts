import { randomUUID } from 'node:crypto';
import { acceptsId, type AnyAggregate } from '../core/aggregate.js';
import { ConvergeError, InvalidCommandError } from '../core/errors.js';
import { schemaIssues } from '../core/schemas.js';
import { isoTime } from '../core/clock.js';
import type { CommandEnvelope } from './execute.js';

/** How a dispatched command is sent, as the HTTP headers would say it. */
export interface DispatchOptions {
  /** Its id: a retry with the same key takes effect once (`Idempotency-Key`). */
  readonly idempotencyKey?: string;
  /** The version it is based on (`If-Match`); see docs/architecture.md, "Merging stale commands". */
  readonly expectedVersion?: number;
  /** The conversation it belongs to (`X-Correlation-Id`). */
  readonly correlationId?: string;
  /** What caused it, when not its caller. */
  readonly causationId?: string;
  /** Who sent it. */
  readonly caller?: string;
}

/**
 * The envelope of a command sent from code (`dispatch`, a reactor, a process), checked as the
 * HTTP edge checks a request: a known aggregate and command, an id it accepts, data that
 * fits the command's schema (else `InvalidCommandError`), an idempotency key of the HTTP
 * header's shape. `now` is when it was received.
 */
export function commandEnvelope(aggregates: ReadonlyMap<string, AnyAggregate>, command: { aggregate: string; id: string; type: string; data: unknown }, opts: DispatchOptions, now: number): CommandEnvelope {
  const aggregate = aggregates.get(command.aggregate);
  if (!aggregate) throw new ConvergeError('unknown_aggregate', `no aggregate named ${command.aggregate}`);
  const spec = Object.values(aggregate.commands).find((c) => c.type === command.type);
  if (!spec) throw new ConvergeError('unknown_command', `${aggregate.name} has no command ${command.type}`);
  if (!acceptsId(aggregate, command.id)) throw new InvalidCommandError(aggregate.name, command.type, [{ path: '/id', message: `must match ${aggregate.idPattern} and hold no . * > or white space` }]);
  const issues = schemaIssues(spec.schema, command.data);
  if (issues.length > 0) throw new InvalidCommandError(aggregate.name, command.type, issues);
  const key = opts.idempotencyKey;
  if (key !== undefined && !/^[A-Za-z0-9_.:-]{1,128}$/.test(key)) throw new InvalidCommandError(aggregate.name, command.type, [{ path: '/idempotencyKey', message: 'must be 1-128 of [A-Za-z0-9_.:-]' }]);
  return {
    commandId: key ?? randomUUID(),
    aggregate: aggregate.name,
    id: command.id,
    type: spec.type,
    data: command.data as object,
    at: isoTime(now),
    ...(opts.expectedVersion === undefined ? {} : { expectedVersion: opts.expectedVersion }),
    ...(opts.correlationId === undefined ? {} : { correlationId: opts.correlationId }),
    ...(opts.causationId === undefined ? {} : { causationId: opts.causationId }),
    ...(opts.caller === undefined ? {} : { caller: opts.caller }),
  };
}
