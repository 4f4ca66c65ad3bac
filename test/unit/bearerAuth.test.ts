import t from 'tap';
import Fastify from 'fastify';
import { bearerAuth, namedTokens, tokenMatcher } from '../../src/http/replies.js';

const tokens = ['first-token-1234', 'a-much-longer-second-token-0987654321'];

/** An app whose one route answers 200 behind `bearerAuth(configured)`. */
function guarded(configured: readonly string[]) {
  const app = Fastify();
  app.addHook('onRequest', bearerAuth(configured));
  app.get('/', async () => ({ ok: true }));
  return app;
}

const call = (app: ReturnType<typeof guarded>, authorization?: string) =>
  app.inject({ method: 'GET', url: '/', headers: authorization === undefined ? {} : { authorization } });

t.test('bearerAuth accepts exactly the configured tokens', async (t) => {
  const app = guarded(tokens);
  for (const token of tokens) t.equal((await call(app, `Bearer ${token}`)).statusCode, 200, `${token.length}-character token`);
  t.equal((await call(app, `bearer ${tokens[0]}`)).statusCode, 200, 'the scheme is case-insensitive');
});

t.test('bearerAuth refuses tokens of other lengths, other tokens of the same length, and other schemes', async (t) => {
  const app = guarded(tokens);
  const [first, second] = tokens as [string, string];
  const wrong = {
    'a prefix of a token': first.slice(0, -1),
    'a token with one more character': `${first}5`,
    'the two tokens joined': first + second,
    'a token of the same length, last character changed': first.slice(0, -1) + 'X',
    'a token of the same length, first character changed': 'X' + first.slice(1),
    'a short token': 'x',
  };
  for (const [what, token] of Object.entries(wrong)) {
    const res = await call(app, `Bearer ${token}`);
    t.same([res.statusCode, res.json().error, res.headers['www-authenticate']], [401, 'unauthorized', 'Bearer'], what);
  }
  t.equal((await call(app)).statusCode, 401, 'no Authorization header');
  t.equal((await call(app, 'Bearer ')).statusCode, 401, 'an empty token');
  t.equal((await call(app, first)).statusCode, 401, 'a token without the Bearer scheme');
  t.equal((await call(app, `Basic ${first}`)).statusCode, 401, 'another scheme');
});

t.test('bearerAuth lets every request through when no token is configured', async (t) => {
  const app = guarded([]);
  t.equal((await call(app)).statusCode, 200);
  t.equal((await call(app, 'Bearer anything-at-all')).statusCode, 200);
});

t.test('tokenMatcher matches whole tokens only, whatever their lengths', async (t) => {
  const matches = (given: string | undefined) => tokenMatcher(tokens)(given) !== undefined;
  t.same(tokens.map(matches), [true, true]);
  t.same([undefined, '', 'first-token-123', 'first-token-12345', 'a-much-longer-second-token'].map(matches), [false, false, false, false, false]);
  t.equal(tokenMatcher([])('first-token-1234'), undefined, 'nothing matches an empty list');
});

t.test('a token entry name:secret is the token secret, known by its name; another is known by a digest, never by itself', async (t) => {
  const matcher = tokenMatcher(['checkout:s3cret-token-1', 'plain-token-12345']);
  t.equal(matcher('s3cret-token-1'), 'checkout', 'the secret alone is the token');
  t.equal(matcher('checkout:s3cret-token-1'), undefined, 'the whole entry is not');
  t.match(matcher('plain-token-12345'), /^token-[0-9a-f]{8}$/, 'an unnamed token is named by a digest');
  t.notMatch(matcher('plain-token-12345'), /plain/, 'which says nothing of the token');
  t.same(namedTokens(['a:short']), [{ name: namedTokens(['a:short'])[0]!.name, secret: 'a:short' }], 'a secret under 8 characters does not make a name: the entry is one token');
});
