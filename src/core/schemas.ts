import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/** One way a value fails its schema: where (a JSON pointer) and why. */
export interface SchemaIssue {
  readonly path: string;
  readonly message: string;
}

type Checker = ReturnType<typeof Compile<TSchema>>;
const compiled = new WeakMap<TSchema, Checker>();

function checkerOf(schema: TSchema): Checker {
  let checker = compiled.get(schema);
  if (!checker) compiled.set(schema, (checker = Compile(schema)));
  return checker;
}

/**
 * The ways `value` fails `schema`, none when it fits. Schemas are compiled once, on first
 * use, so a check costs a few microseconds; it is the same check the HTTP edge makes.
 */
export function schemaIssues(schema: TSchema, value: unknown): SchemaIssue[] {
  const checker = checkerOf(schema);
  if (checker.Check(value)) return [];
  return [...checker.Errors(value)]
    // TypeBox reports an extra property twice: once as `schema is false` at its own path.
    .filter((e) => e.keyword !== 'boolean')
    .map((e) => {
      const extra = (e.params as { additionalProperties?: unknown }).additionalProperties;
      const message = Array.isArray(extra) ? `${e.message}: ${extra.join(', ')}` : e.message;
      return { path: e.instancePath || '/', message };
    });
}
