import { timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConvergeError, errorCatalogue, type ErrorCode } from '../core/errors.js';

/**
 * Sends the error shape `{ error, message, ...details }` with the status the catalogue
 * gives the code, and `Retry-After` when it advises coming back later.
 */
export function sendError(reply: FastifyReply, code: ErrorCode, message: string, details: object = {}): FastifyReply {
  return send(reply, code, errorCatalogue[code].status, message, details);
}

function send(reply: FastifyReply, code: string, status: number, message: string, details: object = {}): FastifyReply {
  const advice = Object.hasOwn(errorCatalogue, code) ? errorCatalogue[code as ErrorCode] : undefined;
  const retryAfterS = advice ? ('retryAfterS' in advice ? advice.retryAfterS : undefined) : status === 503 || status === 429 ? 1 : undefined;
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
      return send(reply, err.code, err.status, err.message);
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

/** An `onRequest` hook that requires `Authorization: Bearer <token>` when tokens are configured. */
export function bearerAuth(tokens: readonly string[]) {
  const accepted = tokens.map((t) => Buffer.from(t));
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (accepted.length === 0) return;
    const header = request.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    if (accepted.some((t) => t.length === given.length && timingSafeEqual(t, given))) return;
    reply.header('www-authenticate', 'Bearer');
    return sendError(reply, 'unauthorized', 'a valid bearer token is required');
  };
}
