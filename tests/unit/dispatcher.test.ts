import { Dispatcher, EventSourcingConfigError, type ReactorContext } from 'typeorm-event-sourcing';
import {
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionEvent,
  SubscriptionNoteAdded,
} from '../support/subscription-model';

/** The error `fn` throws; fails the test if it does not throw. */
function thrownBy(fn: () => unknown): any {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

class SendConfirmation {
  call(_event: SubscriptionActivated, _ctx: ReactorContext): void {}
}

class RecountSubscribers {
  call(_event: SubscriptionEvent, _ctx: ReactorContext): void {}
}

function audit(_event: SubscriptionEvent, _ctx: ReactorContext): void {}

describe('Dispatcher.on: configuration errors', () => {
  test('two different reactor classes claiming one explicit name', () => {
    const dispatcher = new Dispatcher().on(SubscriptionActivated, { async: SendConfirmation, name: 'mailer' });

    const error = thrownBy(() => dispatcher.on(SubscriptionCancelled, { async: RecountSubscribers, name: 'mailer' }));

    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe("Dispatcher.on: two different reactors are named 'mailer'");
  });

  test('two different functions with the same function name', () => {
    const first = function notify(): void {};
    const second = function notify(): void {};
    const dispatcher = new Dispatcher().on(SubscriptionActivated, { async: first });

    const error = thrownBy(() => dispatcher.on(SubscriptionCreated, { async: second }));

    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe("Dispatcher.on: two different reactors are named 'notify'");
  });

  test('one reactor registered as trigger and as async under one name', () => {
    const dispatcher = new Dispatcher().on(SubscriptionActivated, { trigger: RecountSubscribers });

    const error = thrownBy(() => dispatcher.on(SubscriptionCancelled, { async: RecountSubscribers }));

    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe("Dispatcher.on: two different reactors are named 'RecountSubscribers'");
  });

  test('an anonymous function without a name option, in an array', () => {
    const error = thrownBy(() => new Dispatcher().on(SubscriptionActivated, { async: [(_event) => undefined] }));

    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe(
      "Dispatcher.on: reactor name '' must be 1-200 letters, digits, '_', '.' or '-' (give anonymous functions a name option)",
    );
  });

  test.each(['async', 'trigger'] as const)(
    'an inline arrow function as `%s`: JavaScript names it after the option key, which is not a reactor name',
    (mode) => {
      const registration = mode === 'async' ? { async: (_event: SubscriptionEvent) => undefined } : { trigger: (_event: SubscriptionEvent) => undefined };
      // What the language does: the property key becomes the function's name.
      expect((registration as unknown as Record<string, Function>)[mode].name).toBe(mode);

      const error = thrownBy(() => new Dispatcher().on(SubscriptionActivated, registration));

      expect(error).toBeInstanceOf(EventSourcingConfigError);
      expect(error.message).toContain('give anonymous functions a name option');
    },
  );

  test("a name with ':' (BullMQ refuses it in job ids)", () => {
    const error = thrownBy(() => new Dispatcher().on(SubscriptionActivated, { async: audit, name: 'mail:confirmation' }));

    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe(
      "Dispatcher.on: reactor name 'mail:confirmation' must be 1-200 letters, digits, '_', '.' or '-' (give anonymous functions a name option)",
    );
  });

  test('a name option with several reactors of one mode', () => {
    const error = thrownBy(() =>
      new Dispatcher().on(SubscriptionActivated, { async: [SendConfirmation, RecountSubscribers], name: 'both' }),
    );

    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe("Dispatcher.on: 'name' names one reactor, but 2 async reactors were given");
  });
});

describe('Dispatcher.on: what is allowed', () => {
  test('is chainable, and one reactor may be registered for several event classes', () => {
    const dispatcher = new Dispatcher();
    expect(dispatcher.on(SubscriptionActivated, { async: SendConfirmation })).toBe(dispatcher);
    expect(dispatcher.on([SubscriptionCreated, SubscriptionActivated], { async: RecountSubscribers })).toBe(dispatcher);
    expect(dispatcher.on(SubscriptionCancelled, { async: RecountSubscribers })).toBe(dispatcher);
    expect(dispatcher.hasAsyncReactors).toBe(true);
  });

  test('names: the class name, the function name, or the name option (letters, digits, _ . -)', () => {
    const dispatcher = new Dispatcher()
      .on(SubscriptionActivated, { async: SendConfirmation })
      .on(SubscriptionActivated, { async: audit })
      .on(SubscriptionActivated, { async: (_event) => undefined, name: 'Mail.confirmation_v2-eu' });

    expect(dispatcher.reactorsFor(new SubscriptionActivated(), 'async').map((binding) => binding.name)).toEqual([
      'SendConfirmation',
      'audit',
      'Mail.confirmation_v2-eu',
    ]);
  });

  test("the base events class matches every subclass; overlapping registrations match once, in registration order", () => {
    const dispatcher = new Dispatcher()
      .on(SubscriptionEvent, { trigger: RecountSubscribers })
      .on(SubscriptionActivated, { trigger: [audit, RecountSubscribers] })
      .on(SubscriptionActivated, { async: SendConfirmation });

    const names = (event: SubscriptionEvent, mode: 'trigger' | 'async') => dispatcher.reactorsFor(event, mode).map((binding) => binding.name);
    expect(names(new SubscriptionActivated(), 'trigger')).toEqual(['RecountSubscribers', 'audit']);
    expect(names(new SubscriptionActivated(), 'async')).toEqual(['SendConfirmation']);
    expect(names(new SubscriptionNoteAdded(), 'trigger')).toEqual(['RecountSubscribers']);
    expect(names(new SubscriptionNoteAdded(), 'async')).toEqual([]);
  });

  test('a dispatcher with only trigger reactors needs no queue', () => {
    expect(new Dispatcher().on(SubscriptionEvent, { trigger: RecountSubscribers }).hasAsyncReactors).toBe(false);
  });
});
