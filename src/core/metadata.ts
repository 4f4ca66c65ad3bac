/**
 * What travels with a command and its commit besides the data (see docs/architecture.md,
 * "Metadata"): which command it was, the conversation it belongs to, what caused it, and
 * who asked when access control knows.
 */
export interface CommandMetadata {
  /** The command's id: its `Idempotency-Key`, or one converge made. */
  readonly commandId: string;
  /** The conversation the command belongs to: `X-Correlation-Id`, or the id of the first command in it. */
  readonly correlationId: string;
  /** What caused it: the command's own id for a request, the event's id for a command a reactor or process sent. */
  readonly causationId: string;
  /** The name of the token the request carried, when access control knows one; never the token. */
  readonly caller?: string;
}

/** Metadata for a command that nothing caused but its caller: a conversation of its own. */
export function rootMetadata(commandId: string, opts: { correlationId?: string | undefined; caller?: string | undefined } = {}): CommandMetadata {
  return {
    commandId,
    correlationId: opts.correlationId ?? commandId,
    causationId: commandId,
    ...(opts.caller === undefined ? {} : { caller: opts.caller }),
  };
}
