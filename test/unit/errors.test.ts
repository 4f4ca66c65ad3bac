import t from 'tap';
import Fastify from 'fastify';
import {
  ConvergeError,
  OutcomeUnknownError,
  PartitionUnavailableError,
  ShuttingDownError,
  errorCatalogue,
  errorFromWire,
  errorToWire,
  type ErrorCode,
} from '../../src/core/errors.js';
import { StoreChangedError } from '../../src/core/eventStore.js';
import { installErrorHandling } from '../../src/http/replies.js';
import { ApplyFailedError } from '../../src/read/feed.js';

t.test('every catalogued code crosses the wire with its status', async (t) => {
  for (const [code, { status }] of Object.entries(errorCatalogue)) {
    const back = errorFromWire(errorToWire(new ConvergeError(code as ErrorCode, `failed with ${code}`)));
    t.same([back.code, back.status, back.message], [code, status, `failed with ${code}`], code);
  }
});

t.test('a code the catalogue does not know keeps the status the owner sent', async (t) => {
  t.equal(errorFromWire({ code: 'from_a_newer_owner', status: 418, message: 'm' }).status, 418);
  t.equal(errorFromWire({ code: 'from_an_older_owner', message: 'm' }).status, 500, 'no status at all is a 500');
  t.equal(errorFromWire({ code: 'overloaded', status: 500, message: 'm' }).status, 429, 'the catalogue wins for a code it knows');
});

t.test('an error that is not a ConvergeError crosses the wire as internal_error, without its message', async (t) => {
  t.same(errorToWire(new Error('secret detail')), { code: 'internal_error', status: 500, message: 'internal error' });
});

t.test('the error classes take their status from the catalogue', async (t) => {
  const cases: [ConvergeError, ErrorCode][] = [
    [new PartitionUnavailableError(3), 'partition_unavailable'],
    [new OutcomeUnknownError(3), 'outcome_unknown'],
    [new ShuttingDownError(), 'shutting_down'],
    [new StoreChangedError('s2', 's1'), 'store_changed'],
    [new ApplyFailedError('the disk is full'), 'apply_failed'],
  ];
  for (const [err, code] of cases) t.same([err.code, err.status], [code, errorCatalogue[code].status], code);
});

t.test('an unexpected fault is a retry with the same key, and a view not caught up a retry later', async (t) => {
  // An unexpected fault during a command may come after its append: only the same key applies it once.
  t.same(errorCatalogue.internal_error, { status: 500, retry: 'same-key', retryAfterS: 1 });
  t.same(errorCatalogue.not_caught_up, { status: 504, retry: 'later', retryAfterS: 1 });
});

t.test('a reply carries Retry-After exactly when the catalogue advises a retry', async (t) => {
  const app = Fastify();
  installErrorHandling(app, 'invalid_command');
  app.get('/:code', async (request) => {
    const code = (request.params as { code: ErrorCode }).code;
    throw new ConvergeError(code, 'm');
  });
  for (const [code, advice] of Object.entries(errorCatalogue)) {
    const res = await app.inject({ method: 'GET', url: `/${code}` });
    const expected = 'retryAfterS' in advice ? String(advice.retryAfterS) : undefined;
    t.same([res.statusCode, res.json().error, res.headers['retry-after']], [advice.status, code, expected], code);
  }
});
