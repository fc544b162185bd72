import { SetMetadata } from '@nestjs/common';
import type { AggregateEvent } from '../events/aggregate-event';
import { UsageError } from '../errors/usage-error';

/** Where a `@Reactor` class runs: inside the event's transaction, or as a job after commit. */
export type ReactorProviderOptions =
  | {
      /** Run as a BullMQ job after the outermost commit, at least once. */
      async: true;
      /**
       * How many times the job runs before it stays failed.
       * @defaultValue the queue's `attempts` (3)
       */
      attempts?: number;
      /**
       * The first retry delay in milliseconds, doubled on each retry.
       * @defaultValue the queue's `backoff` (1000)
       */
      backoff?: number;
      /**
       * The reactor's stable name in job ids and logs.
       * @defaultValue the class name
       */
      name?: string;
    }
  | {
      /** Run inside the event's transaction, after its row is inserted; a throw rolls it back. */
      trigger: true;
      /**
       * The reactor's name in logs and errors.
       * @defaultValue the class name
       */
      name?: string;
    };

/** What `@Reactor` records on a provider class. */
export interface ReactorProviderRecord {
  /** The event classes it reacts to. */
  readonly events: readonly (abstract new () => AggregateEvent)[];
  /** Where it runs, and its retries. */
  readonly options: ReactorProviderOptions;
}

/** The metadata key `@Reactor` records under. */
export const REACTOR_METADATA = 'typeorm-event-sourcing:reactor';

/**
 * Makes an injectable class a reactor of the given event classes: `EventSourcingModule` finds it
 * among the application's providers and registers it with the dispatcher, and every call gets
 * the instance from Nest's container, with its dependencies injected. The class has a
 * `call(event, ctx)` method, as any class reactor.
 *
 * @example
 * ```ts
 * @Reactor(SubscriptionActivated, { async: true, attempts: 5 })
 * @Injectable()
 * export class SubscriptionConfirmation implements Reactor<SubscriptionActivated> {
 *   constructor(private readonly mail: MailService) {}
 *   async call(event: SubscriptionActivated) {
 *     await this.mail.send(event.aggregateId, 'Your subscription is active');
 *   }
 * }
 * ```
 * @throws UsageError when neither `async: true` nor `trigger: true` is given, or no event class.
 */
export function Reactor(events: (abstract new () => AggregateEvent) | (abstract new () => AggregateEvent)[], options: ReactorProviderOptions): ClassDecorator {
  const list = Array.isArray(events) ? events : [events];
  if (list.length === 0 || list.some((event) => typeof event !== 'function')) {
    throw new UsageError('@Reactor', 'events', 'must be one event class or an array of them');
  }
  const isAsync = (options as { async?: unknown })?.async === true;
  const isTrigger = (options as { trigger?: unknown })?.trigger === true;
  if (isAsync === isTrigger) throw new UsageError('@Reactor', 'options', 'must say { async: true } or { trigger: true }');
  return SetMetadata(REACTOR_METADATA, { events: list, options } satisfies ReactorProviderRecord);
}
