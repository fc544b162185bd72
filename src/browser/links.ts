import { href, type PageRequest } from './browser-context';
import { html, type Html } from './html';

/** The address of an event's page: `<base>/events/<table>/<id>`, the address bull-board's `eventUrl` can give. */
export function eventHref(request: PageRequest, table: string, id: string): string {
  return href(request, ['events', table, id]);
}

/** A link to an event's page, shown as `<table>/<id>`. */
export function eventLink(request: PageRequest, table: string, id: string): Html {
  return html`<a href="${eventHref(request, table, id)}">${table}/${id}</a>`;
}

/** The address of an aggregate's page, at one version's row of its history when given. */
export function aggregateHref(request: PageRequest, aggregate: string, id: string, version?: number): string {
  return href(request, ['aggregates', aggregate, id]) + (version === undefined ? '' : `#v${version}`);
}

/** A link to an aggregate's page, shown as `<Aggregate> <id>`. */
export function aggregateLink(request: PageRequest, aggregate: string, id: string, version?: number): Html {
  return html`<a href="${aggregateHref(request, aggregate, id, version)}">${aggregate} ${id}</a>`;
}

/** A link to the feed of one correlation. */
export function correlationLink(request: PageRequest, correlationId: string | null): Html {
  if (correlationId === null) return html`<span class="null">none</span>`;
  return html`<a href="${href(request, ['feed'], { correlation: correlationId })}">${correlationId}</a>`;
}
