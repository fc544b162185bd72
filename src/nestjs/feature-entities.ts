import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import { getMetadataStorage } from '../metadata/metadata-storage';

/**
 * An aggregate's entities for TypeORM: the aggregate, its events class and every event class of
 * it, so that `autoLoadEntities` sees the whole single-table inheritance tree.
 *
 * @throws EventSourcingConfigError for a class that is not an `@Aggregate()` with an events class.
 */
export function featureEntities(aggregate: Function): Function[] {
  const storage = getMetadataStorage();
  if (!storage.isAggregate(aggregate)) {
    throw new EventSourcingConfigError(`EventSourcingModule.forFeature: ${aggregate?.name ?? String(aggregate)} is not an @Aggregate() class`);
  }
  const eventsClasses = storage.eventsOf.filter((record) => record.aggregate() === aggregate).map((record) => record.target);
  if (eventsClasses.length === 0) {
    throw new EventSourcingConfigError(`EventSourcingModule.forFeature: ${aggregate.name} has no events class (an abstract class with @EventsOf(() => ${aggregate.name}))`);
  }
  const eventClasses = storage.eventTypes
    .map((record) => record.target)
    .filter((target) => eventsClasses.some((base) => target.prototype instanceof base));
  return [aggregate, ...eventsClasses, ...eventClasses];
}
