import type { ObjectLiteral } from 'typeorm';
import type { AggregateDefinition, ColumnMetadata } from '../../aggregates/aggregate-definition';
import { EventSourcingError } from '../../errors/event-sourcing-error';
import type { VerifyMismatch } from '../../replay/verify';
import { stateTrail, type TrailStep } from '../../replay/state-trail';
import { definitionNamed, href, type BrowserContext, type PageRequest, type PageResult } from '../browser-context';
import { selectEventRows, type EventRow } from '../event-rows';
import { html, type Html } from '../html';
import { notFound } from '../http-error';
import { correlationLink, eventLink } from '../links';
import { aggregateIdParam, intInRange, optionalParam } from '../params';
import { timeText, valueHtml } from '../values';

/** Events per page of an aggregate's history (newest first); every page replays the whole history up to it. */
export const HISTORY_PAGE = 100;
const MAX_VERSION = 2 ** 31 - 1;

/** `/aggregates/<Name>?id=<id>`: the "open by id" form of the aggregates page, sent on to the aggregate's address. */
export function openAggregate(context: BrowserContext, request: PageRequest, name: string): PageResult {
  const definition = definitionNamed(context, name);
  if (!definition) throw notFound(`Aggregate type '${name}'`);
  const id = optionalParam(request.query, 'id') ?? '';
  aggregateIdParam(definition, 'id', id);
  return { redirect: href(request, ['aggregates', definition.name, id]) };
}

/** The history rows of the page asked for (`before`/`after` a version), newest first, and whether more exist. */
async function historyWindow(context: BrowserContext, definition: AggregateDefinition, id: unknown, request: PageRequest) {
  const before = optionalParam(request.query, 'before');
  const after = optionalParam(request.query, 'after');
  const beforeVersion = before === undefined ? undefined : intInRange('before', before, 1, MAX_VERSION);
  const afterVersion = after === undefined ? undefined : intInRange('after', after, 0, MAX_VERSION);
  const ascending = afterVersion !== undefined && beforeVersion === undefined;
  const rows = await selectEventRows(context.dataSource, [definition], {
    where: (c, parameter) => [
      // The id as the column takes it, so that the (aggregate, version) index serves the read.
      `${c.aggregateId} = ${parameter(context.dataSource.driver.preparePersistentValue(id, definition.primaryColumn))}`,
      ...(beforeVersion !== undefined ? [`${c.version} < ${parameter(beforeVersion)}`] : []),
      ...(afterVersion !== undefined ? [`${c.version} > ${parameter(afterVersion)}`] : []),
    ],
    by: 'version',
    order: ascending ? 'asc' : 'desc',
    limit: HISTORY_PAGE + 1,
  });
  const more = rows.length > HISTORY_PAGE;
  const page = rows.slice(0, HISTORY_PAGE);
  if (ascending) page.reverse();
  return { rows: page, olderExist: ascending ? page.length > 0 && page[page.length - 1].version > 1 : more, newerExist: ascending ? more : beforeVersion !== undefined };
}

/** The states after the versions shown: one replay of the history up to the newest of them. */
async function trailOf(context: BrowserContext, definition: AggregateDefinition, id: unknown, versions: ReadonlySet<number>, until: number) {
  const steps = new Map<number, TrailStep>();
  try {
    for await (const step of stateTrail(context.dataSource.manager, definition, id)) {
      if (versions.has(step.event.version)) steps.set(step.event.version, step);
      if (step.event.version >= until) break;
    }
    return { steps, problem: undefined };
  } catch (error) {
    // A history that cannot be replayed (no creating first event, an apply that throws, a type
    // no class claims) is shown as stored, with the library's message.
    if (error instanceof EventSourcingError) return { steps, problem: `${error.name}: ${error.message}` };
    throw error;
  }
}

function columnRole(definition: AggregateDefinition, column: ColumnMetadata): string {
  if (column === definition.primaryColumn) return 'id';
  if (column === definition.versionColumn) return 'version';
  return definition.sourcedColumns.includes(column) ? 'sourced' : 'not sourced';
}

function rowTable(definition: AggregateDefinition, row: ObjectLiteral): Html {
  const columns = definition.metadata.columns.filter((column) => !column.isVirtual && !column.relationMetadata);
  return html`<table><thead><tr><th>Column</th><th>Value</th><th>Role</th></tr></thead><tbody>${columns.map(
    (column) => html`<tr><td>${column.propertyPath}</td><td>${valueHtml(column.getEntityValue(row))}</td><td class="muted">${columnRole(definition, column)}</td></tr>`,
  )}</tbody></table>`;
}

function verifyHtml(mismatches: VerifyMismatch[], versionOfRow: number): Html {
  if (mismatches.length === 0) return html`<p><span class="ok">Verified</span>: the row equals the replay of its ${versionOfRow} event${versionOfRow === 1 ? '' : 's'}.</p>`;
  if (mismatches.some((mismatch) => mismatch.reason === 'noEvents')) {
    return html`<p><span class="warn">No events</span>: the row is from before the model had events and waits for its baseline (<code>es.baseline</code>).</p>`;
  }
  return html`<p><span class="bad">Drift</span>: the row differs from the replay of its events (<code>es.rebuild</code> writes the replay into the row).</p>
<table><thead><tr><th>Column</th><th>Stored</th><th>Replayed</th></tr></thead><tbody>${mismatches.map(
    (mismatch) => html`<tr><td>${mismatch.column}</td><td>${valueHtml(mismatch.stored)}</td><td>${valueHtml(mismatch.replayed)}</td></tr>`,
  )}</tbody></table>`;
}

function diffHtml(step: TrailStep | undefined): Html {
  if (!step) return html`<span class="muted">not replayed</span>`;
  const changes =
    step.changed.length === 0
      ? html`<span class="muted">no sourced column changed</span>`
      : html`<ul class="diff">${step.changed.map(
          (change) => html`<li>${change.column.propertyPath}: <del>${valueHtml(change.before)}</del> → <ins>${valueHtml(change.after)}</ins></li>`,
        )}</ul>`;
  const state = html`<details><summary>state after</summary><table><tbody>${[...step.after].map(
    ([column, value]) => html`<tr><td>${column.propertyPath}</td><td>${valueHtml(value)}</td></tr>`,
  )}</tbody></table></details>`;
  return html`${changes}${state}`;
}

function historyRow(request: PageRequest, row: EventRow, step: TrailStep | undefined): Html {
  return html`<tr id="v${row.version}">
<td class="num"><a href="#v${row.version}">${row.version}</a></td>
<td>${row.type}<br>${eventLink(request, row.table, row.id)}</td>
<td>${timeText(row.createdAt)}</td>
<td>${correlationLink(request, row.correlationId)}</td>
<td>${diffHtml(step)}</td>
</tr>`;
}

/**
 * `/aggregates/<Name>/<id>`: the row, its verify status, and its history newest first with, for
 * each event, what it changed and the state after it.
 */
export async function aggregatePage(context: BrowserContext, request: PageRequest, name: string, idText: string): Promise<PageResult> {
  const definition = definitionNamed(context, name);
  if (!definition) throw notFound(`Aggregate type '${name}'`);
  const id = aggregateIdParam(definition, 'id', idText);
  const row = (await context.dataSource.manager.createQueryBuilder(definition.target, 'aggregate').whereInIds([id]).getOne()) as ObjectLiteral | null;
  if (!row) throw notFound(`${definition.name} ${idText}`);
  const rawId = String(definition.idOf(row));
  const window = await historyWindow(context, definition, id, request);
  const versions = new Set(window.rows.map((event) => event.version));
  const newest = window.rows[0]?.version ?? 0;
  const [trail, mismatches] = await Promise.all([
    trailOf(context, definition, id, versions, newest),
    context.es.verify(definition.target as never, { id }),
  ]);
  const pages = html`<nav class="pages">${
    window.newerExist ? html`<a href="${href(request, ['aggregates', definition.name, rawId], { after: String(newest) })}">← newer events</a>` : ''
  }${
    window.olderExist ? html`<a href="${href(request, ['aggregates', definition.name, rawId], { before: String(window.rows[window.rows.length - 1].version) })}">older events →</a>` : ''
  }</nav>`;
  const feed = href(request, ['feed'], { aggregate: definition.name, id: rawId });
  const body = html`<h1>${definition.name} ${rawId}</h1>
<p class="muted">version ${definition.versionOf(row)} · table ${definition.metadata.tableName} · events in ${definition.eventsMetadata.tableName} · <a href="${feed}">in the feed</a></p>
<h2>Verify</h2>
${verifyHtml(mismatches, definition.versionOf(row))}
<h2>Current row</h2>
${rowTable(definition, row)}
<h2>History</h2>
${trail.problem ? html`<p class="error">The history cannot be replayed, so states are not shown: ${trail.problem}</p>` : ''}
${
  window.rows.length === 0
    ? html`<p>No events.</p>`
    : html`${pages}<table><thead><tr><th class="num">Version</th><th>Type, event</th><th>Created at (UTC)</th><th>Correlation</th><th>Changes (sourced columns, before → after)</th></tr></thead>
<tbody>${window.rows.map((event) => historyRow(request, event, trail.steps.get(event.version)))}</tbody></table>${pages}`
}`;
  return { title: `${definition.name} ${rawId}`, section: 'aggregates', body };
}
