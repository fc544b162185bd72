import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { ActivateSubscription, CreateSubscription } from '../../examples/subscriptions/commands';
import { dispatcher } from '../../examples/subscriptions/dispatcher';
import { allEntities } from '../../examples/subscriptions/entities';
import { Subscription, type SubscriptionActivated } from '../../examples/subscriptions/model';
import { RewardCreated } from '../../examples/subscriptions/reward';
import { UserRegistered } from '../../examples/subscriptions/user';
import { chromiumPath } from '../support/chromium';
import { testDataSource } from '../support/database';
import { serve, type ServedBrowser } from '../support/browser-server';
import { runReactors } from '../support/run-reactors';

/**
 * The event browser in a real browser, Debian's Chromium driven by playwright-core with
 * JavaScript disabled, on the example domain (examples/subscriptions): the subscription's page
 * and the diff of its activation, then the activation's page and its reactor jobs. Screenshots
 * go to artifacts/browser/ (rewritten each run; docs/images/ holds a copy for docs/browser.md).
 */

const artifacts = path.join(__dirname, '..', '..', 'artifacts', 'browser');

let dataSource: DataSource;
let es: EventSourcing;
let served: ServedBrowser;
let browser: Browser;
let page: Page;
let subscription: Subscription;
let activated: SubscriptionActivated;

beforeAll(async () => {
  const executablePath = chromiumPath();
  dataSource = await testDataSource('browser_chromium', allEntities);
  es = await EventSourcing.attach(dataSource, {
    dispatcher,
    queue: { connection: process.env.REDIS_URL ?? 'redis://127.0.0.1:6380', name: `es-browser-chromium-${process.pid}-${Date.now()}` },
  });
  // The demo's story: a backer subscribes to a reward, and the subscription is activated.
  const user = await dataSource.manager.save(UserRegistered.build({ email: 'ada@example.com', name: 'Ada' }));
  const reward = await dataSource.manager.save(RewardCreated.build({ title: 'Signed poster' }));
  const created = await CreateSubscription.call({ userId: user.aggregateId, rewardId: reward.aggregateId });
  subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created!.aggregateId });
  activated = (await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123', metadata: { notificationId: 33456 } }))!;
  await runReactors(es, { relay: true, timeout: 30_000 });
  served = await serve(createEventBrowser(es));
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  const context = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  mkdirSync(artifacts, { recursive: true });
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await es?.queue.obliterate({ force: true }).catch(() => undefined);
  await es?.close();
  await dataSource?.destroy();
});

test('the subscription page shows the activation\'s diff; its event page shows the reactor jobs; without JavaScript', async () => {
  const response = await page.goto(`${served.url}/aggregates/Subscription/${subscription.id}`);
  expect(response!.status()).toBe(200);
  expect(await page.locator('h1').innerText()).toBe(`Subscription ${subscription.id}`);
  expect(await page.locator('main > p').nth(1).innerText()).toBe('Verified: the row equals the replay of its 2 events.');
  const activation = page.locator('#v2');
  const diff = await activation.locator('ul.diff li').allInnerTexts();
  expect(diff).toEqual(['status: "pending" → "active"', 'stripeKey: null → "sub_66123"', `activatedAt: null → ${activated.createdAt.toISOString()}`]);
  // <details> opens without a script.
  await activation.locator('summary').click();
  expect(await activation.locator('details table').innerText()).toContain('status\t"active"');
  await page.screenshot({ path: path.join(artifacts, 'aggregate-page.png') });

  await activation.locator(`a[href$="/events/subscription_events/${activated.id}"]`).click();
  await page.waitForURL(`${served.url}/events/subscription_events/${activated.id}`);
  expect(await page.locator('h1').innerText()).toBe(`Subscription.Activated subscription_events/${activated.id}`);
  const jobs = page.locator('h2:text-is("Reactor jobs") + table tbody tr');
  expect(await jobs.count()).toBe(2);
  const rows = await jobs.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 3).map((td) => td.textContent)));
  expect(rows).toEqual([
    ['SubscriptionConfirmation', 'completed', '1'],
    ['NewSubscriberNotification', 'completed', '1'],
  ]);
  // The trigger reactor's event, in the same transaction, is in the activation's correlation.
  expect(await page.locator('ul.tree').innerText()).toMatch(/reward_events\/\d+ Reward\.SubscribersRecounted Reward \d+ v2 \S+ \(trigger\)/);
  await page.screenshot({ path: path.join(artifacts, 'event-page.png'), fullPage: true });

  // The feed's filter form is a GET form: it works without a script too.
  await page.goto(`${served.url}/feed`);
  await page.fill('input[name="type"]', 'Subscription.Activated');
  await page.click('form.filters button');
  await page.waitForURL(/\/feed\?type=Subscription.Activated/);
  expect(await page.locator('main table tbody tr').count()).toBe(1);
});
