import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConvergeError, errorCatalogue, type ErrorCode } from '../core/errors.js';

/**
 * Sends the error shape `{ error, message, ...details }` with the status the catalogue
 * gives the code, and `Retry-After` when it advises coming back later.
 */
export function sendError(reply: FastifyReply, code: ErrorCode, message: string, details: object = {}): FastifyReply {
  return send(reply, code, errorCatalogue[code].status, message, details);
}

/** `ownRetryAfterS`: the error knows better than the catalogue when to come back (a rate limit's window). */
function send(reply: FastifyReply, code: string, status: number, message: string, details: object = {}, ownRetryAfterS?: number): FastifyReply {
  const advice = Object.hasOwn(errorCatalogue, code) ? errorCatalogue[code as ErrorCode] : undefined;
  const catalogued = advice ? ('retryAfterS' in advice ? advice.retryAfterS : undefined) : status === 503 || status === 429 ? 1 : undefined;
  const retryAfterS = catalogued === undefined ? undefined : (ownRetryAfterS ?? catalogued);
  if (retryAfterS !== undefined) reply.header('retry-after', String(retryAfterS));
  return reply.code(status).send({ error: code, message, ...details });
}

/** Fastify's own client-error codes and what we call them. */
const fastifyCodes: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['body_too_large', 'the request body is too large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'send the body as application/json'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_body', 'the Content-Length does not match the body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_json', 'the body is empty'],
};

/**
 * The one place errors become HTTP replies: validation failures are 400 with the
 * failing paths, catalogued `ConvergeError`s use their status and code, Fastify's
 * client errors keep theirs, and anything else is a logged 500 with no details.
 */
export function installErrorHandling(app: FastifyInstance, validationCode: ErrorCode): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      const details = err.validation.map((v) => ({
        path: [err.validationContext, ...v.instancePath.split('/').filter(Boolean), ...additional(v.params)].join('/'),
        message: v.message ?? 'is invalid',
      }));
      return sendError(reply, validationCode, `${details[0]?.path} ${details[0]?.message}`, { details });
    }
    if (err instanceof ConvergeError) {
      if (err.status >= 500) request.log.warn({ err, code: err.code }, 'request failed');
      // The code may be one a newer owner sent across the wire; it keeps the status it came with.
      const own = (err as { retryAfterS?: unknown }).retryAfterS;
      return send(reply, err.code, err.status, err.message, {}, typeof own === 'number' && own >= 1 ? Math.ceil(own) : undefined);
    }
    const known = fastifyCodes[err.code];
    if (known) return sendError(reply, known[0], known[1]);
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return send(reply, err.code === 'invalid_json' ? 'invalid_json' : 'bad_request', err.statusCode, err.message);
    }
    request.log.error({ err }, 'unexpected error');
    return sendError(reply, 'internal_error', 'an unexpected error occurred; it has been logged');
  });
}

function additional(params: Record<string, unknown>): string[] {
  const name = params['additionalProperty'] ?? params['missingProperty'];
  return typeof name === 'string' ? [name] : [];
}

/** Parses JSON bodies, reading an empty body as `{}` (commands like `open` have none). */
export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = (body as string).trim();
    if (text === '') return done(null, {});
    try {
      done(null, JSON.parse(text));
    } catch {
      done(Object.assign(new Error('the body is not valid JSON'), { statusCode: 400, code: 'invalid_json' }), undefined);
    }
  });
}

/** The token of an `Authorization: Bearer <token>` header (the scheme in any case), or undefined. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined || header.length < 7 || header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  const token = header.slice(7);
  return token === '' ? undefined : token;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** A configured token: what a client sends, and the name a commit records as its caller. */
export interface NamedToken {
  readonly name: string;
  readonly secret: string;
}

const NAMED = /^([A-Za-z][A-Za-z0-9_.-]{0,63}):(.{8,})$/s;

/**
 * The tokens of `http.tokens` (or `http.readerTokens`) with their names (see
 * docs/architecture.md, "Metadata"): an entry `name:secret` is the token `secret` named
 * `name`; any other entry is a token whose name is `token-` and the first 8 hex digits of
 * its SHA-256, which tells an operator which token it was and nobody what it is.
 */
export function namedTokens(tokens: readonly string[]): NamedToken[] {
  return tokens.map((entry) => {
    const named = NAMED.exec(entry);
    return named ? { name: named[1]!, secret: named[2]! } : { name: `token-${digest(entry).toString('hex').slice(0, 8)}`, secret: entry };
  });
}

/**
 * A test of whether a token is one of `tokens`, answering its name, in a time that tells an
 * attacker neither how much of a token was right nor how long the tokens are: both sides are
 * hashed to SHA-256 digests of one length, and every configured digest is compared with
 * `timingSafeEqual`, also after a match.
 */
export function tokenMatcher(tokens: readonly string[]): (given: string | undefined) => string | undefined {
  const accepted = namedTokens(tokens).map((t) => ({ name: t.name, digest: digest(t.secret) }));
  return (given) => {
    if (given === undefined) return undefined;
    const candidate = digest(given);
    let match: string | undefined;
    for (const token of accepted) if (timingSafeEqual(token.digest, candidate)) match ??= token.name;
    return match;
  };
}

/** Answers 401 `unauthorized` with `WWW-Authenticate: Bearer`. */
export function sendUnauthorized(reply: FastifyReply, message = 'a valid bearer token is required'): FastifyReply {
  reply.header('www-authenticate', 'Bearer');
  return sendError(reply, 'unauthorized', message);
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the token the request was let in with, when tokens are configured. */
    caller?: string;
  }
}

/**
 * An `onRequest` hook that requires `Authorization: Bearer <token>`, one of `tokens`, when
 * any are configured, and sets `request.caller` to the token's name.
 */
export function bearerAuth(tokens: readonly string[]) {
  const matches = tokenMatcher(tokens);
  const open = tokens.length === 0;
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (open) return;
    const caller = matches(bearerToken(request));
    if (caller === undefined) return sendUnauthorized(reply);
    request.caller = caller;
  };
}
