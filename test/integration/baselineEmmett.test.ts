import { withPostgres } from '../helpers/postgres.js';

// The Emmett baseline on PostgreSQL; see baselineEmmett.suite.ts.
await withPostgres(() => import('./baselineEmmett.suite.js'));
