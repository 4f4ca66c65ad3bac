import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TSchema } from 'typebox';
import { ConfigError, ConfigSchema, envName, isObject, validateConfig, type Config } from '../core/config.js';
import type { NatsAuth } from '../nats/connection.js';

interface Sources {
  /** Folder holding `default.json` and `<NODE_ENV>.json`. */
  dir?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Loads `config/default.json` ← `config/<NODE_ENV>.json` ← `CONVERGE_*` variables
 * (`http.commandPort` is `CONVERGE_HTTP_COMMAND_PORT`; `NATS_URL` is accepted too),
 * validates the result once and freezes it. This is the only reader of the environment.
 */
export function loadConfig({ dir = join(process.cwd(), 'config'), env = process.env }: Sources = {}): Config {
  let merged = readJson(join(dir, 'default.json'), true);
  const profile = env.NODE_ENV;
  if (profile) merged = deepMerge(merged, readJson(join(dir, `${profile}.json`), false));
  if (env.NATS_URL !== undefined) setPath(merged, ['nats', 'url'], env.NATS_URL);
  applyEnv(ConfigSchema, [], merged, env);

  return validateConfig(merged);
}

function applyEnv(schema: TSchema, path: string[], target: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  const properties = (schema as { properties?: Record<string, TSchema> }).properties;
  if (!properties) return;
  for (const [key, child] of Object.entries(properties)) {
    const childPath = [...path, key];
    if ((child as { type?: string }).type === 'object') {
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

function readJson(file: string, required: boolean): Record<string, unknown> {
  if (!existsSync(file)) {
    if (required) throw new ConfigError(`config file ${file} is missing`);
    return {};
  }
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
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


/** How converge's processes authenticate to the NATS server the config names (see `NatsAuth`). */
export function natsAuthOf(config: Pick<Config, 'nats'>): NatsAuth {
  const { user, password, token, credsFile, tls } = config.nats;
  return { user, password, token, credsFile, tls };
}
