import { EventSourcingConfigError } from '../errors/event-sourcing-config-error';
import type { AggregateEvent } from '../events/aggregate-event';
import type { Reactor, ReactorClass, ReactorContext, ReactorLike } from './reactor';


/** How a reactor is registered with {@link Dispatcher.on}. */
export interface ReactorRegistration<E extends AggregateEvent> {
  /** Run inside the event's transaction, after its row is inserted. A throw rolls everything back. */
  trigger?: ReactorLike<E> | ReactorLike<E>[];
  /** Run as a BullMQ job after the outermost commit, at least once. */
  async?: ReactorLike<E> | ReactorLike<E>[];
  /**
   * The reactor's stable name, used in job ids and logs, when one reactor is registered.
   * @defaultValue the class or function name
   */
  name?: string;
  /**
   * How many times an async reactor's job runs before it stays in the failed set.
   * @defaultValue the queue's `attempts` (3)
   */
  attempts?: number;
  /**
   * The first retry delay of an async reactor in milliseconds, doubled on each retry.
   * @defaultValue the queue's `backoff` (1000)
   */
  backoff?: number;
}

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /**
   * Builds reactor class instances, e.g. from a dependency-injection container.
   * @defaultValue `new ReactorClass()` for every call
   */
  factory?: (reactor: ReactorClass<any>) => Reactor<any>;
}

/** One reactor registered for some event classes. */
export interface ReactorBinding {
  readonly name: string;
  readonly mode: 'trigger' | 'async';
  readonly events: readonly Function[];
  readonly reactor: ReactorLike<any>;
  readonly attempts?: number;
  readonly backoff?: number;
}

const namePattern = /^[A-Za-z0-9_.-]{1,200}$/;

function isClass(reactor: ReactorLike<any>): reactor is ReactorClass<any> {
  return typeof reactor.prototype?.call === 'function';
}

/**
 * Maps event classes to reactors, like the talk's dispatcher. Registering a reactor for an
 * aggregate's base events class matches all of its events.
 *
 * @example
 * ```ts
 * export const dispatcher = new Dispatcher()
 *   .on(SubscriptionActivated, { async: SubscriptionConfirmation })
 *   .on(SubscriptionActivated, { async: NewSubscriberNotification })
 *   .on(SubscriptionActivated, { trigger: RecountRewardSubscribers });
 * ```
 */
export class Dispatcher {
  readonly #bindings: ReactorBinding[] = [];
  readonly #factory: (reactor: ReactorClass<any>) => Reactor<any>;

  constructor(options: DispatcherOptions = {}) {
    this.#factory = options.factory ?? ((reactor) => new reactor());
  }

  /**
   * Registers reactors for one event class or several.
   *
   * @throws EventSourcingConfigError for a reactor without a usable name, or two reactors
   * claiming one name.
   */
  on<E extends AggregateEvent>(events: (abstract new () => E) | (abstract new () => E)[], registration: ReactorRegistration<E>): this {
    const eventClasses = Array.isArray(events) ? events : [events];
    for (const mode of ['trigger', 'async'] as const) {
      const listed = registration[mode];
      const reactors = listed === undefined ? [] : Array.isArray(listed) ? listed : [listed];
      if (registration.name !== undefined && reactors.length > 1) {
        throw new EventSourcingConfigError(`Dispatcher.on: 'name' names one reactor, but ${reactors.length} ${mode} reactors were given`);
      }
      for (const reactor of reactors) {
        // JavaScript names an anonymous function after the property it is written in:
        // `{ async: (event) => ... }` is named 'async', which names no reactor.
        const name = registration.name ?? (reactor.name === mode ? '' : reactor.name);
        if (!namePattern.test(name)) {
          throw new EventSourcingConfigError(
            `Dispatcher.on: reactor name '${name}' must be 1-200 letters, digits, '_', '.' or '-' (give anonymous functions a name option)`,
          );
        }
        const other = this.#bindings.find((binding) => binding.name === name);
        if (other && (other.reactor !== reactor || other.mode !== mode)) {
          throw new EventSourcingConfigError(`Dispatcher.on: two different reactors are named '${name}'`);
        }
        this.#bindings.push({ name, mode, events: eventClasses, reactor, attempts: registration.attempts, backoff: registration.backoff });
      }
    }
    return this;
  }

  /** @internal The reactors of one mode that match an event, each once, in registration order. */
  reactorsFor(event: AggregateEvent, mode: 'trigger' | 'async'): ReactorBinding[] {
    const matched = new Map<string, ReactorBinding>();
    for (const binding of this.#bindings) {
      if (binding.mode === mode && !matched.has(binding.name) && binding.events.some((type) => event instanceof type)) {
        matched.set(binding.name, binding);
      }
    }
    return [...matched.values()];
  }

  /** @internal The async reactor registered under a name. */
  asyncReactor(name: string): ReactorBinding | undefined {
    return this.#bindings.find((binding) => binding.mode === 'async' && binding.name === name);
  }

  /** @internal The largest `attempts` of any async reactor, or `fallback` when larger. */
  maxAttempts(fallback: number): number {
    return Math.max(fallback, ...this.#bindings.map((binding) => (binding.mode === 'async' ? binding.attempts ?? 0 : 0)));
  }

  /** @internal Whether any async reactor is registered (then a queue is required). */
  get hasAsyncReactors(): boolean {
    return this.#bindings.some((binding) => binding.mode === 'async');
  }

  /** @internal Calls a reactor. */
  async invoke(binding: ReactorBinding, event: AggregateEvent, context: ReactorContext): Promise<void> {
    if (isClass(binding.reactor)) await this.#factory(binding.reactor).call(event, context);
    else await binding.reactor(event, context);
  }
}
