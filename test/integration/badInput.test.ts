import t from 'tap';
import { startTestNats } from '../helpers/nats.js';
import { startWorkers } from '../helpers/workers.js';

t.test('bad input of any shape gets a 4xx with a code, never a 5xx', async (t) => {
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1, { CONVERGE_HTTP_BODY_LIMIT: '4096' });
  const app = worker!.commandApp;
  const send = async (url: string, payload: string | undefined, headers: Record<string, string> = { 'content-type': 'application/json' }, method: 'POST' | 'GET' = 'POST') => {
    const res = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
    return { status: res.statusCode, body: res.json() as { error: string; message: string; details?: Array<{ path: string }> } };
  };
  const register = JSON.stringify({ name: 'A', category: 'c', ownerId: 'o' });

  const cases: Array<[string, ReturnType<typeof send>, number, string]> = [
    ['malformed JSON', send('/shops/s1/register', '{"name": "A",'), 400, 'invalid_json'],
    ['a JSON array body', send('/shops/s1/register', '[1,2]'), 400, 'invalid_command'],
    ['a JSON string body', send('/shops/s1/register', '"hello"'), 400, 'invalid_command'],
    ['wrong types', send('/shops/s1/add-menu-item', JSON.stringify({ menuId: 'm', name: 'x', price: '1000' })), 400, 'invalid_command'],
    ['a missing field', send('/shops/s1/register', JSON.stringify({ name: 'A' })), 400, 'invalid_command'],
    ['an extra field', send('/shops/s1/rename', JSON.stringify({ name: 'A', admin: true })), 400, 'invalid_command'],
    ['a price below the floor', send('/shops/s1/change-menu-price', JSON.stringify({ menuId: 'm', price: 0 })), 400, 'invalid_command'],
    ['a negative price', send('/shops/s1/change-menu-price', JSON.stringify({ menuId: 'm', price: -5 })), 400, 'invalid_command'],
    ['a fractional price', send('/shops/s1/change-menu-price', JSON.stringify({ menuId: 'm', price: 1000.5 })), 400, 'invalid_command'],
    ['a name over 100 chars', send('/shops/s1/rename', JSON.stringify({ name: 'x'.repeat(101) })), 400, 'invalid_command'],
    ['51 order lines', send('/orders/o1/place', JSON.stringify({ shopId: 's', customerId: 'c', items: Array.from({ length: 51 }, () => ({ menuId: 'm', quantity: 1 })) })), 400, 'invalid_command'],
    ['quantity 100', send('/orders/o1/place', JSON.stringify({ shopId: 's', customerId: 'c', items: [{ menuId: 'm', quantity: 100 }] })), 400, 'invalid_command'],
    ['rating 6', send('/reviews/r1/post', JSON.stringify({ orderId: 'o', customerId: 'c', rating: 6, text: '' })), 400, 'invalid_command'],
    ['an unknown command', send('/shops/s1/explode', register), 404, 'unknown_command'],
    ['an unknown aggregate', send('/planets/p1/register', register), 404, 'unknown_command'],
    ['a GET on a command', send('/shops/s1/register', undefined, {}, 'GET'), 404, 'not_found'],
    ['an id with a slash-free bad character', send('/shops/s%20x/register', register), 400, 'invalid_command'],
    ['an id over 64 chars', send(`/shops/${'a'.repeat(65)}/register`, register), 400, 'invalid_command'],
    ['a body over the limit', send('/shops/s1/rename', JSON.stringify({ name: 'x'.repeat(5000) })), 413, 'body_too_large'],
    ['a non-JSON content type', send('/shops/s1/rename', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type'],
    ['a bad If-Match', send('/shops/s1/rename', JSON.stringify({ name: 'A' }), { 'content-type': 'application/json', 'if-match': 'yesterday' }), 400, 'invalid_command'],
    ['a bad Idempotency-Key', send('/shops/s1/rename', JSON.stringify({ name: 'A' }), { 'content-type': 'application/json', 'idempotency-key': 'has spaces in it' }), 400, 'invalid_command'],
    ['a prototype-polluting body', send('/shops/s1/rename', '{"name":"A","__proto__":{"admin":true}}'), 400, 'invalid_command'],
  ];
  for (const [name, pending, status, code] of cases) {
    const res = await pending;
    t.same([res.status, res.body.error], [status, code], `${name} → ${status} ${code}`);
    t.type(res.body.message, 'string', `${name} has a message`);
  }

  const typed = await send('/shops/s1/add-menu-item', JSON.stringify({ menuId: 'm', name: 'x', price: '1000' }));
  t.ok(typed.body.details?.some((d) => d.path === 'body/price'), 'validation errors name the failing path');

  const bodiless = await send('/shops/nobody/register', undefined, {});
  t.equal(bodiless.status, 400, 'a bodiless register still fails validation, as a 400');
  const open = await send('/shops/nobody/open', undefined, {});
  t.same([open.status, open.body.error], [422, 'rejected'], 'a bodiless open is read as {} and reaches the decider');

  t.ok(({} as Record<string, unknown>)['admin'] === undefined, 'no prototype was polluted');
});
