import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Server-sent events of a status: an `event: status` with the JSON status at once and then
 * every `intervalMs`, for as long as the client stays (docs/architecture.md, "HTTP").
 * Returns the route handler; the streams end when `app` closes, so that `close()` never
 * waits for a browser that keeps its connection open.
 */
export function statusStream(app: FastifyInstance, status: () => object, intervalMs: number) {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });
  return async (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // A reverse proxy must pass each event on as it comes, not buffer the stream.
      'x-accel-buffering': 'no',
    });
    const send = () => {
      try {
        res.write(`event: status\ndata: ${JSON.stringify(status())}\n\n`);
      } catch (err) {
        request.log.warn({ err }, 'the status stream could not be written');
        end();
      }
    };
    const timer = setInterval(send, intervalMs);
    const end = () => {
      if (!open.delete(end)) return;
      clearInterval(timer);
      res.end();
    };
    open.add(end);
    // When the client goes away (or the stream was ended here).
    res.once('close', end);
    send();
  };
}
