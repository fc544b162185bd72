import { getMetadataStorage } from '../../metadata/metadata-storage';
import { definitionOfTable, href, type BrowserContext, type PageRequest, type PageResult } from '../browser-context';
import { jobsOfEvent, type EventJob } from '../../reactors/event-jobs';
import { eventRef, parseEventRef, selectEventRows, type EventRow } from '../event-rows';
import { html, type Html } from '../html';
import { notFound } from '../http-error';
import { aggregateLink, correlationLink, eventLink } from '../links';
import { positiveBigint } from '../params';
import { prettyJson, timeText } from '../values';

/** Events shown at most as an event's children, and in its correlation tree. */
export const MAX_CHILDREN = 100;
export const MAX_CORRELATED = 500;

async function eventRow(context: BrowserContext, table: string, id: string, full: boolean): Promise<EventRow | undefined> {
  const definition = definitionOfTable(context, table);
  if (!definition) return undefined;
  const [row] = await selectEventRows(context.dataSource, [definition], { where: (c, parameter) => [`${c.id} = ${parameter(id)}`], order: 'asc', limit: 1, full });
  return row;
}

/** A one-line description of an event: its link, type, aggregate and version. */
function eventLine(request: PageRequest, row: EventRow): Html {
  return html`${eventLink(request, row.table, row.id)} <strong>${row.type}</strong> ${aggregateLink(request, row.aggregate, row.aggregateId, row.version)} v${row.version} <span class="muted">${timeText(row.createdAt)}</span>`;
}

/**
 * The events of one correlation as a tree by causation: each event under the one that caused it,
 * marked `trigger` (written in its transaction) or `async` (by a reactor job later).
 */
function correlationTree(request: PageRequest, rows: readonly EventRow[], current: string): Html {
  const byRef = new Map(rows.map((row) => [eventRef(row), row]));
  const childrenOf = (ref: string | null) =>
    rows.filter((row) => (ref === null ? row.causationId === null || !byRef.has(row.causationId) : row.causationId === ref));
  const node = (row: EventRow, depth: number): Html => {
    const parent = row.causationId ? byRef.get(row.causationId) : undefined;
    const via = parent ? html` <span class="muted">(${parent.txId === row.txId ? 'trigger' : 'async'})</span>` : '';
    const children = depth < 50 ? childrenOf(eventRef(row)) : [];
    const line = html`${eventLine(request, row)}${via}`;
    return html`<li>${eventRef(row) === current ? html`<span class="current">${line}</span>` : line}${
      children.length > 0 ? html`<ul>${children.map((child) => node(child, depth + 1))}</ul>` : ''
    }</li>`;
  };
  return html`<ul class="tree">${childrenOf(null).map((row) => node(row, 0))}</ul>`;
}

function jobState(state: string): Html {
  const tone = state === 'completed' ? 'ok' : state === 'failed' ? 'bad' : state === 'missing' ? 'muted' : 'warn';
  return html`<span class="state ${tone}">${state}</span>`;
}

async function jobsTable(context: BrowserContext, request: PageRequest, jobs: readonly EventJob[]): Promise<Html> {
  if (jobs.length === 0) return html`<p class="muted">No async reactor job: ${context.queue === undefined ? 'no queue is configured' : 'no async reactor is registered for this type'}.</p>`;
  const forms = await Promise.all(
    jobs.map(async (job) =>
      job.state === 'failed' && !context.options.readOnly
        ? html`<form class="inline" method="post" action="${href(request, ['jobs', job.jobId, 'retry'])}"><input type="hidden" name="token" value="${await context.csrf.issue(job.jobId)}"><input type="hidden" name="from" value="event"><button>Retry</button></form>`
        : html``,
    ),
  );
  return html`<table><thead><tr><th>Reactor</th><th>State</th><th class="num">Attempts</th><th>Failed reason</th><th>Processed on</th><th>Finished on</th><th>Job id</th>${
    context.options.readOnly ? '' : html`<th></th>`
  }</tr></thead><tbody>${jobs.map(
    (job, index) => html`<tr><td>${job.reactor}</td><td>${jobState(job.state)}</td><td class="num">${job.attemptsMade}</td><td>${
      job.failedReason ? html`<code>${job.failedReason}</code>` : ''
    }</td><td class="time">${timeText(job.processedOn)}</td><td class="time">${timeText(job.finishedOn)}</td><td><code class="id muted">${job.jobId}</code></td>${
      context.options.readOnly ? '' : html`<td>${forms[index]}</td>`
    }</tr>`,
  )}</tbody></table>${
    jobs.some((job) => job.state === 'missing')
      ? html`<p class="muted">missing: not in the queue (still in the outbox, completed longer ago than the queue keeps jobs, or removed).</p>`
      : ''
  }`;
}

/**
 * `/events/<table>/<id>`: an event's data and metadata as stored, the event that caused it and
 * those it caused, its correlation tree across aggregates, and its reactor jobs.
 */
export async function eventPage(context: BrowserContext, request: PageRequest, table: string, idText: string): Promise<PageResult> {
  if (!definitionOfTable(context, table)) throw notFound(`Events table '${table}'`);
  const id = positiveBigint('id', idText);
  const row = await eventRow(context, table, id, true);
  if (!row) throw notFound(`Event ${table}/${id}`);
  const ref = eventRef(row);
  const correlation = row.correlationId ?? ref;
  const root = parseEventRef(correlation);
  const parentRef = row.causationId === null ? undefined : parseEventRef(row.causationId);
  const [parent, children, correlated, jobs] = await Promise.all([
    parentRef ? eventRow(context, parentRef.table, parentRef.id, false) : undefined,
    selectEventRows(context.dataSource, context.definitions, {
      where: (c, parameter) => [`${c.metadata} ->> 'causationId' = ${parameter(ref)}`],
      order: 'asc',
      limit: MAX_CHILDREN,
    }),
    selectEventRows(context.dataSource, context.definitions, {
      where: (c, parameter, definition) => [
        root && root.table === definition.eventsMetadata.tableName
          ? `(${c.metadata} ->> 'correlationId' = ${parameter(correlation)} OR ${c.id} = ${parameter(root.id)})`
          : `${c.metadata} ->> 'correlationId' = ${parameter(correlation)}`,
      ],
      order: 'asc',
      limit: MAX_CORRELATED,
    }),
    jobsOfEvent(context.es, { table: row.table, id: row.id, position: row.position, txId: row.txId, type: row.type }),
  ]);
  const eventClass = definitionOfTable(context, table)!.eventsMetadata.childEntityMetadatas.find((child) => child.discriminatorValue === row.type)?.target;
  const classVersion = typeof eventClass === 'function' ? (getMetadataStorage().eventTypeOf(eventClass)?.version ?? 1) : undefined;
  const body = html`<h1>${row.type} <span class="muted">${ref}</span></h1>
<table><tbody>
<tr><th>Aggregate</th><td>${aggregateLink(request, row.aggregate, row.aggregateId, row.version)}, version ${row.version}</td></tr>
<tr><th>Created at (UTC)</th><td>${timeText(row.createdAt)}</td></tr>
<tr><th>Position, transaction</th><td>${row.position}, ${row.txId}</td></tr>
<tr><th>Schema version</th><td>${row.schemaVersion}${
    classVersion === undefined
      ? html` <span class="warn">no event class claims this type</span>`
      : classVersion !== row.schemaVersion
        ? html` <span class="muted">(the class is at version ${classVersion}: loaded events are upcast; shown here as stored)</span>`
        : ''
  }</td></tr>
<tr><th>Correlation</th><td>${correlationLink(request, correlation)}</td></tr>
</tbody></table>
<h2>Reactor jobs</h2>
${await jobsTable(context, request, jobs)}
<h2>Data</h2>
<pre>${prettyJson(row.data)}</pre>
<h2>Metadata</h2>
<pre>${prettyJson(row.metadata)}</pre>
<h2>Caused by</h2>
${
  row.causationId === null
    ? html`<p class="muted">Nothing recorded: not written by a reactor.</p>`
    : parent
      ? html`<p>${eventLine(request, parent)}</p>`
      : html`<p><code>${row.causationId}</code> <span class="warn">not found</span></p>`
}
<h2>Caused</h2>
${
  children.length === 0
    ? html`<p class="muted">No event names this one as its cause.</p>`
    : html`<ul>${children.map((child) => html`<li>${eventLine(request, child)} <span class="muted">(${child.txId === row.txId ? 'trigger' : 'async'})</span></li>`)}</ul>${
        children.length === MAX_CHILDREN ? html`<p class="muted">The first ${MAX_CHILDREN} shown.</p>` : ''
      }`
}
<h2>Correlation ${correlation}</h2>
${correlated.length <= 1 ? html`<p class="muted">This event is alone in its correlation.</p>` : correlationTree(request, correlated, ref)}
${correlated.length === MAX_CORRELATED ? html`<p class="muted">The first ${MAX_CORRELATED} events of the correlation shown.</p>` : ''}
`;
  return { title: `${row.type} ${ref}`, section: undefined, body };
}
