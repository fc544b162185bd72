// #region imports
import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, HasEvents } from 'typeorm-event-sourcing';
// #endregion imports

/** A backer. */
@Aggregate()
@Entity()
export class User {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) email!: string;
  @Column({ type: 'varchar' }) name!: string;
  @AggregateVersion() version!: number;
  @HasEvents(() => UserEvent) events!: UserEvent[];
}

@EventsOf(() => User)
export abstract class UserEvent extends AggregateEvent<User, 'user'> {}

@EventType('User.Registered', { creates: true })
export class UserRegistered extends UserEvent {
  @Data() email!: string;
  @Data() name!: string;
  apply(user: User): User {
    user.email = this.email;
    user.name = this.name;
    return user;
  }
}

export const userEntities = [User, UserEvent, UserRegistered];
