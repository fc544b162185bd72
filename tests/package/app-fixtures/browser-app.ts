// The pack test's event browser app: the installed package's browser on node:http, over events
// holding hostile strings, a failed job retried through its form.
import 'reflect-metadata';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { Dispatcher, EventSourcing } from 'typeorm-event-sourcing';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { entities, Subscription, SubscriptionActivated, SubscriptionCreated } from './model';

const hostile = `<script>alert(1)</script>'"; DROP TABLE subscription; -- 🦀`;

async function Charge(event: SubscriptionActivated) {
  throw new Error(`card declined for ${event.stripeKey}`);
}

async function main() {
  const dataSource = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, synchronize: true, entities });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource, {
    dispatcher: new Dispatcher().on(SubscriptionActivated, { async: Charge, attempts: 1 }),
    queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME },
  });
  const worker = es.worker();
  const created = await es.append(SubscriptionCreated.build({ note: hostile }));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const activated = await es.append(SubscriptionActivated.build({ subscription, stripeKey: hostile, metadata: { correlationId: hostile } }));
  await waitForReactors(es, { timeout: 20_000, allowFailures: true });
  await worker.close();

  const browser = createEventBrowser(es, { basePath: '/ops', readOnly: false });
  const server = createServer((request, response) => browser(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ops`;
  const get = async (path: string) => {
    const response = await fetch(base + path, { redirect: 'manual' });
    return { status: response.status, body: await response.text(), csp: response.headers.get('content-security-policy') };
  };
  try {
    const home = await get('/');
    const aggregate = await get(`/aggregates/Subscription/${subscription.id}`);
    const event = await get(`/events/subscription_events/${activated.id}`);
    const feed = await get(`/feed?type=Subscription.Activated&correlation=${encodeURIComponent(hostile)}`);
    const token = /name="token" value="([^"]+)"/.exec(event.body)?.[1];
    const action = /<form class="inline" method="post" action="([^"]+)"/.exec(event.body)?.[1]?.replace(/&amp;/g, '&');
    const retried = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${action}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: token ?? '', from: 'event' }),
    });
    const forged = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'forged' }),
    });
    const pages = [home, aggregate, event, feed];
    console.log(
      JSON.stringify({
        statuses: pages.map((page) => page.status),
        scriptless: pages.every((page) => !page.body.includes('<script>') && page.csp?.includes("default-src 'none'")),
        escaped: [aggregate, event, feed].every((page) => page.body.includes('&lt;script&gt;alert(1)&lt;/script&gt;')),
        aggregateShows: ['Subscription.Activated', 'pending', 'active'].every((text) => aggregate.body.includes(text)),
        eventShows: ['Charge', 'failed', 'card declined for &lt;script&gt;'].every((text) => event.body.includes(text)),
        feedRows: (feed.body.match(/<td>Subscription\.Activated<\/td>/g) ?? []).length,
        retried: retried.status,
        forged: forged.status,
        jobAfter: (await es.queue.getJobs(['waiting', 'failed', 'completed', 'active'])).map((job) => job.name),
        notFound: (await get(`/aggregates/Subscription/999999`)).status,
        badId: (await get(`/aggregates/Subscription/abc`)).status,
        badDate: (await get(`/feed?from=yesterday`)).status,
        rows: (await dataSource.query('SELECT count(*)::int AS n FROM subscription'))[0].n,
      }),
    );
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await es.queue.obliterate({ force: true });
    await es.close();
    await dataSource.destroy();
  }
}
main().catch((error) => {
  console.error(error);
  process.exit(1);
});
