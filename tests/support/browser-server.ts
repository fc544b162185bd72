import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { testDataSource } from './database';
import { browserDispatcher, browserEntities, LedgerOpened } from './browser-model';

/** A page as fetched: status, headers and body. */
export interface FetchedPage {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  /** The body as a reader sees it: tags dropped, entities decoded, whitespace collapsed. */
  readonly text: string;
}

/** A node:http server on a free loopback port, serving one handler. */
export interface ServedBrowser {
  readonly url: string;
  get(path: string, init?: RequestInit): Promise<FetchedPage>;
  post(path: string, form: Record<string, string>, headers?: Record<string, string>): Promise<FetchedPage>;
  close(): Promise<void>;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };

/** Text as a browser shows it, for assertions that do not depend on markup. */
export function textOf(body: string): string {
  return body
    .replace(/<style>[\s\S]*?<\/style>/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(amp|lt|gt|quot|#39);/g, (_match, name: string) => ENTITIES[name])
    .replace(/\s+/g, ' ')
    .trim();
}

async function fetched(response: Response): Promise<FetchedPage> {
  const body = await response.text();
  return { status: response.status, headers: response.headers, body, text: textOf(body) };
}

export async function serve(handler: RequestListener): Promise<ServedBrowser> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    get: async (path, init) => fetched(await fetch(`${url}${path}`, { redirect: 'manual', ...init })),
    post: async (path, form, headers = {}) =>
      fetched(await fetch(`${url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() })),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The browser tests' world: a fresh database of accounts and a ledger, attached with a queue of its own. */
export async function browserWorld(name: string): Promise<{ dataSource: DataSource; es: EventSourcing; close(): Promise<void> }> {
  const dataSource = await testDataSource(name, browserEntities);
  const es = await EventSourcing.attach(dataSource, {
    dispatcher: browserDispatcher,
    queue: { connection: process.env.REDIS_URL ?? 'redis://127.0.0.1:6380', name: `es-${name}-${process.pid}-${Date.now()}` },
  });
  await es.append(LedgerOpened.build({}));
  return {
    dataSource,
    es,
    close: async () => {
      await es.queue.obliterate({ force: true }).catch(() => undefined);
      await es.close();
      await dataSource.destroy();
    },
  };
}

/** The value of the hidden `token` field of the retry form of a job, as the page renders it. */
export function retryToken(body: string, jobId: string): string | undefined {
  const form = new RegExp(`action="[^"]*/jobs/${jobId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/retry"><input type="hidden" name="token" value="([^"]+)"`).exec(body);
  return form?.[1];
}
