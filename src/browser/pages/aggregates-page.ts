import type { AggregateDefinition } from '../../aggregates/aggregate-definition';
import { tableSql } from '../../schema/table-sql';
import { href, type BrowserContext, type PageRequest, type PageResult } from '../browser-context';
import { eventColumns } from '../event-rows';
import { html } from '../html';
import { timeText } from '../values';

interface AggregateSummary {
  readonly definition: AggregateDefinition;
  readonly rows: string;
  readonly events: string;
  readonly lastEventAt: Date | null;
}

/**
 * Row and event counts are exact (`count(*)`, a scan of each table: fine for the tables an
 * operator browses, slow on hundreds of millions of rows); the last event is the one with the
 * highest `(tx_id, position)`, found on that index.
 */
async function summaryOf(context: BrowserContext, definition: AggregateDefinition): Promise<AggregateSummary> {
  const c = eventColumns(definition);
  const [row]: { rows: string; events: string; last: Date | null }[] = await context.dataSource.query(
    `SELECT (SELECT count(*) FROM ${tableSql(context.dataSource.driver, definition.metadata)})::text AS "rows", ` +
      `(SELECT count(*) FROM ${c.table})::text AS "events", ` +
      `(SELECT ${c.createdAt} FROM ${c.table} ORDER BY ${c.txId} DESC, ${c.position} DESC LIMIT 1) AS "last"`,
  );
  return { definition, rows: row.rows, events: row.events, lastEventAt: row.last };
}

/** `/`: every sourced aggregate with its row count, event count and last event time. */
export async function aggregatesPage(context: BrowserContext, request: PageRequest): Promise<PageResult> {
  const summaries = await Promise.all(context.definitions.map((definition) => summaryOf(context, definition)));
  const rows = summaries.map(({ definition, rows: count, events, lastEventAt }) => {
    const types = [...new Set(definition.eventsMetadata.childEntityMetadatas.map((child) => String(child.discriminatorValue)))].sort();
    return html`<tr>
<td><strong>${definition.name}</strong><br><span class="muted">${definition.metadata.tableName}, ${definition.eventsMetadata.tableName}</span></td>
<td class="num">${count}</td>
<td class="num"><a href="${href(request, ['feed'], { aggregate: definition.name })}">${events}</a></td>
<td>${lastEventAt ? timeText(lastEventAt) : html`<span class="null">none</span>`}</td>
<td>${types.map((type, index) => html`${index > 0 ? ', ' : ''}<a href="${href(request, ['feed'], { type })}">${type}</a>`)}</td>
<td><form class="inline" method="get" action="${href(request, ['aggregates', definition.name])}"><input name="id" size="10" aria-label="${definition.name} id" required> <button>Open</button></form></td>
</tr>`;
  });
  const body = html`<h1>Aggregates</h1>
${
  summaries.length === 0
    ? html`<p>This DataSource has no aggregates with events.</p>`
    : html`<table>
<thead><tr><th>Aggregate (table, events table)</th><th class="num">Rows</th><th class="num">Events</th><th>Last event</th><th>Event types</th><th>Open by id</th></tr></thead>
<tbody>${rows}</tbody>
</table>
<p class="muted">Counts are exact (<code>count(*)</code>). Times are UTC.</p>`
}`;
  return { title: 'Aggregates', section: 'aggregates', body };
}
