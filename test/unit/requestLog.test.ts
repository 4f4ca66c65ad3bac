import t from 'tap';
import { pino } from 'pino';
import { requestLog } from '../../src/http/requestLog.js';

function parentLogger() {
  const lines: string[] = [];
  const log = pino({ level: 'info', base: { role: 'worker-0' }, redact: { paths: ['authorization'], censor: '[redacted]' } }, { write: (l: string) => void lines.push(l) });
  let children = 0;
  const child = log.child.bind(log);
  log.child = ((...args: Parameters<typeof child>) => (children++, child(...args))) as typeof log.child;
  return { log, lines, children: () => children };
}

t.test('a request that logs nothing makes no child logger', async (t) => {
  const parent = parentLogger();
  const log = requestLog(parent.log, { reqId: 'req-1' }, {});
  t.equal(log.level, 'info', 'its level is read without one');
  t.equal(parent.children(), 0);
});

t.test('a request that logs writes through a child with its bindings, redacted as the parent redacts', async (t) => {
  const parent = parentLogger();
  const log = requestLog(parent.log, { reqId: 'req-2' }, {});
  log.warn({ authorization: 'Bearer secret-token' }, 'refused');
  log.info('second');
  t.equal(parent.children(), 1, 'one child, made at the first line');
  t.equal(parent.lines.length, 2);
  t.match(JSON.parse(parent.lines[0]!), { level: 40, role: 'worker-0', reqId: 'req-2', authorization: '[redacted]', msg: 'refused' });
  t.match(JSON.parse(parent.lines[1]!), { level: 30, reqId: 'req-2', msg: 'second' });
});
