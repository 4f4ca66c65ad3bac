import AjvCompiler from '@fastify/ajv-compiler';
import type { FastifySchemaCompiler } from 'fastify';

const factory = AjvCompiler();

/**
 * The validator converge's routes use, set on their own plugin so that they check requests
 * the same way in a host app whatever that app's Ajv options are (Fastify's default removes
 * unknown properties and coerces types, where a command must be refused). Errors are all
 * reported, so a 400 lists every failing path.
 */
export function validatorCompiler(opts: { coerceTypes: boolean }): FastifySchemaCompiler<unknown> {
  return factory({}, { customOptions: { coerceTypes: opts.coerceTypes, removeAdditional: false, allErrors: true } }) as FastifySchemaCompiler<unknown>;
}
