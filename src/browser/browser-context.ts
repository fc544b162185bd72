import type { DataSource } from 'typeorm';
import type { AggregateDefinition } from '../aggregates/aggregate-definition';
import type { EventSourcing } from '../event-sourcing';
import type { ReactorQueue } from '../reactors/reactor-queue';
import type { CsrfTokens } from './csrf';
import type { ResolvedBrowserOptions } from './event-browser-options';
import type { Html } from './html';
import type { Section } from './layout';

/** What every page reads, made once per browser. */
export interface BrowserContext {
  readonly es: EventSourcing;
  readonly dataSource: DataSource;
  /** The sourced aggregates, by entity name. */
  readonly definitions: readonly AggregateDefinition[];
  readonly options: ResolvedBrowserOptions;
  readonly csrf: CsrfTokens;
  /** The reactor queue, when `es` was attached with one. */
  readonly queue: ReactorQueue | undefined;
}

/** One request as a page sees it. */
export interface PageRequest {
  /** The prefix of every link: `basePath`, or the Express mount path. */
  readonly base: string;
  readonly query: URLSearchParams;
}

/** What a page answers: HTML in the layout, or a redirect (after a POST). */
export type PageResult = { readonly title: string; readonly section: Section; readonly body: Html } | { readonly redirect: string };

/** A link inside the browser: path segments (encoded here) and query parameters (empty ones left out). */
export function href(request: PageRequest, segments: readonly string[], query: Record<string, string | undefined> = {}): string {
  const path = segments.length === 0 ? '/' : `/${segments.map(encodeURIComponent).join('/')}`;
  const search = new URLSearchParams(Object.entries(query).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '')).toString();
  return `${request.base}${path}${search ? `?${search}` : ''}`;
}

export function definitionNamed(context: BrowserContext, name: string): AggregateDefinition | undefined {
  return context.definitions.find((definition) => definition.name === name);
}

export function definitionOfTable(context: BrowserContext, table: string): AggregateDefinition | undefined {
  return context.definitions.find((definition) => definition.eventsMetadata.tableName === table);
}
