import type { DataSource, EntityMetadata } from 'typeorm';
import { AggregateDefinition } from '../aggregates/aggregate-definition';
import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { getMetadataStorage } from './metadata-storage';

// The definition of each aggregate class in the DataSource attached last, for helpers that get
// only an entity (sourcedValues); sourced columns are the same in every DataSource of a class.
const latestDefinitions = new WeakMap<Function, AggregateDefinition>();

/** The definition of an aggregate class in the DataSource attached last, if any. */
export function latestDefinitionOf(target: Function): AggregateDefinition | undefined {
  return latestDefinitions.get(target);
}

/**
 * The decorated classes of one DataSource, resolved against its entity metadata when
 * `EventSourcing.attach` runs. Mismatches fail here, at start-up, with a message saying what to fix.
 */
export class EventSourcingRegistry {
  readonly #byAggregate = new Map<Function, AggregateDefinition>();
  readonly #byEventsTable = new Map<EntityMetadata, AggregateDefinition>();

  constructor(dataSource: DataSource) {
    const storage = getMetadataStorage();
    const claimedTypes = new Map<string, Function>();
    for (const eventsMetadata of dataSource.entityMetadatas) {
      const eventsOf = storage.eventsOf.find((record) => record.target === eventsMetadata.target);
      if (!eventsOf) continue;
      const aggregateTarget = eventsOf.aggregate();
      const eventsName = (eventsMetadata.target as Function).name;
      if (!dataSource.hasMetadata(aggregateTarget)) {
        throw new EventSourcingConfigError(`${eventsName} are events of ${aggregateTarget.name}, which is not an entity of this DataSource: add it to entities`);
      }
      const metadata = dataSource.getMetadata(aggregateTarget);
      const aggregate = storage.aggregates.find((record) => record.target === aggregateTarget);
      if (!aggregate) {
        throw new EventSourcingConfigError(`${aggregateTarget.name} has events (${eventsName}) but is not decorated with @Aggregate()`);
      }
      const version = storage.aggregateVersions.find((record) => record.target === aggregateTarget);
      if (!version) {
        throw new EventSourcingConfigError(`${aggregateTarget.name} needs an @AggregateVersion() property`);
      }
      if (metadata.primaryColumns.length !== 1) {
        throw new EventSourcingConfigError(
          `${aggregateTarget.name} must have exactly one primary column to have events (it has ${metadata.primaryColumns.length}: ${metadata.primaryColumns
            .map((column) => column.propertyName)
            .join(', ')}): each events table row points at its aggregate with one foreign key column`,
        );
      }
      for (const property of aggregate.exclude) {
        if (!metadata.findColumnWithPropertyName(property)) {
          throw new EventSourcingConfigError(`@Aggregate({ exclude }) of ${aggregateTarget.name} names '${property}', which is not a column`);
        }
      }
      for (const child of eventsMetadata.childEntityMetadatas) {
        const target = child.target as Function;
        const types = storage.eventTypeOf(target) ? storage.storedNamesOf(target) : child.discriminatorValue ? [child.discriminatorValue] : [];
        for (const type of types) {
          const other = claimedTypes.get(type);
          if (other && other !== target) {
            throw new EventSourcingConfigError(`event type '${type}' is claimed by both ${other.name} and ${target.name} (as a name or an alias)`);
          }
          claimedTypes.set(type, target);
        }
      }
      const listed = new Set(eventsMetadata.childEntityMetadatas.map((child) => child.target));
      const unlisted = storage.eventTypes.filter((record) => !listed.has(record.target) && storage.eventsOfFor(record.target)?.target === eventsMetadata.target);
      if (unlisted.length > 0) {
        throw new EventSourcingConfigError(
          `${unlisted.map((record) => `${record.target.name} ('${record.name}')`).join(', ')} extend${unlisted.length === 1 ? 's' : ''} ${eventsName} but ${
            unlisted.length === 1 ? 'is' : 'are'
          } not in the DataSource's entities: list every event class there, or TypeORM can neither save nor load ${unlisted.length === 1 ? 'it' : 'them'}`,
        );
      }
      const versionColumn = metadata.columns.find((column) => column.isVersion);
      if (versionColumn) {
        throw new EventSourcingConfigError(
          `${aggregateTarget.name}.${versionColumn.propertyName} is a @VersionColumn: TypeORM raises it on every save(), while an aggregate's version counts its events; replace it with @AggregateVersion() or remove it`,
        );
      }
      loadAliasesAs(eventsMetadata);
      const definition = new AggregateDefinition(metadata, eventsMetadata, version.propertyName, aggregate);
      this.#byAggregate.set(aggregateTarget, definition);
      latestDefinitions.set(aggregateTarget, definition);
      this.#byEventsTable.set(eventsMetadata, definition);
    }
  }

  /** The definition of an aggregate class, or an error naming it. */
  aggregate(target: Function): AggregateDefinition {
    const definition = this.#byAggregate.get(target);
    if (!definition) {
      throw new EventSourcingConfigError(`${target.name} is not an aggregate with events in this DataSource`);
    }
    return definition;
  }

  /** The definition owning an events table, for the metadata of the table or of any event class in it. */
  forEventsMetadata(metadata: EntityMetadata): AggregateDefinition | undefined {
    return this.#byEventsTable.get(metadata) ?? (metadata.parentEntityMetadata ? this.#byEventsTable.get(metadata.parentEntityMetadata) : undefined);
  }

  /** The definition owning an events table, by table name. */
  forEventsTable(table: string): AggregateDefinition | undefined {
    return [...this.#byEventsTable.values()].find((definition) => definition.eventsMetadata.tableName === table);
  }

  /** The definition of an aggregate's entity metadata, if it is one. */
  forAggregateMetadata(metadata: EntityMetadata): AggregateDefinition | undefined {
    return this.#byAggregate.get(metadata.target as Function);
  }

  get definitions(): AggregateDefinition[] {
    return [...this.#byAggregate.values()];
  }
}

/**
 * Makes rows stored under an event type's aliases load as its class through the events base
 * class (TypeORM's `find`, relations, the library's readers): TypeORM picks the class of a row by
 * the one discriminator value of each child's metadata, so each alias gets a view of the child's
 * metadata with the alias as its value. Only the base class's list gets them: in a child's own
 * list they would hide the child's columns, so a query of the child class itself
 * (`getRepository(SubscriptionActivated)`) still selects only rows of its current name.
 */
function loadAliasesAs(eventsMetadata: EntityMetadata): void {
  const storage = getMetadataStorage();
  for (const child of [...eventsMetadata.childEntityMetadatas]) {
    for (const alias of storage.eventTypeOf(child.target as Function)?.aliases ?? []) {
      if (eventsMetadata.childEntityMetadatas.some((other) => other.discriminatorValue === alias)) continue;
      const view: EntityMetadata = Object.create(child);
      Object.defineProperty(view, 'discriminatorValue', { value: alias, enumerable: true });
      eventsMetadata.childEntityMetadatas.push(view);
    }
  }
}
