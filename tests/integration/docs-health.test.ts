import { EventSourcing } from 'typeorm-event-sourcing';
import { run as runHealth } from '../../examples/docs/health';
import { entities } from '../../examples/subscriptions/model';
import { testDataSource } from '../support/database';

test('the health endpoint of docs/observability.md answers 200 with every part, as JSON', async () => {
  const dataSource = await testDataSource('docs_health', entities);
  const es = await EventSourcing.attach(dataSource);
  try {
    expect(await runHealth(es)).toEqual({
      code: 200,
      body: {
        status: 'ok',
        database: { status: 'ok', latencyMs: expect.any(Number) },
        queue: { status: 'ok', configured: false, latencyMs: null },
        outbox: { status: 'ok', pending: 0, oldestAgeMs: null },
        failedJobs: { status: 'ok', count: 0 },
      },
    });
  } finally {
    await es.close();
    await dataSource.destroy();
  }
});
