// #region imports
import 'reflect-metadata';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Aggregate, AggregateEvent, AggregateVersion, Data, EventsOf, EventType, HasEvents } from 'typeorm-event-sourcing';
// #endregion imports

// #region reward
/** A reward backers subscribe to; its subscriber count is kept by a trigger reactor. */
@Aggregate()
@Entity()
export class Reward {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) title!: string;
  @Column({ type: 'int', default: 0 }) subscriberCount!: number;
  @AggregateVersion() version!: number;
  @HasEvents(() => RewardEvent) events!: RewardEvent[];
}

@EventsOf(() => Reward)
export abstract class RewardEvent extends AggregateEvent<Reward, 'reward'> {}

@EventType('Reward.Created', { creates: true })
export class RewardCreated extends RewardEvent {
  @Data() title!: string;
  apply(reward: Reward): Reward {
    reward.title = this.title;
    return reward;
  }
}

@EventType('Reward.SubscribersRecounted')
export class RewardSubscribersRecounted extends RewardEvent {
  @Data() count!: number;
  apply(reward: Reward): Reward {
    reward.subscriberCount = this.count;
    return reward;
  }
}

// #endregion reward

export const rewardEntities = [Reward, RewardEvent, RewardCreated, RewardSubscribersRecounted];
