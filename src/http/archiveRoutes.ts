import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ArchiveStatus } from '../read/viewsStatus.js';

/** What the archive's admin routes act on: a runtime's archive side. */
export interface ArchiveAdmin {
  status(): ArchiveStatus;
  pause(): Promise<void>;
  resume(): Promise<void>;
}

/**
 * The admin API's routes for the archive (docs/architecture.md, "Archive"): how much is
 * live and archived and what the archiver is doing, and pausing and resuming it. A pause is
 * kept in NATS, so it holds wherever the archiver's lease goes. Registered inside the admin
 * API's token check.
 */
export function archiveRoutes(archive: ArchiveAdmin) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get('/admin/archive', async () => archive.status());
    app.post('/admin/archive/pause', async () => {
      await archive.pause();
      return archive.status();
    });
    app.post('/admin/archive/resume', async () => {
      await archive.resume();
      return archive.status();
    });
  };
}

/** What forgetting a data subject answered. */
export interface ForgetAnswer {
  readonly keyId: string;
  readonly position: number;
}

const ForgetBody = Type.Object({ subject: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false });

/**
 * `POST /admin/forget {subject}` (docs/architecture.md, "Forgetting"): deletes the data
 * subject's key and records the act, answering the key id it is recorded under and the
 * record's position. The subject's id travels in the body, so that no access log holds it.
 * Registered inside the admin API's token check.
 */
export function forgetRoutes(forget: (subject: string) => Promise<ForgetAnswer>) {
  return async (app: FastifyInstance): Promise<void> => {
    app.withTypeProvider<TypeBoxTypeProvider>().post('/admin/forget', { schema: { body: ForgetBody } }, async (request) => ({ forgotten: await forget(request.body.subject) }));
  };
}
