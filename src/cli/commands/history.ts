import type { AggregateClass } from '../../event-sourcing';
import { findAggregate, parseId } from '../aggregates';
import type { CommandRun } from '../command-run';
import { cell, eventJson, table } from '../output';

/** `history <Aggregate> <id>`: the aggregate's events in version order. */
export async function history(run: CommandRun, aggregateName: string, idText: string): Promise<number> {
  const aggregate = findAggregate(run.es.dataSource, aggregateName);
  const id = parseId(aggregate, idText);
  const events = (await run.es.history(aggregate.target as AggregateClass<object>, id)).map((event) =>
    eventJson(aggregate.eventsMetadata.tableName, event),
  );
  if (run.json) {
    run.printJson({ aggregate: aggregate.name, id, events });
    return 0;
  }
  run.print(`${aggregate.name} ${idText}: ${events.length} event${events.length === 1 ? '' : 's'}`);
  if (events.length > 0) {
    run.print(
      table(
        ['version', 'type', 'created at', 'data', 'metadata'],
        events.map((event) => [String(event.version), event.type, event.createdAt, cell(event.data), cell(event.metadata)]),
      ),
    );
  }
  return 0;
}
