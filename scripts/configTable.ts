import { configTable } from '../src/host/configTable.js';

// `npm run docs:config`: prints the README's configuration table, generated from the config schema.
process.stdout.write(configTable() + '\n');
