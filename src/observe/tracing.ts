import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapSetter, trace, type Attributes, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, hrTimeToMicroseconds, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { MsgHdrs } from '@nats-io/transport-node';

const SHUTDOWN_MS = 1000;

/** The header that carries a span context between processes (W3C Trace Context). */
export const TRACEPARENT = 'traceparent';

/**
 * A process's tracer (see docs/architecture.md, "Metrics and traces"). There is none when
 * tracing is off: every call site checks for it once and does nothing more, so the command
 * path makes no span, context or header then.
 */
export interface Tracing {
  /** Starts a span under `parent` (a root span without one). */
  start(name: string, parent: Context | undefined, attributes?: Attributes, kind?: SpanKind): Span;
  /** Ends a span, marking it failed when `error` is given. */
  end(span: Span, error?: unknown): void;
  /** The context a child of `span` starts under. */
  contextOf(span: Span): Context;
  /** Puts `traceparent` for `ctx` into NATS headers. */
  inject(ctx: Context, headers: MsgHdrs): void;
  /** The `traceparent` a child of `span` in another process starts under. */
  traceparentOf(span: Span): string | undefined;
  /** The context carried by a `traceparent`, or undefined. */
  extract(traceparent: string | undefined): Context | undefined;
  /** Exports what is left (waiting at most a second) and stops. */
  shutdown(): Promise<void>;
}

/** Where spans go (`telemetry.*`); tracing is off when both places are empty. */
export interface TelemetrySettings {
  readonly otlpEndpoint: string;
  readonly spanDir: string;
  readonly serviceName: string;
}

const propagator = new W3CTraceContextPropagator();
const setter: TextMapSetter<MsgHdrs> = { set: (headers, key, value) => headers.set(key, value) };
const getter: TextMapGetter<string> = {
  get: (carrier, key) => (key === TRACEPARENT ? carrier : undefined),
  keys: () => [TRACEPARENT],
};

/**
 * Creates the tracer when `telemetry` asks for one: spans go to the OTLP/HTTP endpoint
 * (`<otlpEndpoint>/v1/traces`, batched) and, for tests and debugging, as JSON lines to
 * `<spanDir>/<pid>.jsonl` (one file per process, written as each span ends). Undefined
 * when both are empty.
 */
export function createTracing(telemetry: TelemetrySettings, role: string): Tracing | undefined {
  if (!telemetry.otlpEndpoint && !telemetry.spanDir) return undefined;
  const spanProcessors: SpanProcessor[] = [];
  if (telemetry.otlpEndpoint) {
    const url = telemetry.otlpEndpoint.replace(/\/+$/, '');
    spanProcessors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: url.endsWith('/v1/traces') ? url : `${url}/v1/traces` })));
  }
  if (telemetry.spanDir) spanProcessors.push(new SimpleSpanProcessor(fileExporter(telemetry.spanDir)));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': telemetry.serviceName, 'converge.role': role, 'process.pid': process.pid }),
    spanProcessors,
  });
  const tracer = provider.getTracer('converge');
  return {
    start: (name, parent, attributes, kind = SpanKind.INTERNAL) => tracer.startSpan(name, { kind, ...(attributes ? { attributes } : {}) }, parent ?? ROOT_CONTEXT),
    end(span, error) {
      if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      span.end();
    },
    contextOf: (span) => trace.setSpan(ROOT_CONTEXT, span),
    inject: (ctx, headers) => propagator.inject(ctx, headers, setter),
    traceparentOf(span) {
      const carrier: Record<string, string> = {};
      propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
      return carrier[TRACEPARENT];
    },
    extract(traceparent) {
      if (!traceparent) return undefined;
      const ctx = propagator.extract(ROOT_CONTEXT, traceparent, getter);
      return trace.getSpanContext(ctx) ? ctx : undefined;
    },
    // A collector that does not answer must not hold up a drain past the primary's deadline.
    shutdown: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, SHUTDOWN_MS);
        provider.shutdown().then(
          () => (clearTimeout(timer), resolve()),
          () => (clearTimeout(timer), resolve()),
        );
      }),
  };
}

/** One finished span as the span files hold it. */
export interface SpanRecord {
  readonly name: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  readonly kind: number;
  readonly startUs: number;
  readonly durationUs: number;
  readonly status: number;
  readonly attributes: Attributes;
  readonly pid: number;
  readonly role: unknown;
}

/** Writes each finished span as a JSON line to `<dir>/<pid>.jsonl`. */
function fileExporter(dir: string): SpanExporter {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${process.pid}.jsonl`);
  return {
    export(spans: ReadableSpan[], done: (result: ExportResult) => void) {
      try {
        appendFileSync(file, spans.map((s) => JSON.stringify(recordOf(s)) + '\n').join(''));
        done({ code: ExportResultCode.SUCCESS });
      } catch (error) {
        done({ code: ExportResultCode.FAILED, error: error as Error });
      }
    },
    shutdown: async () => undefined,
  };
}

function recordOf(s: ReadableSpan): SpanRecord {
  const ctx = s.spanContext();
  return {
    name: s.name,
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: s.parentSpanContext?.spanId,
    kind: s.kind,
    startUs: hrTimeToMicroseconds(s.startTime),
    durationUs: hrTimeToMicroseconds(s.duration),
    status: s.status.code,
    attributes: s.attributes,
    pid: process.pid,
    role: s.resource.attributes['converge.role'],
  };
}

/** What a span over a delivered commit names, and the trace context its metadata carries. */
export interface TracedCommit {
  readonly aggregate: string;
  readonly id: string;
  readonly commandType: string;
  readonly position: number;
  readonly metadata?: { readonly traceparent?: string };
}

/**
 * Runs `work` on a batch under one span per commit that brought a trace context with it
 * (a child of its append span), all ending when the work does. Commits without one get none.
 */
export async function tracedBatch<T>(tracing: Tracing, name: string, batch: readonly TracedCommit[], work: () => T | Promise<T>): Promise<T> {
  const spans: Span[] = [];
  for (const commit of batch) {
    const parent = tracing.extract(commit.metadata?.traceparent);
    if (!parent) continue;
    spans.push(tracing.start(`${name} ${commit.commandType}`, parent, { 'converge.aggregate': commit.aggregate, 'converge.id': commit.id, 'converge.position': commit.position, 'converge.batch_size': batch.length }, SpanKind.CONSUMER));
  }
  try {
    const result = await work();
    for (const span of spans) tracing.end(span);
    return result;
  } catch (err) {
    for (const span of spans) tracing.end(span, err);
    throw err;
  }
}
