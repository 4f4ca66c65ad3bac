import { defineRoutes, runConverge } from '@converge-es/converge';
import { shopPlatform } from '../../app.js';
import { shopDisplay } from '../../projections/shopDisplay/shopDisplay.projection.js';

// The reads benchmark's cluster (test/bench/reads.ts): the shop platform as `npm start` runs
// it, plus `GET /bench/bare/:id` on the query port, a bare Fastify route that sends the bytes
// `GET /shops/:id` sends for that shop from memory. They are read from the view once, at the
// first request for the shop; the benchmark warms every shop before it measures.

const bytes = new Map<string, Buffer>();

const bareRoute = defineRoutes(async (app, { views }) => {
  app.get('/bench/bare/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    let body = bytes.get(id);
    if (body === undefined) {
      const stored = views.stored(shopDisplay, id);
      if (stored === undefined) return reply.code(404).send();
      body = Buffer.from(stored.json);
      bytes.set(id, body);
    }
    return reply.type('application/json; charset=utf-8').send(body);
  });
});

runConverge({ ...shopPlatform, routes: [...(shopPlatform.routes ?? []), bareRoute] });
