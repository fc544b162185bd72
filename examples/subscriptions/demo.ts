import 'reflect-metadata';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { ensureServices } from '../../scripts/ensure-services';
import { entities, Subscription, SubscriptionActivated, SubscriptionCancelled, SubscriptionCreated } from './model';
import { table } from './table';

/** The demo's own database on the server DATABASE_URL names, created on first run. */
async function demoDatabaseUrl(serverUrl: string): Promise<string> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', ['es_demo']);
    if (!rowCount) await client.query('CREATE DATABASE es_demo');
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = '/es_demo';
  return url.toString();
}

async function main(): Promise<void> {
  const { databaseUrl } = ensureServices();
  const url = await demoDatabaseUrl(databaseUrl);
  // #region attach
  const dataSource = new DataSource({ type: 'postgres', url, entities, synchronize: true });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource); // synchronize also creates the triggers and sequence
  // #endregion attach
  try {
    // Creating an event creates the aggregate: event and row are written in one transaction.
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1, metadata: { source: 'demo' } }));
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
    console.log(`Created subscription ${subscription.id} (status ${subscription.status}, version ${subscription.version})`);

    await dataSource.manager.save(
      SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123', metadata: { notificationId: 33456 } }),
    );
    console.log(`Activated: status ${subscription.status}, version ${subscription.version}`);
    const activatedAt = subscription.activatedAt!;

    await new Promise((resolve) => setTimeout(resolve, 5));
    await dataSource.manager.save(SubscriptionCancelled.build({ subscription, reason: 'too expensive' }));
    console.log(`Cancelled: status ${subscription.status}, version ${subscription.version}`);

    console.log('\nHistory (audit log):');
    const history = await es.history(Subscription, subscription.id);
    console.log(
      table(history.map((event) => ({ version: event.version, type: event.type, data: event.data, metadata: event.metadata, createdAt: event.createdAt }))),
    );

    const then = await es.stateAt(Subscription, subscription.id, { at: activatedAt });
    console.log(`\nTime machine: at ${activatedAt.toISOString()} the subscription was ${then?.status} (version ${then?.version})`);

    await dataSource.query(`UPDATE subscription SET status = 'hacked' WHERE id = $1`, [subscription.id]);
    const mismatches = await es.verify(Subscription, { id: subscription.id });
    console.log(`\nVerify after tampering with the row: ${mismatches.map((m) => `${m.column} is '${m.stored}', events say '${m.replayed}'`).join('; ')}`);
    await es.rebuild(Subscription, subscription.id);
    const after = await es.verify(Subscription, { id: subscription.id });
    console.log(`Rebuild replayed the events into the row; verify now reports ${after.length} differences.`);
  } finally {
    await es.close();
    await dataSource.destroy();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
