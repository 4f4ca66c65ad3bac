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

/** JetStream could not be reached, or did not answer in time. The outcome of an append is unknown. */
export class EventStoreUnavailableError extends ConvergeError {
  constructor(message = 'the event store is unavailable; retry with the same Idempotency-Key', options?: ErrorOptions) {
    super('event_store_unavailable', 503, message, options);
  }
}

/** The worker that owns a partition could not be reached (it may be restarting). */
export class PartitionUnavailableError extends ConvergeError {
  constructor(partition: number, options?: ErrorOptions) {
    super('partition_unavailable', 503, `the owner of partition ${partition} is unavailable; retry shortly`, options);
  }
}

/** An actor's mailbox is full. */
export class OverloadedError extends ConvergeError {
  constructor(key: string) {
    super('overloaded', 429, `too many commands are waiting for ${key}; retry shortly`);
  }
}

/** The process is draining for shutdown and takes no new commands. */
export class ShuttingDownError extends ConvergeError {
  constructor() {
    super('shutting_down', 503, 'this worker is shutting down; retry shortly');
  }
}

/** The store holds a newer commit for the aggregate than the writer expected. Handled inside the actor. */
export class WrongExpectedPositionError extends ConvergeError {
  constructor(subject: string, expected: number, options?: ErrorOptions) {
    super('wrong_expected_position', 409, `${subject} has moved past position ${expected}`, options);
  }
}

/** A command reused an Idempotency-Key that an earlier, different command of this aggregate used. */
export class IdempotencyKeyReusedError extends ConvergeError {
  constructor(key: string) {
    super('idempotency_key_reused', 422, `Idempotency-Key ${key} was used by a different command`);
  }
}

const wireErrors: Record<string, (message: string) => ConvergeError> = {
  event_store_unavailable: (m) => new EventStoreUnavailableError(m),
  overloaded: (m) => Object.assign(new OverloadedError(''), { message: m }),
  shutting_down: () => new ShuttingDownError(),
  idempotency_key_reused: (m) => Object.assign(new IdempotencyKeyReusedError(''), { message: m }),
};

/** Rebuilds an error that crossed NATS from the owner of a partition. */
export function errorFromWire(code: string, message: string): ConvergeError {
  return wireErrors[code]?.(message) ?? new ConvergeError(code, 500, message);
}
