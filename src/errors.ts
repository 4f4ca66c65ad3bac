/** What a client should do about an error: its HTTP status and whether to come back later. */
export interface ErrorAdvice {
  readonly status: number;
  /** Seconds for `Retry-After`; absent when retrying the same request cannot help. */
  readonly retryAfterS?: number;
}

/**
 * Every error code converge answers with, once: its HTTP status and retry advice.
 * Replies (`sendError`) take their `Retry-After` from here, and an error forwarded from
 * the owner of a partition is rebuilt from its code, so it keeps both on the way back.
 */
export const errorCatalogue = {
  invalid_command: { status: 400 },
  invalid_json: { status: 400 },
  invalid_body: { status: 400 },
  invalid_query: { status: 400 },
  invalid_request: { status: 400 },
  invalid_cursor: { status: 400 },
  bad_request: { status: 400 },
  unauthorized: { status: 401 },
  not_found: { status: 404 },
  unknown_command: { status: 404 },
  unknown_aggregate: { status: 404 },
  unknown_projection: { status: 404 },
  unknown_subscriber: { status: 404 },
  not_parked: { status: 404 },
  commit_not_found: { status: 404 },
  position_not_found: { status: 404 },
  version_not_found: { status: 404 },
  version_conflict: { status: 409 },
  wrong_expected_position: { status: 409 },
  subscriber_exists: { status: 409 },
  still_failing: { status: 409 },
  body_too_large: { status: 413 },
  unsupported_media_type: { status: 415 },
  rejected: { status: 422 },
  idempotency_key_reused: { status: 422 },
  overloaded: { status: 429, retryAfterS: 1 },
  internal_error: { status: 500 },
  event_store_unavailable: { status: 503, retryAfterS: 1 },
  partition_unavailable: { status: 503, retryAfterS: 1 },
  shutting_down: { status: 503, retryAfterS: 1 },
  not_ready: { status: 503, retryAfterS: 1 },
  views_not_ready: { status: 503, retryAfterS: 1 },
  views_rebuilding: { status: 503, retryAfterS: 1 },
  not_caught_up: { status: 504 },
  outcome_unknown: { status: 504, retryAfterS: 1 },
} as const satisfies Record<string, ErrorAdvice>;

/** A code from the catalogue. */
export type ErrorCode = keyof typeof errorCatalogue;

/** The catalogue's advice for a code, or `undefined` for a code it does not know. */
export function adviceFor(code: string): ErrorAdvice | undefined {
  return Object.hasOwn(errorCatalogue, code) ? errorCatalogue[code as ErrorCode] : undefined;
}

/**
 * The catalogue of faults converge throws. Business outcomes (rejections, version
 * conflicts) are values, not errors; these are infrastructure faults and protocol
 * misuse, each with a stable code and the HTTP status it maps to.
 */
export class ConvergeError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A `ConvergeError` whose status comes from the catalogue. */
export function catalogued(code: ErrorCode, message: string, options?: ErrorOptions): ConvergeError {
  return new ConvergeError(code, errorCatalogue[code].status, message, options);
}

/** JetStream could not be reached, or did not answer in time. The outcome of an append is unknown. */
export class EventStoreUnavailableError extends ConvergeError {
  constructor(message = 'the event store is unavailable; retry with the same Idempotency-Key', options?: ErrorOptions) {
    super('event_store_unavailable', errorCatalogue.event_store_unavailable.status, message, options);
  }
}

/** Nobody serves a partition (its owner is restarting): the request was not run, so a retry is safe. */
export class PartitionUnavailableError extends ConvergeError {
  constructor(partition: number, options?: ErrorOptions) {
    super(
      'partition_unavailable',
      errorCatalogue.partition_unavailable.status,
      `the owner of partition ${partition} is unavailable; retry shortly`,
      options,
    );
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
      errorCatalogue.outcome_unknown.status,
      `the owner of partition ${partition} did not answer in time; the command may have been applied; retry with the same Idempotency-Key`,
      options,
    );
  }
}

/** An actor's mailbox is full. */
export class OverloadedError extends ConvergeError {
  constructor(key: string) {
    super('overloaded', errorCatalogue.overloaded.status, `too many commands are waiting for ${key}; retry shortly`);
  }
}

/** The process is draining for shutdown and takes no new commands. */
export class ShuttingDownError extends ConvergeError {
  constructor() {
    super('shutting_down', errorCatalogue.shutting_down.status, 'this worker is shutting down; retry shortly');
  }
}

/** The store holds a newer commit for the aggregate than the writer expected. Handled inside the actor. */
export class WrongExpectedPositionError extends ConvergeError {
  constructor(subject: string, expected: number, options?: ErrorOptions) {
    super('wrong_expected_position', errorCatalogue.wrong_expected_position.status, `${subject} has moved past position ${expected}`, options);
  }
}

/** A command reused an Idempotency-Key that an earlier, different command of this aggregate used. */
export class IdempotencyKeyReusedError extends ConvergeError {
  constructor(key: string) {
    super('idempotency_key_reused', errorCatalogue.idempotency_key_reused.status, `Idempotency-Key ${key} was used by a different command`);
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

/**
 * Rebuilds an error that crossed NATS: the catalogue decides its status, and a code it
 * does not know (an owner running a newer version) keeps the status the owner sent.
 */
export function errorFromWire(wire: Partial<WireError>): ConvergeError {
  const code = typeof wire.code === 'string' ? wire.code : 'internal_error';
  const sent = typeof wire.status === 'number' && wire.status >= 400 && wire.status < 600 ? wire.status : undefined;
  const status = adviceFor(code)?.status ?? sent ?? errorCatalogue.internal_error.status;
  return new ConvergeError(code, status, typeof wire.message === 'string' ? wire.message : code);
}
