import { configKeys, ConfigSchema } from './configSchema.js';
import { envName } from './config.js';

/**
 * The README's configuration table: every key of the schema, in order, with its default,
 * the environment variable that sets it and what it means. `npm run docs:config` prints it,
 * and a test checks the README holds it as it is.
 */
export function configTable(): string {
  const rows = configKeys(ConfigSchema).map((key) => {
    const value = JSON.stringify(key.default);
    return `| \`${key.path.join('.')}\` | \`${value}\` | \`${envName(key.path)}\` | ${key.description} |`;
  });
  return ['| key | default | environment variable | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
