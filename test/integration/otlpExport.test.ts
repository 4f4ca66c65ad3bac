import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestNats } from '../helpers/nats.js';
import { commandUrl, post, startWorkers } from '../helpers/workers.js';

t.test('telemetry.otlpEndpoint sends a command\'s spans to that collector over OTLP/HTTP', async (t) => {
  const received: Array<{ url: string; contentType: string; body: string }> = [];
  const collector = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ url: req.url ?? '', contentType: req.headers['content-type'] ?? '', body });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => collector.close(() => resolve())));
  const nats = await startTestNats(t);
  const [worker] = await startWorkers(t, nats.url, 1, {
    CONVERGE_TELEMETRY_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
  });
  t.equal((await post(commandUrl(worker!), '/shops/otlp/register', { name: 'O', category: 'c', ownerId: 'o' })).status, 200);
  // Stopping the worker flushes its batch of spans.
  await worker!.stop();
  const traces = received.filter((r) => r.url === '/v1/traces');
  t.ok(traces.length > 0, 'the collector got a POST to /v1/traces');
  const all = traces.map((r) => r.body).join('\n');
  for (const name of ['POST /shops/:id/register', 'actor RegisterShop', 'append RegisterShop']) t.match(all, name, `with the span ${name}`);
  t.match(all, '"converge"', 'under the service name');
});
