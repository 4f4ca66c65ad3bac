import { gzipSync } from 'node:zlib';
import type { ArchivedAggregate } from '../core/archive.js';

/**
 * An archive record's size as stored, at most: gzipped (`store/eventStream.ts`). Every feed
 * from an early position passes over the records, and a pull of 128 of them
 * (`SUBSCRIBE_PULL` in `store/jetstream.ts`) in each of a rebuild's feeds at once must stay
 * well under what nats-server buffers for a client (64 MB).
 */
export const RECORD_BYTES = 16 * 1024;

/** How much more JSON than `maxBytes` a group holds before it is gzipped and measured: what the archiver holds of one record at once. */
const JSON_PER_STORED_BYTE = 16;

/**
 * Splits the aggregates a round copied into records of at most `maxBytes` as stored, that
 * is gzipped (docs/architecture.md, "Archive"). Groups of at most `maxBytes` × 16 of JSON
 * are split again, into as many parts as their gzipped size asks for, until each fits or
 * holds one aggregate. The record's envelope around them adds a few dozen bytes.
 */
export function splitRecords(archived: readonly ArchivedAggregate[], maxBytes = RECORD_BYTES): ArchivedAggregate[][] {
  const out: ArchivedAggregate[][] = [];
  const fit = (group: ArchivedAggregate[]) => {
    const stored = group.length > 1 ? gzipSync(JSON.stringify(group)).length : 0;
    if (stored <= maxBytes) return void out.push(group);
    const parts = Math.min(group.length, Math.max(2, Math.ceil((stored * 1.1) / maxBytes)));
    const size = Math.ceil(group.length / parts);
    for (let i = 0; i < group.length; i += size) fit(group.slice(i, i + size));
  };
  let group: ArchivedAggregate[] = [];
  let bytes = 0;
  for (const a of archived) {
    const size = JSON.stringify(a).length;
    if (group.length > 0 && bytes + size > maxBytes * JSON_PER_STORED_BYTE) {
      fit(group);
      group = [];
      bytes = 0;
    }
    group.push(a);
    bytes += size;
  }
  if (group.length > 0) fit(group);
  return out;
}
