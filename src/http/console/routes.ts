import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { sendError } from '../replies.js';

/** The console's files: plain HTML, CSS and browser ES modules, served as they are (no build step). */
const ASSETS = join(import.meta.dirname, 'assets');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

/**
 * The page may talk only to this server and run only its own files: a token typed into
 * it cannot be sent elsewhere by an injected script, and no other site can frame it.
 */
const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const FileParams = Type.Object({ file: Type.String({ pattern: '^[a-z][a-zA-Z0-9]*\\.(html|css|js)$' }) });

/**
 * The operators' console on the admin port (see docs/architecture.md, "HTTP"): `GET /` is
 * the page and `GET /console/<file>` its assets. Both are open: they hold no data. The
 * page calls the `/admin` routes with the token it is given, which they check as always.
 */
export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  const files = new Map(
    readdirSync(ASSETS)
      .filter((name) => TYPES[extname(name)] !== undefined)
      .map((name) => [name, readFileSync(join(ASSETS, name))]),
  );
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.get('/', { schema: { hide: true } }, async (_request, reply) =>
    reply.headers(HEADERS).type(TYPES['.html']!).send(files.get('index.html')),
  );
  typed.get('/console/:file', { schema: { hide: true, params: FileParams } }, async (request, reply) => {
    const body = files.get(request.params.file);
    if (body === undefined) return sendError(reply, 'not_found', `no console file ${request.params.file}`);
    return reply.headers(HEADERS).type(TYPES[extname(request.params.file)]!).send(body);
  });
}
