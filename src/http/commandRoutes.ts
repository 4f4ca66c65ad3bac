import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from '@fastify/type-provider-typebox';
import type { Context } from '@opentelemetry/api';
import { acceptsId, pathParams, type AnyAggregate, type CommandSpec } from '../core/aggregate.js';
import { schemaIssues } from '../core/schemas.js';
import { isoTime } from '../core/clock.js';
import type { CommandEnvelope, CommandResult } from '../write/execute.js';
import { ErrorBody } from './paging.js';
import { bearerAuth, installErrorHandling, installJsonParser, sendError } from './replies.js';
import { validatorCompiler } from './validation.js';

/** What converge's command routes need from the runtime they are registered for. */
export interface CommandRoutesOptions {
  readonly aggregates: readonly AnyAggregate[];
  /** Runs a command on its owner (see `CommandRouter.dispatch`), under the request's trace context when tracing is on. */
  readonly dispatch: (command: CommandEnvelope, parent?: Context) => Promise<CommandResult>;
  /** Bearer tokens that may send commands; none: open. */
  readonly tokens: readonly string[];
  /** The time a command is received, stamped on its events: the runtime's clock. */
  readonly now: () => number;
}

const CommandHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' })),
  'if-match': Type.Optional(Type.String({ pattern: '^(W/)?"?[0-9]{1,15}"?$' })),
  'x-correlation-id': Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,128}$' })),
});
const Accepted = Type.Object({
  id: Type.String(),
  version: Type.Integer(),
  position: Type.Integer(),
  events: Type.Array(Type.String()),
});
const NoContent = Type.Unsafe<undefined>({ description: 'accepted; the version is in ETag and the position in X-Position' });

/** Where a command is reached: its method, path, id parameter and the fields its path carries. */
export interface CommandRoute {
  readonly method: NonNullable<CommandSpec['method']>;
  readonly path: string;
  readonly idParam: string;
  readonly status: NonNullable<CommandSpec['status']>;
  /** Path parameters other than the id: fields of the command's data. */
  readonly fields: readonly string[];
  /** Of those, the ones the schema types as numbers: read from the path's digits. */
  readonly numeric: readonly string[];
}

/** A command's route: `POST /<plural>/:id/<segment>` answered 200 unless its spec says otherwise. */
export function commandRoute(aggregate: AnyAggregate, segment: string, spec: CommandSpec): CommandRoute {
  const path = spec.path ?? `/${aggregate.plural}/:id/${segment}`;
  const idParam = spec.idParam ?? 'id';
  const fields = pathParams(path).filter((p) => p !== idParam);
  const properties = (spec.schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  const numeric = fields.filter((f) => properties[f]?.type === 'integer' || properties[f]?.type === 'number');
  return { method: spec.method ?? 'POST', path, idParam, status: spec.status ?? 200, fields, numeric };
}

/**
 * converge's command routes as a Fastify plugin: every command of every aggregate at its
 * route, its body and path checked against its schema (with no type coercion, whatever the
 * host app's validator does), answered with the catalogue's error shape. Register it in
 * any Fastify app, with a prefix if you like (see docs/architecture.md, "HTTP").
 */
export function commandRoutes(opts: CommandRoutesOptions) {
  return async function converge(app: FastifyInstance): Promise<void> {
    app.setValidatorCompiler(validatorCompiler({ coerceTypes: false }));
    installJsonParser(app);
    installErrorHandling(app, 'invalid_command');
    app.addHook('onRequest', bearerAuth(opts.tokens));
    app.addHook('preValidation', async (request) => {
      // Commands such as `open` take no body; a bodiless request means `{}`.
      if (request.body === undefined || request.body === null) request.body = {};
    });
    for (const aggregate of opts.aggregates) {
      for (const [segment, spec] of Object.entries(aggregate.commands)) {
        if (!spec.internal) addCommand(app, opts, aggregate, spec, commandRoute(aggregate, segment, spec));
      }
    }
  };
}

function addCommand(app: FastifyInstance, opts: CommandRoutesOptions, aggregate: AnyAggregate, spec: CommandSpec, route: CommandRoute): void {
  const properties = (spec.schema as { properties?: Record<string, TSchema> }).properties ?? {};
  const params = Type.Object({
    [route.idParam]: Type.String({ pattern: aggregate.idPattern }),
    ...Object.fromEntries(route.fields.map((f) => [f, pathParamSchema(properties[f]!)])),
  });
  app.route({
    method: route.method,
    url: route.path,
    schema: {
      tags: [aggregate.plural],
      operationId: `${aggregate.name}.${spec.type}`,
      params,
      headers: CommandHeaders,
      body: withoutFields(spec.schema, route.fields),
      response: { [route.status]: route.status === 204 ? NoContent : Accepted, '4xx': ErrorBody, '5xx': ErrorBody },
      ...(opts.tokens.length ? { security: [{ bearer: [] }] } : {}),
    },
    handler: async (request, reply) => {
      const command = envelope(request, opts, aggregate, spec, route);
      // The pattern is the domain's; a subject token's own limits are converge's.
      if (!acceptsId(aggregate, command.id)) return sendError(reply, 'invalid_command', `params/${route.idParam} cannot hold . * > or white space`, { details: [{ path: `params/${route.idParam}`, message: 'cannot hold . * > or white space' }] });
      // A number read from the path has had its digits checked, not its limits.
      const issues = route.numeric.length > 0 ? schemaIssues(spec.schema, command.data) : [];
      if (issues.length > 0) {
        const details = issues.map((i) => ({ path: `params${i.path}`, message: i.message }));
        return sendError(reply, 'invalid_command', `${details[0]!.path} ${details[0]!.message}`, { details });
      }
      const result = await opts.dispatch(command, request.traceContext);
      reply.header('x-correlation-id', command.correlationId ?? command.commandId);
      return answer(reply, aggregate, spec, route, command, result);
    },
  });
}

/** The command a request carries: its id, type, data (body and path fields), and what its headers say. */
function envelope(request: FastifyRequest, opts: CommandRoutesOptions, aggregate: AnyAggregate, spec: CommandSpec, route: CommandRoute): CommandEnvelope {
  const params = request.params as Record<string, string>;
  const headers = request.headers as { 'idempotency-key'?: string; 'if-match'?: string; 'x-correlation-id'?: string };
  const body = request.body as object;
  const fields = Object.fromEntries(route.fields.map((f) => [f, route.numeric.includes(f) ? Number(params[f]) : params[f]]));
  const commandId = headers['idempotency-key'] ?? randomUUID();
  const ifMatch = headers['if-match'];
  return {
    commandId,
    aggregate: aggregate.name,
    id: params[route.idParam]!,
    type: spec.type,
    data: route.fields.length === 0 ? body : { ...body, ...fields },
    ...(ifMatch === undefined ? {} : { expectedVersion: Number(ifMatch.replace(/\D/g, '')) }),
    at: isoTime(opts.now()),
    ...(headers['x-correlation-id'] === undefined ? {} : { correlationId: headers['x-correlation-id'] }),
    ...(request.caller === undefined ? {} : { caller: request.caller }),
  };
}

function answer(reply: FastifyReply, aggregate: AnyAggregate, spec: CommandSpec, route: CommandRoute, command: CommandEnvelope, result: CommandResult) {
  switch (result.kind) {
    case 'accepted':
      reply.header('etag', `"${result.version}"`);
      reply.header('x-position', String(result.position));
      if (route.status === 204) return reply.code(204).send();
      return reply.code(route.status).send({ id: result.id, version: result.version, position: result.position, events: [...result.events] });
    case 'rejected':
      return sendError(reply, 'rejected', `${spec.type} was rejected: ${result.reason}`, { reason: result.reason });
    case 'conflict':
      return sendError(reply, 'version_conflict', `${aggregate.name} ${command.id} is at version ${result.currentVersion}`, { currentVersion: result.currentVersion });
    default: {
      const never: never = result;
      throw new Error(`unhandled result ${JSON.stringify(never)}`);
    }
  }
}

/**
 * A field taken from the path: checked by its own schema. A number field arrives as text
 * and the command app does not coerce types, so its digits are checked here and `envelope`
 * reads them as a number; the number's own limits are checked with the rest of the data.
 */
function pathParamSchema(field: TSchema): TSchema {
  const type = (field as { type?: unknown }).type;
  return type === 'integer' || type === 'number' ? Type.String({ pattern: '^-?[0-9]{1,15}(\\.[0-9]{1,15})?$' }) : field;
}

/** The body schema of a command whose path carries some of its fields. */
function withoutFields(schema: TSchema, fields: readonly string[]): TSchema {
  if (fields.length === 0) return schema;
  const object = schema as { properties?: Record<string, TSchema>; required?: string[] };
  const properties = Object.fromEntries(Object.entries(object.properties ?? {}).filter(([k]) => !fields.includes(k)));
  return { ...schema, properties, required: (object.required ?? []).filter((k) => !fields.includes(k)) } as TSchema;
}
