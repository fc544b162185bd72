import type { AggregateClass } from '../../event-sourcing';
import { findAggregate } from '../aggregates';
import type { CommandRun } from '../command-run';
import { CliError } from '../errors';

/** `baseline <Aggregate> [--batch-size <n>]`: writes the first event of every row that has none. */
export async function baseline(run: CommandRun, aggregateName: string, options: { batchSize?: number }): Promise<number> {
  const aggregate = findAggregate(run.es.dataSource, aggregateName);
  // The copy of the library the DataSource's project uses may predate es.baseline.
  if (typeof (run.es as Partial<typeof run.es>).baseline !== 'function') {
    throw new CliError('the typeorm-event-sourcing your DataSource uses has no es.baseline: upgrade it');
  }
  const progress = run.progress(`baseline ${aggregate.name}`);
  let result: { processed: number; baselined: number };
  try {
    result = await run.es.baseline(aggregate.target as AggregateClass<object>, {
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      onProgress: ({ processed, total }) => progress.update(processed, total),
    });
  } finally {
    progress.done();
  }
  if (run.json) run.printJson({ aggregate: aggregate.name, processed: result.processed, baselined: result.baselined });
  else run.print(`${aggregate.name}: ${result.processed} rows without events looked at, ${result.baselined} baselined`);
  return 0;
}
