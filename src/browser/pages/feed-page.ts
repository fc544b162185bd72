import type { AggregateDefinition } from '../../aggregates/aggregate-definition';
import { definitionNamed, href, type BrowserContext, type PageRequest, type PageResult } from '../browser-context';
import { parseEventRef, selectEventRows, type EventColumns, type EventRow } from '../event-rows';
import { html, type Html } from '../html';
import { badParameter } from '../http-error';
import { aggregateLink, correlationLink, eventLink } from '../links';
import { aggregateIdParam, cursorText, feedCursor, intInRange, moment, optionalParam, type FeedCursor } from '../params';
import { timeText } from '../values';

/** The most events one page of the feed shows, whatever `limit` asks. */
export const MAX_PAGE_SIZE = 200;

/** The feed's filters, as parsed from the query string. */
interface FeedFilters {
  readonly type?: string;
  readonly from?: Date;
  readonly to?: Date;
  readonly aggregate?: AggregateDefinition;
  /** The aggregate id as given, and as the primary column takes it. */
  readonly id?: { text: string; value: unknown };
  readonly correlation?: string;
}

function filtersOf(context: BrowserContext, query: URLSearchParams): { filters: FeedFilters; text: Record<string, string | undefined> } {
  const text = {
    type: optionalParam(query, 'type', 255),
    from: optionalParam(query, 'from', 40),
    to: optionalParam(query, 'to', 40),
    aggregate: optionalParam(query, 'aggregate', 255),
    id: optionalParam(query, 'id'),
    correlation: optionalParam(query, 'correlation'),
  };
  const aggregate = text.aggregate === undefined ? undefined : definitionNamed(context, text.aggregate);
  if (text.aggregate !== undefined && !aggregate) {
    throw badParameter('aggregate', `names no aggregate with events (known: ${context.definitions.map((definition) => definition.name).join(', ') || 'none'})`);
  }
  if (text.id !== undefined && !aggregate) throw badParameter('id', 'needs aggregate, the type of the aggregate it names');
  const from = text.from === undefined ? undefined : moment('from', text.from);
  const to = text.to === undefined ? undefined : moment('to', text.to);
  if (from && to && from.getTime() >= to.getTime()) throw badParameter('to', 'must be later than from');
  return {
    filters: {
      type: text.type,
      from,
      to,
      aggregate,
      id: text.id === undefined ? undefined : { text: text.id, value: aggregateIdParam(aggregate!, 'id', text.id) },
      correlation: text.correlation,
    },
    text,
  };
}

/** The conditions of the filters on one events table; `null` when no event of it can match. */
function conditions(filters: FeedFilters, c: EventColumns, parameter: (value: unknown) => string, definition: AggregateDefinition): string[] | null {
  if (filters.aggregate && filters.aggregate !== definition) return null;
  const where: string[] = [];
  if (filters.id) where.push(`${c.aggregateId} = ${parameter(definition.metadata.connection.driver.preparePersistentValue(filters.id.value, definition.primaryColumn))}`);
  if (filters.type !== undefined) where.push(`${c.type} = ${parameter(filters.type)}`);
  if (filters.from) where.push(`${c.createdAt} >= ${parameter(filters.from)}`);
  if (filters.to) where.push(`${c.createdAt} < ${parameter(filters.to)}`);
  if (filters.correlation !== undefined) {
    // The first event of a chain carries no correlation id: it is the one the id names.
    const root = parseEventRef(filters.correlation);
    where.push(
      root && root.table === definition.eventsMetadata.tableName
        ? `(${c.metadata} ->> 'correlationId' = ${parameter(filters.correlation)} OR ${c.id} = ${parameter(root.id)})`
        : `${c.metadata} ->> 'correlationId' = ${parameter(filters.correlation)}`,
    );
  }
  return where;
}

function keyset(cursor: FeedCursor | undefined, direction: '<' | '>', c: EventColumns, parameter: (value: unknown) => string): string[] {
  return cursor ? [`(${c.txId}, ${c.position}) ${direction} (${parameter(cursor.txId)}::bigint, ${parameter(cursor.position)}::bigint)`] : [];
}

const cursorOf = (row: EventRow): string => cursorText({ txId: row.txId, position: row.position });

function filterForm(context: BrowserContext, request: PageRequest, text: Record<string, string | undefined>, filters: FeedFilters, limit: number): Html {
  const types = [...new Set(context.definitions.flatMap((definition) => definition.eventsMetadata.childEntityMetadatas.map((child) => String(child.discriminatorValue))))].sort();
  const local = (date: Date | undefined) => (date ? date.toISOString().slice(0, 23) : '');
  return html`<form class="filters" method="get" action="${href(request, ['feed'])}">
<label>Type <input name="type" list="event-types" value="${text.type ?? ''}" size="24"></label>
<datalist id="event-types">${types.map((type) => html`<option value="${type}">`)}</datalist>
<label>Aggregate <select name="aggregate"><option value="">any</option>${context.definitions.map(
    (definition) => html`<option${filters.aggregate === definition ? html` selected` : ''}>${definition.name}</option>`,
  )}</select></label>
<label>Aggregate id <input name="id" value="${text.id ?? ''}" size="10"></label>
<label>From (UTC) <input type="datetime-local" step="0.001" name="from" value="${local(filters.from)}"></label>
<label>To (UTC, excluded) <input type="datetime-local" step="0.001" name="to" value="${local(filters.to)}"></label>
<label>Correlation id <input name="correlation" value="${text.correlation ?? ''}" size="28"></label>
<label>Per page <input type="number" name="limit" min="1" max="${MAX_PAGE_SIZE}" value="${limit}"></label>
<button>Filter</button> <a href="${href(request, ['feed'])}">clear</a>
</form>`;
}

/**
 * `/feed`: every events table's events as one list, newest first in `(tx_id, position)` order,
 * filtered, a page at a time: `before=<cursor>` goes to older events and `after=<cursor>` to
 * newer ones (keyset pagination, no OFFSET), a cursor being the `<txId>-<position>` of an event.
 */
export async function feedPage(context: BrowserContext, request: PageRequest): Promise<PageResult> {
  const { filters, text } = filtersOf(context, request.query);
  const limitText = optionalParam(request.query, 'limit', 10);
  const limit = limitText === undefined ? context.options.pageSize : intInRange('limit', limitText, 1, MAX_PAGE_SIZE);
  const afterText = optionalParam(request.query, 'after', 60);
  const beforeText = optionalParam(request.query, 'before', 60);
  if (afterText !== undefined && beforeText !== undefined) throw badParameter('after', 'and before cannot both be given');
  const after = afterText === undefined ? undefined : feedCursor('after', afterText);
  const before = beforeText === undefined ? undefined : feedCursor('before', beforeText);
  const rows = await selectEventRows(context.dataSource, context.definitions, {
    where: (c, parameter, definition) => {
      const where = conditions(filters, c, parameter, definition);
      return where && [...where, ...keyset(after, '>', c, parameter), ...keyset(before, '<', c, parameter)];
    },
    order: after ? 'asc' : 'desc',
    limit: limit + 1,
  });
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  if (after) page.reverse();
  const kept = { ...text, limit: limitText };
  const newer = after ? more : before !== undefined;
  const older = after ? true : more;
  const nav = html`<nav class="pages">${
    newer && page.length > 0 ? html`<a href="${href(request, ['feed'], { ...kept, after: cursorOf(page[0]) })}">← newer</a>` : ''
  }${older && page.length > 0 ? html`<a href="${href(request, ['feed'], { ...kept, before: cursorOf(page[page.length - 1]) })}">older →</a>` : ''}${
    page.length === 0 && (after || before) ? html`<a href="${href(request, ['feed'], kept)}">newest events</a>` : ''
  }</nav>`;
  const body = html`<h1>Feed</h1>
${filterForm(context, request, text, filters, limit)}
${
  page.length === 0
    ? html`<p>No events${after || before ? ' on this page' : ' match'}.</p>${nav}`
    : html`${nav}<table><thead><tr><th>Created at (UTC)</th><th>Type</th><th>Aggregate</th><th>Event</th><th>Correlation</th><th>Caused by</th><th class="num">Position</th><th class="num">Transaction</th></tr></thead><tbody>${page.map(
        (row) => html`<tr><td>${timeText(row.createdAt)}</td><td>${row.type}</td><td>${aggregateLink(request, row.aggregate, row.aggregateId, row.version)} v${row.version}</td><td>${eventLink(
          request,
          row.table,
          row.id,
        )}</td><td>${correlationLink(request, row.correlationId ?? null)}</td><td>${causationCell(request, row)}</td><td class="num">${row.position}</td><td class="num">${row.txId}</td></tr>`,
      )}</tbody></table>${nav}`
}
<p class="muted">Newest first, in the order projections read events: by transaction id, then position. Filters other than the aggregate scan the events tables; see docs/browser.md for the indexes that help on large tables.</p>`;
  return { title: 'Feed', section: 'feed', body };
}

function causationCell(request: PageRequest, row: EventRow): Html {
  if (row.causationId === null) return html``;
  const parent = parseEventRef(row.causationId);
  return parent ? eventLink(request, parent.table, parent.id) : html`<code>${row.causationId}</code>`;
}
