import { validate as validateRules } from 'class-validator';
import type { ObjectLiteral } from 'typeorm';
import { ConcurrencyError } from '../errors/concurrency-error';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { assertObjectArgument } from '../errors/usage-error';
import { ValidationError, type AttributeIssue } from '../errors/validation-error';
import { attachedTo } from '../event-sourcing';
import { AggregateEvent } from '../events/aggregate-event';
import { assertExpectedVersion } from '../events/expected-version';
import { pendingWriteOf } from '../events/pending-write';
import { copyStoredState } from '../aggregates/stored-state';
import { getMetadataStorage, type AttributeRecord } from '../metadata/metadata-storage';
import { instrumentationOf } from '../observability/instrumentation';
import type { Command, CommandCallOptions, CommandEvents } from './command';

function addIssue(issues: AttributeIssue[], attribute: string, constraints: Record<string, string>): void {
  const issue = issues.find((existing) => existing.attribute === attribute);
  if (issue) Object.assign(issue.constraints, constraints);
  else issues.push({ attribute, constraints: { ...constraints } });
}

/** Assigns declared attributes; unknown ones, missing aggregates and class-validator rules become issues. */
async function assignAndValidate(command: Command<any>, name: string, records: AttributeRecord[], attributes: Record<string, unknown>): Promise<void> {
  const issues: AttributeIssue[] = [];
  const declared = new Set(records.map((record) => record.propertyName));
  const target = command as unknown as Record<string, unknown>;
  for (const key of Object.keys(attributes)) {
    if (declared.has(key)) target[key] = attributes[key];
    else addIssue(issues, key, { unknownAttribute: `${key} is not an attribute of ${name}` });
  }
  const storage = getMetadataStorage();
  for (const record of records) {
    if (!storage.isAggregate(record.designType)) continue;
    const type = record.designType as Function;
    const value = target[record.propertyName];
    if (value === undefined || value === null) {
      if (!record.optional) addIssue(issues, record.propertyName, { isDefined: `${record.propertyName} must be a ${type.name}` });
    } else if (!(value instanceof type)) {
      addIssue(issues, record.propertyName, { isInstance: `${record.propertyName} must be a ${type.name}` });
    }
  }
  // Unknown attributes are rejected above; class-validator's own unknown-object check would
  // refuse commands that declare no rules at all.
  for (const error of await validateRules(command, { forbidUnknownValues: false })) {
    if (error.constraints) addIssue(issues, error.property, error.constraints);
  }
  if (issues.length > 0) throw new ValidationError(name, issues);
}

/** The events split into runs of consecutive events on the same aggregate instance. */
function runsOfOneAggregate(events: AggregateEvent[]): AggregateEvent[][] {
  const runs: AggregateEvent[][] = [];
  for (const event of events) {
    const last = runs[runs.length - 1];
    const aggregate = pendingWriteOf(event).aggregate;
    if (last && aggregate !== undefined && pendingWriteOf(last[0]).aggregate === aggregate) last.push(event);
    else runs.push([event]);
  }
  return runs;
}

/**
 * The command pipeline (see `Command`): validate, skip no-ops, build, write with the loaded
 * versions as expected versions, and on a conflict reload and start over.
 */
export async function runCommand(
  CommandClass: new (...args: any[]) => Command<any>,
  attributes: Record<string, unknown>,
  options: CommandCallOptions,
): Promise<CommandEvents | null> {
  const name = CommandClass.name;
  assertObjectArgument(`${name}.call`, 'options', options);
  assertObjectArgument(`${name}.call`, 'attributes', attributes);
  assertExpectedVersion(`${name}.call`, options.expectedVersion);
  const attached = attachedTo(options.manager);
  return instrumentationOf(attached.internals.dataSource).span(`es.command ${name}`, { 'typeorm_es.command': name }, async (span) => {
    let retried = 0;
    try {
      const result = await execute(CommandClass, attributes, options, attached, () => (retried += 1));
      const written = result === null ? 0 : Array.isArray(result) ? result.length : 1;
      span.setAttributes({ 'typeorm_es.command.outcome': written === 0 ? 'noop' : 'written', 'typeorm_es.command.retries': retried, 'typeorm_es.events': written });
      return result;
    } catch (error) {
      const outcome = error instanceof ValidationError ? 'invalid' : error instanceof ConcurrencyError ? 'conflict' : 'error';
      span.setAttributes({ 'typeorm_es.command.outcome': outcome, 'typeorm_es.command.retries': retried });
      throw error;
    }
  });
}

/** One command call, retried on conflicts; `retrying` hears of each retry. */
async function execute(
  CommandClass: new (...args: any[]) => Command<any>,
  attributes: Record<string, unknown>,
  options: CommandCallOptions,
  { es, internals }: ReturnType<typeof attachedTo>,
  retrying: () => void,
): Promise<CommandEvents | null> {
  const name = CommandClass.name;
  const storage = getMetadataStorage();
  const records = storage.attributesOf(CommandClass);
  const command = await internals.newCommand(CommandClass);
  await assignAndValidate(command, name, records, attributes);

  const aggregates = records
    .filter((record) => storage.isAggregate(record.designType))
    .map((record) => (command as unknown as Record<string, ObjectLiteral | undefined>)[record.propertyName])
    .filter((aggregate): aggregate is ObjectLiteral => aggregate !== undefined && aggregate !== null);
  const manager = options.manager ?? internals.currentManager() ?? internals.dataSource.manager;
  // Inside a caller's transaction a conflict is the caller's to retry: the rows it read are stale too.
  const ownTransaction = !manager.queryRunner?.isTransactionActive;
  let retries = options.expectedVersion === undefined && ownTransaction ? (options.retries ?? 3) : 0;

  for (;;) {
    const loadedVersions = new Map(aggregates.map((aggregate) => [aggregate, internals.registry.aggregate(aggregate.constructor).versionOf(aggregate)]));
    const issues = await command.collectIssues();
    if (issues.length > 0) throw new ValidationError(name, issues);
    if (await command.noop()) return null;
    const built = await command.buildEvent();
    if (Array.isArray(built) && built.length === 0) return null;
    const events: unknown[] = Array.isArray(built) ? built : [built];
    const expecting = new Set<ObjectLiteral>();
    for (const event of events) {
      if (!(event instanceof AggregateEvent)) {
        throw new EventSourcingConfigError(`${name}.buildEvent must return an event built with Event.build (or an array of them)`);
      }
      const pending = pendingWriteOf(event);
      const aggregate = pending.aggregate as ObjectLiteral | undefined;
      // Only the first event of an aggregate needs an expected version: the rest follow it under the lock.
      if (!aggregate || !loadedVersions.has(aggregate) || expecting.has(aggregate) || pending.expectedVersion !== undefined) continue;
      expecting.add(aggregate);
      pending.expectedVersion = aggregate === aggregates[0] && options.expectedVersion !== undefined ? options.expectedVersion : loadedVersions.get(aggregate);
    }
    // Without an aggregate instance among the attributes, the command's aggregate is the one its
    // first event writes (for an event that creates its aggregate, the expected version must be 0).
    if (options.expectedVersion !== undefined && aggregates.length === 0 && events.length > 0) {
      pendingWriteOf(events[0] as AggregateEvent).expectedVersion ??= options.expectedVersion;
    }
    try {
      // An array, even of one event, comes back as an array: the type the command declared.
      if (!Array.isArray(built)) return await es.append(built as AggregateEvent, { manager });
      const saved = await manager.transaction(async (transaction) => {
        const written: AggregateEvent[] = [];
        // Consecutive events of one aggregate in one statement where the fast path can, else one
        // at a time (one statement each on the fast path), all in this transaction.
        for (const run of runsOfOneAggregate(events as AggregateEvent[])) {
          if (run.length > 1 && (await internals.appendMany(run, transaction))) written.push(...run);
          else for (const event of run) written.push(await es.append(event, { manager: transaction }));
        }
        return written;
      });
      return saved;
    } catch (error) {
      if (!(error instanceof ConcurrencyError) || retries <= 0) throw error;
      retries -= 1;
      retrying();
      for (const aggregate of aggregates) {
        const definition = internals.registry.aggregate(aggregate.constructor);
        const fresh = await internals.dataSource.manager
          .createQueryBuilder(definition.target, 'aggregate')
          .whereInIds([definition.idOf(aggregate)])
          .getOne();
        if (fresh) {
          definition.copyColumns(fresh, aggregate);
          copyStoredState(fresh, aggregate);
        }
      }
    }
  }
}
