import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Page, StoredDoc } from '../read/viewStore.js';

/** True when an `If-None-Match` header names this ETag (or `*`); weak and listed tags count. */
export function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}

/**
 * Sends a view document as stored (docs/architecture.md, "Documents as stored bytes"): its
 * ETag is the position of the last event that changed it, `If-None-Match` naming it
 * answers 304, and otherwise the stored JSON goes out as it is, neither parsed nor
 * serialized again. The fold's documents were checked against the document schema when
 * they were written.
 */
export function sendStored(request: FastifyRequest, reply: FastifyReply, stored: StoredDoc): FastifyReply {
  const etag = `"${stored.position}"`;
  reply.header('etag', etag);
  if (etagMatches(request.headers['if-none-match'], etag)) return reply.code(304).send();
  return reply.type('application/json; charset=utf-8').send(stored.json);
}

/** A page of stored documents as the list routes answer it, `{ items, next }`, its items' JSON as stored. */
export function sendStoredPage(reply: FastifyReply, page: Page<StoredDoc>): FastifyReply {
  const parts: Buffer[] = [OPEN];
  page.items.forEach((item, i) => {
    if (i > 0) parts.push(COMMA);
    parts.push(item.json);
  });
  parts.push(page.next === undefined ? CLOSE : Buffer.from(`],"next":${JSON.stringify(page.next)}}`));
  return reply.type('application/json; charset=utf-8').send(Buffer.concat(parts));
}

const OPEN = Buffer.from('{"items":[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']}');
