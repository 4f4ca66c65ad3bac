import type { FastifyInstance } from 'fastify';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ErrorBody, IdParams, sendError, type ViewReader } from '@converge-es/converge';
import { shopStats, ShopStatsDocument, type ShopStatsDoc } from './shopStats.projection.js';

/** Longest range one request may ask for, in days (a leap year). */
export const MAX_DAYS = 366;

const DAY_MS = 86_400_000;
/** More than a range can hold (one document per day), so a valid range is never cut short. */
const READ_LIMIT = 400;
const Day = Type.String({ pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' });

const StatsQuery = Type.Object({ from: Day, to: Type.Optional(Day) }, { additionalProperties: false });

/** A shop's daily statistics over a date range (its documents), with their totals. */
export const ShopStatsReply = Type.Object({
  shopId: Type.String(),
  from: Type.String(),
  to: Type.String(),
  days: Type.Array(ShopStatsDocument),
  totals: Type.Omit(ShopStatsDocument, ['shopId', 'day']),
});

/** Milliseconds of a `YYYY-MM-DD` UTC day, or undefined when it is no calendar date (`2024-02-30`). */
function dayStart(day: string): number | undefined {
  const ms = Date.parse(`${day}T00:00:00.000Z`);
  return Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== day ? undefined : ms;
}

function totalsOf(days: readonly ShopStatsDoc[]) {
  const totals = { orders: 0, delivered: 0, cancelled: 0, rejected: 0, revenue: 0 };
  for (const d of days) {
    totals.orders += d.orders;
    totals.delivered += d.delivered;
    totals.cancelled += d.cancelled;
    totals.rejected += d.rejected;
    totals.revenue += d.revenue;
  }
  return totals;
}

/** `GET /shops/:id/stats?from=&to=`: one document per day that had an order event, and their totals. */
export async function shopStatsRoutes(app: FastifyInstance, deps: { views: ViewReader }): Promise<void> {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/shops/:id/stats',
    {
      config: { projection: shopStats },
      schema: {
        tags: ['shops'],
        operationId: 'shopStats.range',
        params: IdParams,
        querystring: StatsQuery,
        response: { 200: ShopStatsReply, '4xx': ErrorBody },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { from } = request.query;
      const to = request.query.to ?? from;
      const start = dayStart(from);
      const end = dayStart(to);
      if (start === undefined || end === undefined) return sendError(reply, 'invalid_query', 'from and to must be calendar dates (YYYY-MM-DD)');
      if (start > end) return sendError(reply, 'invalid_query', 'from must not be after to');
      if ((end - start) / DAY_MS + 1 > MAX_DAYS) return sendError(reply, 'invalid_query', `a range may span at most ${MAX_DAYS} days`);
      // Keys are [shopId, day]; the end is exclusive, so '\uffff' after `to` takes `to` in.
      const days = deps.views.byKey(shopStats, [id, from], [id, to + '\uffff'], READ_LIMIT);
      return { shopId: id, from, to, days, totals: totalsOf(days) };
    },
  );
}
