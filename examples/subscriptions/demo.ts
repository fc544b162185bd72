import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ValidationError } from 'typeorm-event-sourcing';
import { createEventBrowser } from 'typeorm-event-sourcing/browser';
import { waitForReactors } from 'typeorm-event-sourcing/testing';
import { ActivateSubscription, CancelSubscription, CreateSubscription } from './commands';
import { demoEventSourcing } from './demo-data-source';
import { Subscription } from './model';
import { Reward, RewardCreated } from './reward';
import { SentMail } from './sent-mail';
import { UserRegistered } from './user';
import { table } from './table';

const step = (text: string) => console.log(`\n== ${text}`);

async function main(): Promise<void> {
  const { dataSource, es } = await demoEventSourcing();
  try {
    step('A backer subscribes to a reward');
    const user = await dataSource.manager.save(UserRegistered.build({ email: 'ada@example.com', name: 'Ada' }));
    const reward = await dataSource.manager.save(RewardCreated.build({ title: 'Signed poster' }));
    const created = await CreateSubscription.call({ userId: user.aggregateId, rewardId: reward.aggregateId });
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created!.aggregateId });
    console.log(`CreateSubscription      -> ${created!.type}, subscription ${subscription.id} is ${subscription.status} (version ${subscription.version})`);

    const activated = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123', metadata: { notificationId: 33456 } });
    console.log(`ActivateSubscription    -> ${activated!.type}, status ${subscription.status} (version ${subscription.version})`);

    const again = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' });
    console.log(`ActivateSubscription    -> ${again === null ? 'no-op, nothing written' : again.type} (version ${subscription.version})`);

    try {
      await ActivateSubscription.call({ subscription, stripeKey: '' });
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      console.log(`ActivateSubscription    -> ValidationError: ${error.message}`);
    }

    const rewardNow = await dataSource.manager.findOneByOrFail(Reward, { id: reward.aggregateId });
    console.log(`Trigger reactor         -> reward "${rewardNow.title}" has ${rewardNow.subscriberCount} subscriber(s), in the same transaction`);

    step('Async reactors run in a BullMQ worker after commit');
    es.worker({ concurrency: 2 });
    await waitForReactors(es, { timeout: 30_000 });
    const mails = await dataSource.manager.find(SentMail, { where: { eventId: activated!.id }, order: { reactor: 'ASC' } });
    console.log(table(mails.map((mail) => ({ reactor: mail.reactor, to: mail.recipient, subject: mail.subject }))));

    await new Promise((resolve) => setTimeout(resolve, 5));
    await CancelSubscription.call({ subscription, reason: 'too expensive' });
    console.log(`\nCancelSubscription      -> status ${subscription.status} (version ${subscription.version})`);

    step(`History of subscription ${subscription.id} (the audit log)`);
    const history = await es.history(Subscription, subscription.id);
    console.log(
      table(history.map((event) => ({ version: event.version, type: event.type, data: event.data, metadata: event.metadata, createdAt: event.createdAt }))),
    );

    step('Time machine');
    const then = await es.stateAt(Subscription, subscription.id, { at: activated!.createdAt });
    console.log(`At ${activated!.createdAt.toISOString()} the subscription was ${then?.status} (version ${then?.version}); now it is ${subscription.status}.`);

    step('Verify and rebuild');
    await dataSource.query(`UPDATE subscription SET status = 'hacked' WHERE id = $1`, [subscription.id]);
    const mismatches = await es.verify(Subscription, { id: subscription.id });
    console.log('After tampering with the row, verify reports:');
    console.log(table(mismatches.map((m) => ({ id: m.id, column: m.column, stored: m.stored, replayed: m.replayed }))));
    await es.rebuild(Subscription, subscription.id);
    const after = await es.verify(Subscription, { id: subscription.id });
    console.log(`Rebuild replayed the events into the row; verify now reports ${after.length} differences.`);

    step('Event browser');
    // Loopback only, read-only: DEMO_BROWSER_PORT fixes the port, else a free one is taken.
    const server = createServer(createEventBrowser(es));
    await new Promise<void>((resolve) => server.listen(Number(process.env.DEMO_BROWSER_PORT ?? 0), '127.0.0.1', resolve));
    const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}/aggregates/Subscription/${subscription.id}`;
    try {
      if (process.argv.includes('--browse')) {
        console.log(`Event browser: ${address} (Ctrl-C to stop)`);
        await new Promise((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
      } else {
        console.log(`Event browser: ${address} (npm run demo -- --browse keeps it open)`);
      }
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  } finally {
    await es.close();
    await dataSource.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
