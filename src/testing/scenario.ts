import assert from 'node:assert/strict';
import type { Command, CommandAttributes, CommandCallOptions, EmittedBy } from '../commands/command';
import { attachedTo } from '../event-sourcing';
import type { AggregateEvent } from '../events/aggregate-event';
import { actualSummary, expectedSummary, type ExpectedEvent } from './event-summary';

/** What a scenario did: the command's result (saved events, or null for a no-op) or its error. */
export interface ScenarioOutcome<C> {
  /** The saved event(s), or null for a no-op. */
  result?: EmittedBy<C> | null;
  /** What the command threw. */
  error?: unknown;
}

type CommandClass<C> = (new () => C) & { call(attributes: CommandAttributes<C>, options?: CommandCallOptions): Promise<EmittedBy<C> | null> };

/**
 * A test that reads the way domain experts talk: given these events happened, when this command
 * runs, then these events are emitted (or nothing, or this error). It runs on the real database
 * of the attached DataSource. Awaiting a scenario without `then...` gives its outcome.
 */
export class Scenario<C extends Command<any> = Command<any>> implements PromiseLike<ScenarioOutcome<C>> {
  readonly #given: AggregateEvent[];
  readonly #options: CommandCallOptions;
  #when?: { command: CommandClass<C>; attributes: CommandAttributes<C> | (() => CommandAttributes<C>) };

  constructor(given: AggregateEvent[], options: CommandCallOptions = {}) {
    this.#given = given;
    this.#options = options;
  }

  /** The command to run, with its attributes (or a function returning them, evaluated after `given`). */
  when<D extends Command<any>>(command: new () => D, attributes: CommandAttributes<D> | (() => CommandAttributes<D>)): Scenario<D> {
    const next = new Scenario<D>(this.#given, this.#options);
    next.#when = { command: command as CommandClass<D>, attributes };
    return next;
  }

  /** Asserts that the command emitted exactly these events, in order; a mismatch throws with a diff. */
  // The generic `this` keeps TypeScript from taking this overload for the awaited one: `await`
  // only considers `then` signatures whose `this` the scenario is known to satisfy, and with the
  // array overload among them `await scenario` fails to type-check (TS1320).
  then<This>(this: This, expected: ExpectedEvent[]): Promise<AggregateEvent[]>;
  then<R1 = ScenarioOutcome<C>, R2 = never>(
    onfulfilled?: ((outcome: ScenarioOutcome<C>) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2>;
  then(first?: unknown, onrejected?: unknown): Promise<unknown> {
    if (Array.isArray(first)) return this.#expectEvents(first as ExpectedEvent[]);
    return this.#run().then(first as never, onrejected as never);
  }

  /** Asserts that the command was a no-op: it returned null and wrote nothing. */
  async thenNothing(): Promise<void> {
    const outcome = await this.#run();
    if (outcome.error) throw outcome.error;
    assert.deepStrictEqual(summaries(outcome.result), [], 'expected the command to be a no-op');
  }

  /** Asserts that the command failed with this error class (and message, when given); returns the error. */
  async thenFails<T extends Error>(errorClass: abstract new (...args: any[]) => T, message?: string | RegExp): Promise<T> {
    const outcome = await this.#run();
    if (!(outcome.error instanceof errorClass)) {
      assert.fail(
        outcome.error
          ? `expected ${errorClass.name}, but the command failed with ${(outcome.error as Error).name}: ${(outcome.error as Error).message}`
          : `expected ${errorClass.name}, but the command emitted ${JSON.stringify(summaries(outcome.result))}`,
      );
    }
    if (typeof message === 'string') assert.equal(outcome.error.message, message);
    if (message instanceof RegExp) assert.match(outcome.error.message, message);
    return outcome.error;
  }

  async #expectEvents(expected: ExpectedEvent[]): Promise<AggregateEvent[]> {
    const outcome = await this.#run();
    if (outcome.error) throw outcome.error;
    const events = eventsOf(outcome.result);
    const wanted = expected.map(expectedSummary);
    assert.deepStrictEqual(
      events.map((event, index) => actualSummary(event, wanted[index])),
      wanted,
      'the command did not emit the expected events',
    );
    return events;
  }

  async #run(): Promise<ScenarioOutcome<C>> {
    const { internals } = attachedTo(this.#options.manager);
    const manager = this.#options.manager ?? internals.dataSource.manager;
    for (const event of this.#given) await manager.save(event);
    if (!this.#when) throw new TypeError('a scenario needs when(Command, attributes) before then(...)');
    const { command, attributes } = this.#when;
    try {
      const resolved = typeof attributes === 'function' ? (attributes as () => CommandAttributes<C>)() : attributes;
      return { result: await command.call(resolved, this.#options) };
    } catch (error) {
      return { error };
    }
  }
}

function eventsOf(result: unknown): AggregateEvent[] {
  if (result === null || result === undefined) return [];
  return Array.isArray(result) ? result : [result as AggregateEvent];
}

function summaries(result: unknown) {
  return eventsOf(result).map((event) => actualSummary(event));
}

/**
 * Starts a scenario: these events are saved first (an event built with an unsaved aggregate
 * instance creates it and fills that instance in, so the `when` attributes can use it).
 *
 * @example
 * ```ts
 * const subscription = new Subscription();
 * await given(SubscriptionCreated.build({ subscription, userId: 1 }))
 *   .when(ActivateSubscription, { subscription, stripeKey: 'sub_66123' })
 *   .then([SubscriptionActivated.build({ stripeKey: 'sub_66123' })]);
 * ```
 */
export function given(...events: AggregateEvent[]): Scenario {
  return new Scenario(events);
}
