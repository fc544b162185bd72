import { libraryObject, OUTBOX_TABLE } from '../../schema/event-sourcing-schema';
import { aggregatesOf } from '../aggregates';
import type { CommandRun } from '../command-run';
import { table } from '../output';
import { JOB_STATES } from '../queue';
import { tableSql } from '../../schema/table-sql';

/** `stats`: events per table, type and schema version, the outbox backlog, and the queue's jobs by state. */
export async function stats(run: CommandRun): Promise<number> {
  const queue = await run.reachQueue();
  const dataSource = run.es.dataSource;
  const driver = dataSource.driver;
  const events: { table: string; type: string; schemaVersion: number; count: number }[] = [];
  for (const aggregate of aggregatesOf(dataSource)) {
    const { schema, tableName, discriminatorColumn } = aggregate.eventsMetadata;
    const path = tableSql(driver, { schema, tableName });
    const type = driver.escape(discriminatorColumn?.databaseName ?? 'type');
    const schemaVersion = driver.escape(aggregate.eventsMetadata.findColumnWithPropertyName('schemaVersion')!.databaseName);
    const rows: { type: string; schemaVersion: number; count: number }[] = await dataSource.query(
      `SELECT ${type} AS type, ${schemaVersion} AS "schemaVersion", count(*)::float8 AS count FROM ${path} GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    for (const row of rows) events.push({ table: tableName, type: row.type, schemaVersion: row.schemaVersion, count: row.count });
  }
  const [outboxRow]: { pending: number; enqueued: number; oldest: number | null }[] = await dataSource.query(
    `SELECT count(*) FILTER (WHERE enqueued_at IS NULL)::float8 AS pending,
            count(*) FILTER (WHERE enqueued_at IS NOT NULL)::float8 AS enqueued,
            extract(epoch FROM clock_timestamp() - min(created_at) FILTER (WHERE enqueued_at IS NULL))::float8 AS oldest
     FROM ${libraryObject(driver, OUTBOX_TABLE)}`,
  );
  const outbox = {
    // Rows whose job is not in the queue yet: what the relay still has to hand over.
    pending: outboxRow.pending,
    oldestPendingSeconds: outboxRow.oldest === null ? null : Math.round(outboxRow.oldest * 10) / 10,
    // With keepOutboxUntil 'completed': jobs in the queue whose row waits for their completion.
    enqueued: outboxRow.enqueued,
  };
  const jobs = queue ? { name: queue.name, counts: await queue.getJobCounts(...JOB_STATES) } : null;
  if (run.json) {
    run.printJson({ events, outbox, queue: jobs });
    return 0;
  }
  const total = events.reduce((sum, row) => sum + row.count, 0);
  run.print(`events: ${total}`);
  if (events.length > 0) {
    run.print(table(['table', 'type', 'schema version', 'count'], events.map((row) => [row.table, row.type, String(row.schemaVersion), String(row.count)])));
  }
  run.print('');
  const oldest = outbox.oldestPendingSeconds === null ? '' : `, oldest ${outbox.oldestPendingSeconds} s old`;
  run.print(`outbox: ${outbox.pending} pending${oldest}; ${outbox.enqueued} enqueued awaiting completion`);
  run.print('');
  if (!jobs) run.print('queue: none configured (no eventSourcing.queue)');
  else {
    run.print(`queue ${jobs.name}:`);
    run.print(table(['state', 'jobs'], JOB_STATES.map((state) => [state, String(jobs.counts[state] ?? 0)])));
  }
  return 0;
}
