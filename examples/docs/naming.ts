// #region imports
import { DataSource, DefaultNamingStrategy, type NamingStrategyInterface } from 'typeorm';
import { EventSourcing } from 'typeorm-event-sourcing';
import { entities, Subscription, SubscriptionActivated, SubscriptionCreated } from '../subscriptions/model';
// #endregion imports

// #region naming-strategy
/** Property names in snake_case (`stripeKey` -> `stripe_key`); explicit column names stay as given. */
export class SnakeNamingStrategy extends DefaultNamingStrategy implements NamingStrategyInterface {
  columnName(propertyName: string, customName: string | undefined, embeddedPrefixes: string[]): string {
    const name = [...embeddedPrefixes, propertyName].join('_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
    return customName ?? name;
  }
}
// #endregion naming-strategy

/** docs/schema.md: the columns a project with a snake_case naming strategy gets. */
export async function run(url: string) {
  // #region snake-data-source
  const dataSource = new DataSource({ type: 'postgres', url, entities, synchronize: true, namingStrategy: new SnakeNamingStrategy() });
  // #endregion snake-data-source
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource);
  try {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
    await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_1' }));
    const columns = async (table: string) =>
      (
        await dataSource.query(`SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`, [table])
      ).map((row: { column_name: string }) => row.column_name);
    return {
      subscription: await columns('subscription'),
      subscriptionEvents: await columns('subscription_events'),
      stored: await dataSource.query(`SELECT stripe_key, activated_at IS NOT NULL AS activated FROM subscription`),
      mismatches: await es.verify(Subscription),
    };
  } finally {
    await es.close();
    await dataSource.destroy();
  }
}
