// Misuse of the Nest integration, caught when the module is defined (at decoration and in
// forFeature), before any application starts; run by nestjs-errors.test.ts. Prints one JSON line.
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { EventSourcingConfigError, EventSourcingError, UsageError } from '../../src';
import { EventSourcingModule, Reactor } from '../../src/nestjs';
import { SubscriptionCreated } from './model';

@Entity()
class NotAnAggregate {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar' }) name!: string;
}

function caught(attempt: () => unknown): Record<string, unknown> {
  try {
    attempt();
    return { threw: false };
  } catch (error) {
    const e = error as EventSourcingError;
    return {
      usage: error instanceof UsageError,
      config: error instanceof EventSourcingConfigError,
      code: e.code,
      message: e.message,
    };
  }
}

const neither = caught(() => {
  @Reactor(SubscriptionCreated, {} as never)
  @Injectable()
  class NeitherAsyncNorTrigger {
    call(): void {}
  }
  return NeitherAsyncNorTrigger;
});
const both = caught(() => Reactor(SubscriptionCreated, { async: true, trigger: true } as never));
const noEvents = caught(() => {
  @Reactor([], { async: true })
  @Injectable()
  class NoEvents {
    call(): void {}
  }
  return NoEvents;
});
const notAggregate = caught(() => EventSourcingModule.forFeature([NotAnAggregate]));
const noFactory = caught(() => EventSourcingModule.forRootAsync({} as never));

console.log(JSON.stringify({ neither, both, noEvents, notAggregate, noFactory }));
