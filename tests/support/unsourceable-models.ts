import 'reflect-metadata';
import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn, VersionColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType } from 'typeorm-event-sourcing';

/** Two primary columns: an events row could not point at it with one foreign key. */
@Aggregate()
@Entity('two_keys')
export class TwoKeys {
  @PrimaryColumn({ type: 'int' }) tenant!: number;
  @PrimaryColumn({ type: 'int' }) id!: number;
  @AggregateVersion() version!: number;
}
@EventsOf(() => TwoKeys, { foreignKey: 'two_keys_id' })
export abstract class TwoKeysEvent extends AggregateEvent<TwoKeys, 'twoKeys'> {}
@EventType('TwoKeys.Made', { creates: true })
export class TwoKeysMade extends TwoKeysEvent {
  apply(row: TwoKeys): TwoKeys {
    return row;
  }
}
export const compositeEntities = [TwoKeys, TwoKeysEvent, TwoKeysMade];

/** TypeORM's optimistic-lock column next to the aggregate version. */
@Aggregate()
@Entity('locked')
export class Locked {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', default: '' }) name!: string;
  @VersionColumn() lockVersion!: number;
  @AggregateVersion() version!: number;
}
@EventsOf(() => Locked)
export abstract class LockedEvent extends AggregateEvent<Locked, 'locked'> {}
@EventType('Locked.Named', { creates: true })
export class LockedNamed extends LockedEvent {
  @Data() name!: string;
  apply(row: Locked): Locked {
    row.name = this.name;
    return row;
  }
}
export const versionColumnEntities = [Locked, LockedEvent, LockedNamed];
