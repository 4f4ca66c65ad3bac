import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { jwtVerify } from 'jose';
import { ConvergeError } from '../core/errors.js';
import type { SecurityScheme } from './app.js';
import type { ReadPolicy } from './queryRoutes.js';
import { bearerToken, sendError, sendUnauthorized, tokenMatcher } from './replies.js';


/** What read access is configured by (`http.*`). */
export interface ReadAccessSettings {
  readonly tokens: readonly string[];
  readonly readerTokens: readonly string[];
  readonly readPolicy: Readonly<Record<string, ReadPolicy>>;
  readonly customerTokenSecret: string;
}

/** The query API's limit per client address (`http.queryRateLimit`). */
export interface RateLimitSettings {
  readonly max: number;
  readonly windowMs: number;
}

/**
 * Query API routes that carry no customer data: open to anyone whatever the policy says,
 * and never rate limited (load balancers and Prometheus call them from one address).
 */
export const OPEN_ROUTES: ReadonlySet<string> = new Set([
  '/health',
  '/ready',
  '/ready/views',
  '/metrics',
  // The API docs page (both spellings of its URL), its document and the page's own assets.
  '/docs',
  '/docs/',
  '/docs/json',
  '/docs/yaml',
  '/docs/static/*',
  '/docs/static/index.html',
  '/docs/static/swagger-initializer.js',
]);

/** Where a route's config keeps its policy by method, set as the route is added. */
const READ_POLICY = Symbol('converge.readPolicy');

/** The policy `installReadAccess` gave a route (by its config) for a method; undefined for a route added before it. */
export function policyIn(config: unknown, method: string): ReadPolicy | undefined {
  return (config as { [READ_POLICY]?: Readonly<Record<string, ReadPolicy>> } | undefined)?.[READ_POLICY]?.[method];
}

/** The OpenAPI security scheme of customer tokens. */
export const customerTokenScheme: SecurityScheme = {
  type: 'http',
  scheme: 'bearer',
  bearerFormat: 'JWT',
  description: 'a customer token: a JWT signed HS256 with http.customerTokenSecret whose sub is the customer id the route names',
};

/**
 * The policy of a route: its entry in `http.readPolicy` by `METHOD /path` as the route is
 * declared (a `HEAD` route Fastify adds for a `GET` has the `GET` route's entry unless
 * listed itself), else what the route declares (`config: { access }`), else the `*` entry,
 * else `reader`.
 */
export function readPolicyOf(policies: Readonly<Record<string, ReadPolicy>>, method: string, url: string, declared?: ReadPolicy): ReadPolicy {
  const listed = (m: string) => {
    const key = `${m} ${url}`;
    return Object.hasOwn(policies, key) ? policies[key] : undefined;
  };
  return listed(method) ?? (method === 'HEAD' ? listed('GET') : undefined) ?? declared ?? (Object.hasOwn(policies, '*') ? policies['*'] : undefined) ?? 'reader';
}

/** A route's OpenAPI `security` under a policy; undefined for a public route. */
function securityOf(policy: ReadPolicy): Record<string, string[]>[] | undefined {
  if (policy === 'reader') return [{ bearer: [] }];
  if (policy === 'customer') return [{ bearer: [] }, { customerToken: [] }];
  return undefined;
}

type CustomerCheck = { customer: string } | { refused: string };

/** Verifies customer tokens (HS256 JWTs, `exp` checked when present); none is valid without a secret. */
function customerVerifier(secret: string): (token: string) => Promise<CustomerCheck> {
  if (secret === '') return async () => ({ refused: 'no customer token secret is configured' });
  // Imported once: jose would import raw key bytes again on every verification.
  const key = crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return async (token) => {
    if (token.split('.').length !== 3) return { refused: 'neither a configured token nor a customer token' };
    try {
      const { payload } = await jwtVerify(token, await key, { algorithms: ['HS256'] });
      return typeof payload.sub === 'string' && payload.sub !== '' ? { customer: payload.sub } : { refused: 'the customer token has no sub' };
    } catch (err) {
      // jose's codes (ERR_JWT_EXPIRED, ERR_JWS_SIGNATURE_VERIFICATION_FAILED, ...) name the fault, never the token.
      return { refused: (err as { code?: unknown }).code === undefined ? 'not a customer token' : String((err as { code: unknown }).code) };
    }
  };
}

/**
 * Read access by route on the query API (see `http.readPolicy`): an `onRoute` hook that
 * gives each route its OpenAPI `security`, and an `onRequest` hook that looks the route up
 * by `request.routeOptions` and lets the request through, or answers 401 `unauthorized`
 * (no token, or one that is neither configured nor a valid customer token) or 403
 * `forbidden` (a valid customer token for another customer, or on a route that is not a
 * customer's). Enforced only once `http.tokens` or `http.readerTokens` has a token: with
 * none, the query API stays open. `OPEN_ROUTES` are always open. Install it before the
 * routes, so that the `onRoute` hook sees them. Each route keeps its policy in its config
 * (`policyIn`), for the hooks installed after it.
 */
export function installReadAccess(app: FastifyInstance, http: ReadAccessSettings): void {
  const policies = http.readPolicy;
  const enforced = http.tokens.length + http.readerTokens.length > 0;
  const declared = new Set<string>();

  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    // Policies name routes as declared, without the prefix a host app registered them under.
    const path = route.routePath === '' ? '/' : route.routePath;
    const byMethod: Record<string, ReadPolicy> = {};
    for (const m of methods) {
      declared.add(`${m} ${path}`);
      byMethod[m] = readPolicyOf(policies, m, path, route.config?.access);
    }
    // Kept with the route itself: routes that share a URL and differ by a constraint (version, host) keep their own.
    route.config = { ...route.config, [READ_POLICY]: byMethod } as typeof route.config;
    if (!enforced || OPEN_ROUTES.has(route.url) || route.schema?.hide) return;
    const method = methods.find((m) => m !== 'HEAD');
    // The HEAD twin of a GET route is not in the OpenAPI document.
    if (method === undefined) return;
    const security = securityOf(byMethod[method]!);
    if (security) route.schema = { ...route.schema, security };
  });
  app.addHook('onReady', async () => {
    const unknown = Object.keys(policies).filter((key) => key !== '*' && !declared.has(key));
    if (enforced && unknown.length > 0) {
      app.log.warn({ routes: unknown }, 'http.readPolicy names routes this query API does not have; those entries have no effect');
    }
  });
  const policyFor = (request: FastifyRequest): ReadPolicy => {
    const { url = request.url, config } = request.routeOptions;
    return policyIn(config, request.method) ?? readPolicyOf(policies, request.method, url, config.access);
  };
  if (!enforced) return;

  const isToken = tokenMatcher([...http.tokens, ...http.readerTokens]);
  const verifyCustomer = customerVerifier(http.customerTokenSecret);
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const url = request.routeOptions.url;
    // No route: the 404 says nothing about any data.
    if (url === undefined || OPEN_ROUTES.has(url)) return;
    const policy = policyFor(request);
    if (policy === 'public') return;
    const token = bearerToken(request);
    if (isToken(token) !== undefined) return;
    // What was refused and why, never the token: a debug line for whoever wonders about a 401.
    const refused = (reason: string) => request.log.debug({ route: `${request.method} ${url}`, policy, reason }, 'read access refused');
    if (token === undefined) {
      refused('no token sent');
      return sendUnauthorized(reply);
    }
    const check = await verifyCustomer(token);
    if ('refused' in check) {
      refused(check.refused);
      return sendUnauthorized(reply, 'a valid bearer token or customer token is required');
    }
    if (policy === 'customer') {
      if (check.customer === (request.params as { id?: unknown } | undefined)?.id) return;
      refused('a customer token for another customer');
      return sendError(reply, 'forbidden', "a customer token gives access to that customer's data only");
    }
    refused('a customer token on a route that needs a reader token');
    return sendError(reply, 'forbidden', 'a customer token does not give access to this route');
  });
}

/** Too many requests from one address: 429 `rate_limited`, with the seconds until its window ends. */
export class RateLimitedError extends ConvergeError {
  readonly retryAfterS: number;
  constructor(retryAfterS: number, limit: RateLimitSettings) {
    super('rate_limited', `more than ${limit.max} requests from this address within ${limit.windowMs} ms; retry in ${retryAfterS} s`);
    this.retryAfterS = retryAfterS;
  }
}

/**
 * `http.queryRateLimit`: at most `max` requests per client IP per `windowMs`, counted by
 * this process, then 429 `rate_limited` with `Retry-After` (the window's remaining seconds).
 * Nothing when `max` is 0. Counts every request but `OPEN_ROUTES`, unknown routes and
 * refused ones included; it runs before read access, so guessing tokens is limited too.
 */
export async function installQueryRateLimit(app: FastifyInstance, limit: RateLimitSettings): Promise<void> {
  if (limit.max <= 0) return;
  await app.register(rateLimit, {
    global: false,
    max: limit.max,
    timeWindow: limit.windowMs,
    allowList: (request) => OPEN_ROUTES.has(request.routeOptions.url ?? ''),
    errorResponseBuilder: (_request, context) => new RateLimitedError(Math.max(1, Math.ceil(context.ttl / 1000)), limit),
  });
  app.addHook('onRequest', app.rateLimit());
}
