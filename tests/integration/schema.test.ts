import { EventSourcing } from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import { subscriptionEntities } from '../support/subscription-model';

test('explore', async () => {
  const ds = await testDataSource('schema_explore', subscriptionEntities);
  const es = await EventSourcing.attach(ds);
  const log = await ds.driver.createSchemaBuilder().log();
  console.log(JSON.stringify(log.upQueries, null, 1));
  console.log(await ds.query(`select column_name, column_default from information_schema.columns where table_name='subscription_events'`));
  await es.close();
  await ds.destroy();
});
