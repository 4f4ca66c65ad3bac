import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ReactionsHost } from '../react/host.js';

const Name = Type.String({ pattern: '^[A-Za-z0-9_-]{1,40}$' });
const ParkedParams = Type.Object({ name: Name, position: Type.Integer({ minimum: 1 }), eventIndex: Type.Integer({ minimum: 0 }) });

/**
 * The admin API's routes for reactors and processes (docs/architecture.md, "Reactions"):
 * their status (lag, state, parked inputs; for processes open instances, pending timers and
 * the next one due), who runs them, resuming one stopped by its policy, and parked inputs to
 * inspect, retry (`409 still_failing` when it fails again) or drop. Registered inside the
 * admin API's token check.
 */
export function reactionRoutes(reactions: ReactionsHost) {
  return async (app: FastifyInstance): Promise<void> => {
    const admin = app.withTypeProvider<TypeBoxTypeProvider>();
    admin.get('/admin/reactions', async () => ({ holder: reactions.holder() ?? null, running: reactions.running(), reactions: reactions.status() }));
    admin.post('/admin/reactions/:name/resume', { schema: { params: Type.Object({ name: Name }) } }, async (request) => {
      reactions.resume(request.params.name);
      return reactions.status().find((r) => r.name === request.params.name);
    });
    admin.get(
      '/admin/reactions/parked',
      { schema: { querystring: Type.Object({ reaction: Type.Optional(Name) }, { additionalProperties: false }) } },
      async (request) => ({ parked: await reactions.parked(request.query.reaction) }),
    );
    admin.post('/admin/reactions/:name/parked/:position/:eventIndex/retry', { schema: { params: ParkedParams } }, async (request) => {
      const { name, position, eventIndex } = request.params;
      await reactions.retryParked(name, position, eventIndex);
      return { retried: { reaction: name, position, eventIndex } };
    });
    admin.delete('/admin/reactions/:name/parked/:position/:eventIndex', { schema: { params: ParkedParams } }, async (request) => {
      const { name, position, eventIndex } = request.params;
      await reactions.dropParked(name, position, eventIndex);
      return { dropped: { reaction: name, position, eventIndex } };
    });
  };
}
