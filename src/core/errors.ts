import type { SchemaIssue } from './schemas.js';

/**
 * What a client should do about an error:
 * - `fix`: the request is wrong; sending it again as it is gets the same answer;
 * - `later`: nothing was done; send it again after `Retry-After`;
 * - `same-key`: it may have been done; send it again with the same `Idempotency-Key`,
 *   which applies it once.
 */
export type RetryAdvice = 'fix' | 'later' | 'same-key';

/** An error code's HTTP status and retry advice. */
export interface ErrorAdvice {
  readonly status: number;
  readonly retry: RetryAdvice;
  /** Seconds for `Retry-After`; absent when retrying the same request cannot help. */
  readonly retryAfterS?: number;
}

const fix = (status: number) => ({ status, retry: 'fix' }) as const;
const later = (status: number) => ({ status, retry: 'later', retryAfterS: 1 }) as const;
const sameKey = (status: number) => ({ status, retry: 'same-key', retryAfterS: 1 }) as const;

/**
 * Every error code converge answers with, once (see docs/architecture.md, "Errors"):
 * its HTTP status and retry advice. Replies take their status and `Retry-After` from here,
 * and an error forwarded from the owner of a partition is rebuilt from its code, so it
 * keeps both on the way back. Code elsewhere names a code only as an `ErrorCode`.
 * `store_changed` and `apply_failed` are read-side faults that their feeds handle and no
 * reply carries; they are here so that every code converge throws has one entry.
 */
export const errorCatalogue = {
  invalid_command: fix(400),
  invalid_json: fix(400),
  invalid_body: fix(400),
  invalid_query: fix(400),
  invalid_request: fix(400),
  invalid_cursor: fix(400),
  bad_request: fix(400),
  unauthorized: fix(401),
  forbidden: fix(403),
  not_found: fix(404),
  unknown_command: fix(404),
  unknown_aggregate: fix(404),
  unknown_projection: fix(404),
  unknown_subscriber: fix(404),
  unknown_reaction: fix(404),
  not_parked: fix(404),
  commit_not_found: fix(404),
  position_not_found: fix(404),
  version_not_found: fix(404),
  version_conflict: fix(409),
  wrong_expected_position: fix(409),
  subscriber_exists: fix(409),
  still_failing: fix(409),
  reaction_parked: fix(409),
  body_too_large: fix(413),
  unsupported_media_type: fix(415),
  rejected: fix(422),
  idempotency_key_reused: fix(422),
  overloaded: later(429),
  rate_limited: later(429),
  internal_error: sameKey(500),
  event_store_unavailable: sameKey(503),
  event_store_full: later(503),
  partition_unavailable: later(503),
  shutting_down: later(503),
  not_ready: later(503),
  views_not_ready: later(503),
  views_rebuilding: later(503),
  view_stale: later(503),
  metrics_unavailable: later(503),
  service_unavailable: later(503),
  store_changed: later(503),
  apply_failed: later(503),
  not_caught_up: later(504),
  outcome_unknown: sameKey(504),
} as const satisfies Record<string, ErrorAdvice>;

/** A code from the catalogue. */
export type ErrorCode = keyof typeof errorCatalogue;

/** The catalogue's advice for a code, or `undefined` for a code it does not know. */
export function adviceFor(code: string): ErrorAdvice | undefined {
  return Object.hasOwn(errorCatalogue, code) ? errorCatalogue[code as ErrorCode] : undefined;
}

/**
 * The faults converge throws. Business outcomes (rejections, version conflicts) are
 * values, not errors; these are infrastructure faults and protocol misuse, each with a
 * code from the catalogue and the HTTP status it maps to.
 */
export class ConvergeError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = errorCatalogue[code].status;
  }
}

/** JetStream could not be reached, or did not answer in time. The outcome of an append is unknown. */
export class EventStoreUnavailableError extends ConvergeError {
  constructor(message = 'the event store is unavailable; retry with the same Idempotency-Key', options?: ErrorOptions) {
    super('event_store_unavailable', message, options);
  }
}

/**
 * nats-server refused the append because its storage is full (JetStream's `insufficient
 * resources`): nothing was stored, so the command can be sent again, with any key, once
 * storage is freed.
 */
export class EventStoreFullError extends ConvergeError {
  constructor(reason: string, options?: ErrorOptions) {
    super('event_store_full', `the event store refuses writes: ${reason}; nothing was stored, retry once storage is freed`, options);
  }
}

/** Nobody serves a partition (its owner is restarting): the request was not run, so a retry is safe. */
export class PartitionUnavailableError extends ConvergeError {
  constructor(partition: number, options?: ErrorOptions) {
    super('partition_unavailable', `the owner of partition ${partition} is unavailable; retry shortly`, options);
  }
}

/**
 * The owner of a partition took a command but did not answer in time: it may have
 * committed it. Only a retry with the same `Idempotency-Key` is sure to apply it once.
 */
export class OutcomeUnknownError extends ConvergeError {
  constructor(partition: number, options?: ErrorOptions) {
    super(
      'outcome_unknown',
      `the owner of partition ${partition} did not answer in time; the command may have been applied; retry with the same Idempotency-Key`,
      options,
    );
  }
}

/** An actor's mailbox is full. */
export class OverloadedError extends ConvergeError {
  constructor(key: string) {
    super('overloaded', `too many commands are waiting for ${key}; retry shortly`);
  }
}

/** The process is draining for shutdown and takes no new commands. */
export class ShuttingDownError extends ConvergeError {
  constructor() {
    super('shutting_down', 'this worker is shutting down; retry shortly');
  }
}

/** The store holds a newer commit for the aggregate than the writer expected. Handled inside the actor. */
export class WrongExpectedPositionError extends ConvergeError {
  constructor(subject: string, expected: number, options?: ErrorOptions) {
    super('wrong_expected_position', `${subject} has moved past position ${expected}`, options);
  }
}

/** A command reused an Idempotency-Key that an earlier, different command of this aggregate used. */
export class IdempotencyKeyReusedError extends ConvergeError {
  constructor(key: string) {
    super('idempotency_key_reused', `Idempotency-Key ${key} was used by a different command`);
  }
}

/** A command's data does not fit its schema (a command sent through `dispatch` rather than HTTP). */
export class InvalidCommandError extends ConvergeError {
  readonly details: readonly SchemaIssue[];
  constructor(aggregate: string, type: string, details: readonly SchemaIssue[]) {
    super('invalid_command', `${aggregate} ${type}: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`);
    this.details = details;
  }
}

/**
 * A decider emitted an event of a type its aggregate did not declare, or whose data does
 * not fit the event's schema: a bug in the domain's code. Nothing was appended; the client
 * gets `500 internal_error` and the log has the details.
 */
export class InvalidEventError extends ConvergeError {
  readonly details: readonly SchemaIssue[];
  constructor(aggregate: string, id: string, command: string, event: string, details: readonly SchemaIssue[]) {
    super('internal_error', `${aggregate} ${id}: ${command} emitted ${event}, which does not fit its schema: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`);
    this.details = details;
  }
}

/** A service a command's lookup called failed: nothing was decided or appended, so a retry is safe. */
export class ServiceUnavailableError extends ConvergeError {
  constructor(aggregate: string, command: string, options?: ErrorOptions) {
    const cause = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super('service_unavailable', `the lookup of ${aggregate} ${command} failed${cause}; nothing was done; retry shortly`, options);
  }
}

/** An error as it crosses NATS from the owner of a partition back to the worker that took the request. */
export interface WireError {
  readonly code: string;
  readonly status: number;
  readonly message: string;
}

/** What the owner sends back for a failed request; anything but a `ConvergeError` is an internal error. */
export function errorToWire(err: unknown): WireError {
  if (err instanceof ConvergeError) return { code: err.code, status: err.status, message: err.message };
  return { code: 'internal_error', status: errorCatalogue.internal_error.status, message: 'internal error' };
}

/** An error that crossed NATS with a code this version does not know (its owner runs a newer one). */
class UncataloguedError extends ConvergeError {
  constructor(code: string, status: number, message: string) {
    super('internal_error', message);
    Object.assign(this, { code, status });
  }
}

/**
 * Rebuilds an error that crossed NATS: the catalogue decides its status, and a code it
 * does not know (an owner running a newer version) keeps the status the owner sent.
 */
export function errorFromWire(wire: Partial<WireError>): ConvergeError {
  const code = typeof wire.code === 'string' ? wire.code : 'internal_error';
  const message = typeof wire.message === 'string' ? wire.message : code;
  if (adviceFor(code)) return new ConvergeError(code as ErrorCode, message);
  const sent = typeof wire.status === 'number' && wire.status >= 400 && wire.status < 600 ? wire.status : errorCatalogue.internal_error.status;
  return new UncataloguedError(code, sent, message);
}
