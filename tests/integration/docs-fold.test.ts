import { EventSourcing } from 'typeorm-event-sourcing';
import { run as runFold } from '../../examples/docs/fold';
import { writeEarlierEvents } from '../../examples/docs/projections';
import { entities } from '../../examples/subscriptions/model';
import { testDataSource } from '../support/database';

test('one-off reports (docs/projections.md): es.fold by month and over one subscription', async () => {
  const dataSource = await testDataSource('docs_fold', entities);
  const es = await EventSourcing.attach(dataSource);
  try {
    await writeEarlierEvents(dataSource, es);
    const [{ month }] = await dataSource.query(`SELECT DISTINCT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month FROM subscription_events`);
    expect(await runFold(es, 2)).toEqual({ byMonth: { [month]: { activated: 3, cancelled: 1 } }, keys: ['sub_2'] });
  } finally {
    await es.close();
    await dataSource.destroy();
  }
});
