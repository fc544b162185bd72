import type { AggregateClass } from '../../event-sourcing';
import { findAggregate, parseId } from '../aggregates';
import type { CommandRun } from '../command-run';
import { columnValues, properties } from '../output';

/** `rebuild <Aggregate> [--id <id>]`: replays events into one row, or into every row in batches. */
export async function rebuild(run: CommandRun, aggregateName: string, options: { id?: string }): Promise<number> {
  const aggregate = findAggregate(run.es.dataSource, aggregateName);
  const target = aggregate.target as AggregateClass<object>;
  if (options.id !== undefined) {
    const id = parseId(aggregate, options.id);
    const row = await run.es.rebuild(target, id);
    const values = columnValues(aggregate.metadata, row);
    if (run.json) run.printJson({ aggregate: aggregate.name, id, state: values });
    else {
      run.print(`${aggregate.name} ${options.id}: rebuilt from its events`);
      run.print(properties(values));
    }
    return 0;
  }
  const progress = run.progress(`rebuild ${aggregate.name}`);
  let result;
  try {
    result = await run.es.rebuildAll(target, { onProgress: ({ processed, total }) => progress.update(processed, total) });
  } finally {
    progress.done();
  }
  if (run.json) run.printJson({ aggregate: aggregate.name, ...result });
  else run.print(`${aggregate.name}: ${result.processed} rows replayed, ${result.rebuilt} changed`);
  return 0;
}
