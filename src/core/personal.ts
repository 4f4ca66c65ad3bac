import type { TObject } from 'typebox';
import type { AnyAggregate, DomainEvent, EventTable } from './aggregate.js';

/**
 * What a forgotten personal field reads as (see docs/architecture.md, "Forgetting"): every
 * personal field is a string in its event's schema, so a fold that reads one still gets a string.
 */
export const FORGOTTEN = '[forgotten]';

/**
 * The personal data of one event type: `subject` is the top-level data field that holds the
 * data subject's id (`customerId`), `fields` the top-level fields sealed with that subject's
 * key (the subject field itself may be among them).
 */
export interface PersonalFields<K extends string = string> {
  readonly subject: K;
  readonly fields: readonly K[];
}

/** The top-level data fields of the event of type `T` in the union `E`. */
type DataKeys<E extends DomainEvent, T extends string> = keyof Extract<E, { readonly type: T }>['data'] & string;

/**
 * An aggregate's declaration of personal data, event type → `PersonalFields`, typed against
 * its event union: the keys are its event types and the fields that event's data fields.
 */
export type PersonalData<E extends DomainEvent = DomainEvent> = {
  readonly [T in E['type']]?: PersonalFields<DataKeys<E, T>>;
};

/** A declaration with its types erased, as the store wrapper holds it per aggregate. */
export interface PersonalDecl {
  readonly [eventType: string]: PersonalFields | undefined;
}

/**
 * Checks a declaration when its aggregate is defined, not at the first append: each event type
 * must be among the aggregate's `events` (when it declares them), and the subject and every
 * field a string in that event's schema, because a forgotten field reads as `FORGOTTEN` and an
 * event whose subject is not a string is stored unsealed.
 */
export function checkPersonal(aggregate: string, personal: PersonalDecl, events: EventTable | undefined): void {
  for (const [type, decl] of Object.entries(personal)) {
    if (!decl) continue;
    const where = `${aggregate} personal data of ${type}`;
    if (typeof decl.subject !== 'string' || decl.subject === '') throw new TypeError(`${where}: subject must name a field`);
    if (!Array.isArray(decl.fields)) throw new TypeError(`${where}: fields must be an array of field names`);
    if (!events) continue;
    const schema = events[type] as Partial<TObject> | undefined;
    if (!schema) throw new TypeError(`${where}: ${type} is not one of the aggregate's events`);
    for (const field of [decl.subject, ...decl.fields]) {
      const property = schema.properties?.[field] as { type?: unknown } | undefined;
      if (!property) throw new TypeError(`${where}: ${field} is not a field of ${type}`);
      if (property.type !== 'string') throw new TypeError(`${where}: ${field} must be a string in ${type}'s schema, since a forgotten field reads as '${FORGOTTEN}'`);
    }
  }
}

/** The personal data declarations of an app's aggregates, by aggregate name, for `shreddedStore`. */
export function personalDeclarations(aggregates: readonly AnyAggregate[]): Map<string, PersonalDecl> {
  const out = new Map<string, PersonalDecl>();
  for (const a of aggregates) if (a.personal) out.set(a.name, a.personal as PersonalDecl);
  return out;
}

/** What forgetting a data subject did (see docs/architecture.md, "Forgetting"). */
export interface Forgotten {
  /** The subject's key id (an HMAC of its id), under which the act is recorded. */
  readonly keyId: string;
  /** The position of the commit that records it. */
  readonly position: number;
}
