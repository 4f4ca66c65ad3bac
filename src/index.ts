/**
 * converge: a CQRS and event-sourcing runtime. This is the whole public API; the
 * given/when/then kit for tests is `converge/testing`. See docs/architecture.md for how
 * a command and an event travel through it.
 */
export {
  defineAggregate,
  emit,
  reject,
  type AggregateDefinition,
  type AggregateRef,
  type AnyAggregate,
  type CommandOf,
  type CommandSpec,
  type CommandTable,
  type Decision,
  type DomainCommand,
  type DomainEvent,
  type StoredEvent,
} from './core/aggregate.js';
export {
  defineProjection,
  descending,
  type AnyProjection,
  type DocOf,
  type ErrorPolicy,
  type EventMeta,
  type Projection,
  type ViewKey,
} from './core/projection.js';
export { ConvergeError, errorCatalogue, type ErrorAdvice, type ErrorCode, type RetryAdvice } from './core/errors.js';
export type { Commit, EventStore, StoredCommit } from './core/eventStore.js';
export type { Config } from './core/config.js';
export type { Page as ViewPage, ViewOf, ViewReader } from './read/viewStore.js';
export { defineRoutes, type QueryRoutes } from './http/queryApp.js';
export { Cursor, DEFAULT_LIMIT, ErrorBody, IdParams, Limit, Page } from './http/paging.js';
export { sendError } from './http/replies.js';
export type { ConvergeApp } from './host/app.js';
export { loadConfig } from './host/config.js';
export { runConverge, type RunOptions } from './host/run.js';
