import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import type { TSchema } from 'typebox';
import { Value } from 'typebox/value';
import type { NatsAuth } from '../nats/auth.js';
import { ConfigSchema, defaults, schemaWith, type Config } from './configSchema.js';
import type { TObject } from 'typebox';

export { ConfigSchema, type Config } from './configSchema.js';

/** A configuration problem found at start-up; its message names the key. */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
}

/** Any part of the configuration, to set over the defaults: `{ http: { commandPort: 9000 } }`. */
export type ConfigOverrides = DeepPartial<Config> & { readonly [section: string]: unknown };
type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { readonly [K in keyof T]?: DeepPartial<T[K]> } : T;

interface Sources {
  /** Folder holding `default.json` and `<NODE_ENV>.json`, both optional; `config` in the working directory by default. */
  dir?: string;
  env?: NodeJS.ProcessEnv;
  /** The app's own sections (`ConvergeApp.settings`), loaded the same way. */
  settings?: TObject | undefined;
  /**
   * `ignore`: top-level sections of the files that are neither converge's nor in `settings`
   * are left out instead of refused. For readers that do not know the app (the CLI).
   */
  otherSections?: 'refuse' | 'ignore';
}

/**
 * The configuration a process starts with: every key's default (see `ConfigSchema`),
 * overridden by `config/default.json` and `config/<NODE_ENV>.json` when they exist, then by
 * `CONVERGE_*` variables (`http.commandPort` is `CONVERGE_HTTP_COMMAND_PORT`; `NATS_URL` is
 * accepted too), validated once and frozen. No file is needed. This is the only reader of
 * the environment.
 */
export function loadConfig({ dir = join(process.cwd(), 'config'), env = process.env, settings, otherSections = 'refuse' }: Sources = {}): Config {
  let merged = readJson(join(dir, 'default.json'));
  const profile = env.NODE_ENV;
  if (profile) merged = deepMerge(merged, readJson(join(dir, `${profile}.json`)));
  if (otherSections === 'ignore') {
    const known = schemaWith(settings).properties;
    for (const key of Object.keys(merged)) if (!Object.hasOwn(known, key)) delete merged[key];
  }
  if (env.NATS_URL !== undefined) setPath(merged, ['nats', 'url'], env.NATS_URL);
  applyEnv(schemaWith(settings), [], merged, env);
  return resolveConfig(merged as ConfigOverrides, settings);
}

/**
 * The defaults with `overrides` set over them, validated and frozen (see `validateConfig`);
 * with an app's `settings`, its sections too.
 */
export function resolveConfig(overrides: ConfigOverrides = {}, settings?: TObject): Config {
  const schema = schemaWith(settings);
  return validateConfig(deepMerge(defaults(schema), overrides as Record<string, unknown>), schema);
}

/**
 * Validates a complete configuration against the schema, refuses an open network listener,
 * resolves `workers: 0`, `hostId: ""` and `ownership: auto`, and freezes the result. The
 * error names the first key at fault.
 */
export function validateConfig(merged: Record<string, unknown>, schema: TObject = ConfigSchema): Config {
  const errors = [...Value.Errors(schema, merged)];
  const first = errors[0];
  if (first) {
    const key = first.instancePath.replace(/^\//, '').replaceAll('/', '.') || '(root)';
    // TypeBox reports an unknown key at its own path, as a `false` schema for additional properties.
    if (first.schemaPath.endsWith('additionalProperties')) throw new ConfigError(`config key "${key}" is not a known key`);
    throw new ConfigError(`config key "${key}" ${first.message} (got ${JSON.stringify(getPath(merged, key.split('.')))})`);
  }
  const config = structuredClone(merged) as Config;
  refuseOpenNetworkListener(config.http);
  if (config.cluster.workers === 0) config.cluster.workers = defaultWorkers();
  if (config.cluster.hostId === '') config.cluster.hostId = hostname();
  if (config.cluster.ownership === 'auto') config.cluster.ownership = config.nats.url === '' ? 'static' : 'leases';
  if (config.cluster.role === 'read-replica' && config.nats.url === '') {
    throw new ConfigError('config key "cluster.role" read-replica needs nats.url: a read replica follows the event store of command hosts, it has none of its own');
  }
  return deepFreeze(config);
}

/**
 * `cluster.workers: 0`: one worker per core but one, at least one. The projector and
 * nats-server take a core of their own; with a worker per core, workers forward half
 * their commands to each other over NATS and gain nothing (see BENCHMARKS.md).
 */
export function defaultWorkers(): number {
  return Math.max(1, availableParallelism() - 1);
}

/** True for hosts only this machine can reach: 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

// Commands and the admin API change data; open to the network, anyone who can reach the
// port could issue them. That takes a deliberate setting, not a forgotten token list.
function refuseOpenNetworkListener(http: Config['http']): void {
  if (http.tokens.length > 0 || http.allowUnauthenticated || isLoopbackHost(http.host)) return;
  throw new ConfigError(
    `http.host is ${http.host} (reachable from the network) but http.tokens is empty, so the command and admin APIs would be open to anyone: ` +
      `set ${envName(['http', 'tokens'])}, or ${envName(['http', 'allowUnauthenticated'])}=true to run them open on purpose`,
  );
}

/** The environment variable that sets a key: `["http","commandPort"]` → `CONVERGE_HTTP_COMMAND_PORT`. */
export function envName(path: readonly string[]): string {
  return 'CONVERGE_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/** How converge's processes authenticate to the NATS server the config names (see `NatsAuth`). */
export function natsAuthOf(config: Pick<Config, 'nats'>): NatsAuth {
  const { user, password, token, credsFile, tls } = config.nats;
  return { user, password, token, credsFile, tls };
}

function applyEnv(schema: TSchema, path: string[], target: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const properties = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!properties) return;
  for (const [key, child] of Object.entries(properties)) {
    const childPath = [...path, key];
    if ((child as { type?: string }).type === 'object' && (child as { properties?: unknown }).properties) {
      applyEnv(child, childPath, target, env);
      continue;
    }
    const raw = env[envName(childPath)];
    if (raw !== undefined) setPath(target, childPath, parseEnv(child, raw));
  }
}

function parseEnv(schema: TSchema, raw: string): unknown {
  const type = (schema as { type?: string }).type;
  if (type === 'integer' || type === 'number') return raw.trim() === '' ? raw : Number(raw);
  if (type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  if (type === 'array') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  return raw;
}

function readJson(file: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new ConfigError(`config file ${file} must hold a JSON object`);
  return parsed;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isObject(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

function getPath(target: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), target);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * The package-manager script that started this process, when one did: npm, yarn and pnpm
 * set `npm_lifecycle_script` to the command they run (`exec node dist/main.js` for
 * `npm start`). The primary then drains when that launcher goes away (`runPrimary`).
 */
export function launchScript(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.npm_lifecycle_script;
}
