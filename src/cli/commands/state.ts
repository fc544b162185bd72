import type { AggregateClass } from '../../event-sourcing';
import type { StateAtOptions } from '../../replay/state-at';
import { findAggregate, parseId } from '../aggregates';
import type { CommandRun } from '../command-run';
import { columnValues, properties } from '../output';

/** Options of `state`. */
export interface StateCommandOptions {
  at?: Date;
  version?: number;
}

/**
 * `state <Aggregate> <id> [--at <iso>] [--version <n>]`: the aggregate replayed from its events,
 * after a version, at a moment, or (neither given) after its last event.
 */
export async function state(run: CommandRun, aggregateName: string, idText: string, options: StateCommandOptions): Promise<number> {
  const aggregate = findAggregate(run.es.dataSource, aggregateName);
  const id = parseId(aggregate, idText);
  const target = aggregate.target as AggregateClass<object>;
  let moment: Record<string, unknown> = {};
  if (options.at !== undefined) moment.at = options.at;
  if (options.version !== undefined) moment.version = options.version;
  if (Object.keys(moment).length === 0) {
    // The latest state: replaying through the last version is what verify compares rows with.
    const events = await run.es.history(target, id);
    moment = events.length > 0 ? { version: events[events.length - 1].version } : { at: new Date() };
  }
  // Both given is the library's UsageError to report, as for any caller.
  const replayed = await run.es.stateAt(target, id, moment as StateAtOptions);
  const values = replayed ? columnValues(aggregate.metadata, replayed) : null;
  const version = replayed && aggregate.versionProperty ? (values?.[aggregate.versionProperty] ?? null) : null;
  const at = options.at?.toISOString();
  if (run.json) {
    run.printJson({ aggregate: aggregate.name, id, ...(at ? { at } : {}), ...(options.version !== undefined ? { atVersion: options.version } : {}), version: version ?? null, state: values });
    return 0;
  }
  const when = at ? ` at ${at}` : options.version !== undefined ? ` after version ${options.version}` : '';
  if (!values) {
    run.print(`${aggregate.name} ${idText}${when}: no events yet`);
    return 0;
  }
  run.print(`${aggregate.name} ${idText}${when}: version ${String(version)}, replayed from its events`);
  run.print(properties(values));
  return 0;
}

