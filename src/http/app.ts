import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ErrorCode } from '../core/errors.js';
import { SpanKind, type Context } from '@opentelemetry/api';
import type { MetricsText } from '../observe/cluster.js';
import { TRACEPARENT, type Tracing } from '../observe/tracing.js';
import { viewsReadiness } from '../read/status.js';
import type { ViewsStatus } from '../read/viewsStatus.js';
import { installErrorHandling, installJsonParser, sendError } from './replies.js';
import { requestLog } from './requestLog.js';

/** What every converge server is configured by (`http.*`). */
export interface HttpServerSettings {
  /** Largest request body, in bytes. */
  readonly bodyLimit: number;
  /** Idle keep-alive connections are closed after this long. */
  readonly keepAliveTimeoutMs: number;
}

export interface HttpAppOptions {
  readonly title: string;
  readonly log: FastifyBaseLogger;
  readonly http: HttpServerSettings;
  /** Error code for schema failures: `invalid_command`, `invalid_query`. */
  readonly validationCode: ErrorCode;
  /** Query strings carry numbers; command bodies must not be coerced. */
  readonly coerceTypes: boolean;
  readonly isReady: () => boolean;
  /** Why the process cannot do its work although its dependencies are reachable (the event store refuses writes); `/ready` is 503 with it. */
  readonly notReady?: () => string | undefined;
  /** The version the NATS server reported at connect, named by `/ready`; undefined before the first connect. */
  readonly natsVersion?: () => string | undefined;
  /** `/health` details beside `status` and `pid`. */
  readonly health?: () => object;
  /** OpenAPI security schemes beside `bearer` (the command, reader and admin tokens). */
  readonly securitySchemes?: Readonly<Record<string, SecurityScheme>>;
  /** What `GET /metrics` answers: the cluster's metrics under the primary (see `clusterMetricsReader`); no route without it. */
  readonly metrics?: () => Promise<MetricsText>;
  /** A server span per request, under the caller's `traceparent` if it sent one; absent when tracing is off. */
  readonly tracing?: Tracing;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The context under the request's server span, while tracing is on. */
    traceContext?: Context;
  }
}

/** An OpenAPI security scheme of the `http` type. */
export interface SecurityScheme {
  readonly type: 'http';
  readonly scheme: 'bearer';
  readonly bearerFormat?: string;
  readonly description?: string;
}

/**
 * A Fastify app with what every converge API shares: the error catalogue, JSON bodies,
 * browsable API docs at `/docs` (the OpenAPI document at `/docs/json`), `/health`, `/ready` and `/metrics`, and no per-request log lines (they would
 * cost more than the work; faults are logged where they happen).
 */
export async function createHttpApp(opts: HttpAppOptions) {
  const app = Fastify({
    loggerInstance: opts.log,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: requestLog,
    bodyLimit: opts.http.bodyLimit,
    keepAliveTimeout: opts.http.keepAliveTimeoutMs,
    // Fastify's own 503 while closing has neither our error shape nor Retry-After; the hook below answers instead.
    return503OnClosing: false,
    ajv: { customOptions: { coerceTypes: opts.coerceTypes, removeAdditional: false, allErrors: true } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  await app.register(swagger, {
    openapi: {
      info: { title: opts.title, version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, ...opts.securitySchemes } },
    },
  });
  installJsonParser(app);
  installErrorHandling(app, opts.validationCode);
  if (opts.tracing) traceRequests(app, opts.tracing);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // Requests that arrive on a kept-alive connection while the server closes.
  app.addHook('onRequest', async (_request, reply) => {
    if (closing) return sendError(reply, 'shutting_down', 'this process is shutting down; retry shortly');
  });
  app.get('/health', { schema: { hide: true } }, async () => ({ status: 'ok', pid: process.pid, ...opts.health?.() }));
  app.get('/ready', { schema: { hide: true } }, async (_req, reply) => {
    // The version tells an operator which durability the event store gives (see the README).
    const nats = opts.natsVersion ? { nats: { version: opts.natsVersion() ?? null } } : {};
    if (!opts.isReady()) return sendError(reply, 'not_ready', 'a dependency (NATS) is not reachable', nats);
    const why = opts.notReady?.();
    return why === undefined ? { status: 'ready', ...nats } : sendError(reply, 'not_ready', why, nats);
  });
  // The page at /docs, its assets under /docs/static/, the document at /docs/json (see docs/architecture.md, "HTTP").
  await app.register(swaggerUi, { routePrefix: '/docs' });
  const metrics = opts.metrics;
  if (metrics) {
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
      let m;
      try {
        m = await metrics();
      } catch (err) {
        return sendError(reply, 'metrics_unavailable', `metrics could not be collected: ${err instanceof Error ? err.message : String(err)}`);
      }
      return reply.type(m.contentType).send(m.text);
    });
  }
  return app;
}

/** Probes and scrapes, which would drown the traces of real requests. */
const UNTRACED = new Set(['/health', '/ready', '/ready/views', '/metrics', '/docs']);

/** One server span per request (but probes and scrapes), named by its route, ended with the reply's status. */
function traceRequests(app: FastifyInstance, tracing: Tracing): void {
  const spans = new WeakMap<object, ReturnType<Tracing['start']>>();
  app.decorateRequest('traceContext', undefined);
  app.addHook('onRequest', async (request) => {
    const route = request.routeOptions.url;
    if (route !== undefined && UNTRACED.has(route)) return;
    const traceparent = request.headers[TRACEPARENT];
    // A path no route matched could be anything; the method alone names its span.
    const span = tracing.start(route === undefined ? request.method : `${request.method} ${route}`, tracing.extract(typeof traceparent === 'string' ? traceparent : undefined), { 'http.request.method': request.method, 'http.route': route ?? '' }, SpanKind.SERVER);
    spans.set(request, span);
    request.traceContext = tracing.contextOf(span);
  });
  app.addHook('onResponse', async (request, reply) => {
    const span = spans.get(request);
    if (!span) return;
    span.setAttribute('http.response.status_code', reply.statusCode);
    tracing.end(span, reply.statusCode >= 500 ? `status ${reply.statusCode}` : undefined);
  });
}

/** Answers unknown routes with a 404 in the error shape. */
export function notFound(app: FastifyInstance, code: ErrorCode = 'not_found'): void {
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, code, `no route ${request.method} ${request.url.split('?')[0]}`),
  );
}

/**
 * `GET /ready/views`: 200 while every view is current, 503 `views_not_ready` with the
 * reasons and each view's state and lag otherwise. Unlike `/ready`, it is about freshness:
 * a load balancer keeps the query API in rotation on `/ready` (stale views still serve),
 * and alerts or read-your-writes-sensitive callers look here.
 */
export function readyViewsRoute(
  app: FastifyInstance,
  status: () => ViewsStatus | undefined,
  opts: { maxLagMs: number; maxAgeMs?: number },
): void {
  app.get('/ready/views', { schema: { hide: true } }, async (_req, reply) => {
    const s = status();
    const readiness = viewsReadiness(s, opts);
    const projections = (s?.projections ?? []).map(({ name, state, position, lagEvents, lagMs, error }) => ({
      name,
      state,
      position,
      lagEvents,
      lagMs,
      ...(error ? { error } : {}),
    }));
    const body = { projections, eventStore: s?.eventStore, statusAt: s?.at };
    if (readiness.ready) return { status: 'ready', ...body };
    return sendError(reply, 'views_not_ready', readiness.reasons.join('; '), { reasons: readiness.reasons, ...body });
  });
}
