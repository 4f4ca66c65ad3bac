import { withPostgres } from '../helpers/postgres.js';

// The CRUD baseline on PostgreSQL; see baselineCrud.suite.ts.
await withPostgres(() => import('./baselineCrud.suite.js'));
