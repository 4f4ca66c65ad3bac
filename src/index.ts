/**
 * converge: a CQRS and event-sourcing runtime. This is the whole public API; the
 * given/when/then kit for tests is `converge/testing`. See docs/architecture.md for how
 * a command and an event travel through it.
 *
 * - Declare: `defineAggregate` (with `defineEvents`), `defineProjection`, `defineRoutes`
 *   or `viewRoutes`, `defineApp`.
 * - Run: `createConverge` in your own process (and its Fastify plugins in your own app),
 *   or `runConverge` as a supervised cluster with its own nats-server.
 */
export {
  defineAggregate,
  defineEvents,
  emit,
  reject,
  type AcceptedStatus,
  type AggregateDefinition,
  type AggregateRef,
  type AnyAggregate,
  type CommandMethod,
  type CommandOf,
  type CommandsOf,
  type CommandSpec,
  type CommandTable,
  type DecideContext,
  type Decision,
  type DomainCommand,
  type DomainEvent,
  type EventOf,
  type EventsOf,
  type EventTable,
  type LookupContext,
  type NameOf,
  type RejectionOf,
  type ServicesOf,
  type StateOf,
  type StoredEvent,
} from './core/aggregate.js';
export type { CommandMetadata } from './core/metadata.js';
export {
  defineProcess,
  defineReactor,
  type AnyProcess,
  type AnyReactor,
  type ProcessContext,
  type ProcessDecision,
  type ProcessDefinition,
  type ProcessInput,
  type ReactionCommand,
  type ReactionErrorPolicy,
  type ReactionMeta,
  type ReactionResult,
  type Reactor,
  type ReactorContext,
  type TimerChange,
} from './core/reactions.js';
export { manualClock, systemClock, type Clock, type ManualClock } from './core/clock.js';
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
export { ConvergeError, errorCatalogue, InvalidCommandError, type ErrorAdvice, type ErrorCode, type RetryAdvice } from './core/errors.js';
export type { SchemaIssue } from './core/schemas.js';
export type { AppendResult, Commit, CommitSubscription, Delivered, EventStore, StoreHead, StoreIdentity, StoredCommit } from './core/eventStore.js';
export { createMemoryEventStore, type MemoryEventStore } from './store/memory.js';
export { ConfigError, resolveConfig, type Config, type ConfigOverrides } from './host/config.js';
export type { Page as ViewPage, StoredDoc, ViewOf, ViewReader } from './read/viewStore.js';
export { defineRoutes, type QueryRoutes } from './http/queryRoutes.js';
export { IfNoneMatch, listRoute, NotModified, viewRoutes, type GetRoute, type ListRoute, type ViewRoutesSpec } from './http/viewRoutes.js';
export { etagMatches, sendStored, sendStoredPage } from './http/storedReplies.js';
export type { ReadPolicy } from './http/queryRoutes.js';
export { Cursor, DEFAULT_LIMIT, ErrorBody, IdParams, Limit, Page } from './http/paging.js';
export { sendError } from './http/replies.js';
export { defineApp, type ConvergeApp } from './host/app.js';
export { loadConfig } from './host/config.js';
export {
  createConverge,
  type Addresses,
  type AppCommand,
  type AppServices,
  type ArchiveControl,
  type Converge,
  type ConvergeOptions,
  type DispatchResult,
  type ListenOptions,
} from './host/runtime.js';
export type { DispatchOptions } from './write/envelope.js';
export type { ArchiveStatus, ProjectionStatus, ReactionStatus, RebuildStatus, StreamState, ViewsStatus } from './read/viewsStatus.js';
export { FORGOTTEN, type Forgotten, type PersonalData, type PersonalFields } from './core/personal.js';
export { runConverge, type RunOptions } from './host/run.js';
