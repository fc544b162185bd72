import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, sourcedValues, type DirectWritesMode } from 'typeorm-event-sourcing';

/** One aggregate per directWrites mode, alike otherwise: `label` is sourced, `views` excluded. */
function guardedModel(mode: DirectWritesMode) {
  const name = `Guarded${mode[0].toUpperCase()}${mode.slice(1)}`;
  @Aggregate({ directWrites: mode, exclude: ['views'], baseline: (row: Guarded) => Imported.build({ aggregate: row, ...sourcedValues(row) }) })
  @Entity(`guarded_${mode}`)
  class Guarded {
    @PrimaryGeneratedColumn() id!: number;
    @Column({ type: 'varchar', default: 'new' }) label!: string;
    @Column({ type: 'jsonb', nullable: true }) extra!: Record<string, unknown> | null;
    @Column({ type: 'int', default: 0 }) views!: number;
    @AggregateVersion() version!: number;
  }
  Object.defineProperty(Guarded, 'name', { value: name });

  @EventsOf(() => Guarded)
  abstract class GuardedEvent extends AggregateEvent<Guarded> {}
  Object.defineProperty(GuardedEvent, 'name', { value: `${name}Event` });

  @EventType(`${name}.Created`, { creates: true })
  class Created extends GuardedEvent {
    @Data() label!: string;
    apply(row: Guarded) {
      row.label = this.label;
      return row;
    }
  }
  @EventType(`${name}.Imported`, { creates: true })
  class Imported extends GuardedEvent {
    @Data() label!: string;
    @Data({ type: () => Object }) extra!: Record<string, unknown> | null;
    apply(row: Guarded) {
      row.label = this.label;
      row.extra = this.extra;
      return row;
    }
  }
  @EventType(`${name}.Relabelled`)
  class Relabelled extends GuardedEvent {
    @Data() label!: string;
    apply(row: Guarded) {
      row.label = this.label;
      return row;
    }
  }
  return { Guarded, GuardedEvent, Created, Imported, Relabelled, entities: [Guarded, GuardedEvent, Created, Imported, Relabelled] };
}

export const allowModel = guardedModel('allow');
export const warnModel = guardedModel('warn');
export const rejectModel = guardedModel('reject');
export const guardedEntities = [...allowModel.entities, ...warnModel.entities, ...rejectModel.entities];
