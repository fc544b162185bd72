import { AssertionError } from 'node:assert';
import type { DataSource } from 'typeorm';
import { Attribute, Command, EventApplyError, EventSourcing, ValidationError } from 'typeorm-event-sourcing';
import { eventMatchers, given, resetEventStore } from 'typeorm-event-sourcing/testing';
import { ActivateSubscription, CancelSubscription, CreateSubscription } from '../../examples/subscriptions/commands';
import {
  entities,
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionEvent,
} from '../../examples/subscriptions/model';
import { testDataSource } from '../support/database';
import { rejectionOf } from '../support/rejection';

expect.extend(eventMatchers);

/** The testing entry point on the Subscription example (examples/subscriptions). */
describe('testing helpers', () => {
  let dataSource: DataSource;
  let es: EventSourcing;

  async function count(table: string): Promise<number> {
    const [{ count }] = await dataSource.query(`SELECT count(*)::int AS count FROM ${table}`);
    return count;
  }

  async function activeSubscription(stripeKey = 'sub_66123'): Promise<Subscription> {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
    const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
    await ActivateSubscription.call({ subscription, stripeKey });
    return subscription;
  }

  beforeAll(async () => {
    dataSource = await testDataSource('testing_helpers', entities);
    es = await EventSourcing.attach(dataSource);
  });

  afterEach(() => resetEventStore(es));

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  describe('given / when / then', () => {
    test('then([...]) passes when the command emits the expected events, and returns them', async () => {
      const subscription = new Subscription();

      const events = await given(SubscriptionCreated.build({ subscription, userId: 1 }))
        .when(ActivateSubscription, { subscription, stripeKey: 'sub_66123' })
        .then([SubscriptionActivated.build({ stripeKey: 'sub_66123' })]);

      expect(events).toHaveLength(1);
      expect(events[0]).toBeInstanceOf(SubscriptionActivated);
      expect(events[0]).toMatchObject({ version: 2, stripeKey: 'sub_66123', aggregateId: subscription.id });
      // It ran on the real database: given created the aggregate, the command wrote its event.
      expect(subscription).toMatchObject({ status: 'active', version: 2 });
      const history = await es.history(Subscription, subscription.id);
      expect(history.map((event) => event.type)).toEqual(['Subscription.Created', 'Subscription.Activated']);
    });

    test('then([EventClass]) compares only the type', async () => {
      const subscription = new Subscription();
      await given(SubscriptionCreated.build({ subscription, userId: 1 }))
        .when(ActivateSubscription, { subscription, stripeKey: 'anything' })
        .then([SubscriptionActivated]);
    });

    test('a scenario without given events, for a command that creates its aggregate', async () => {
      const [created] = await given()
        .when(CreateSubscription, { userId: 5 })
        .then([SubscriptionCreated.build({ userId: 5, rewardId: null })]);
      expect(created.version).toBe(1);
      expect(await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId })).toMatchObject({ userId: 5, rewardId: null });
    });

    test('attributes given as a function are evaluated after the given events are saved', async () => {
      const subscription = new Subscription();
      await given(SubscriptionCreated.build({ subscription, userId: 1 }))
        .when(ActivateSubscription, () => ({ subscription, stripeKey: `sub_${subscription.id}` }))
        .then([SubscriptionActivated.build({ stripeKey: `sub_1` })]);
    });

    test('a failing then: AssertionError whose message holds a readable "+ actual - expected" diff', async () => {
      const subscription = new Subscription();

      const error = await rejectionOf(
        given(SubscriptionCreated.build({ subscription, userId: 1 }))
          .when(ActivateSubscription, { subscription, stripeKey: 'sub_66123' })
          .then([SubscriptionActivated.build({ stripeKey: 'sub_99999' })]),
      );

      expect(error).toBeInstanceOf(AssertionError);
      expect(error.message).toContain('the command did not emit the expected events');
      expect(error.message).toContain('+ actual - expected');
      expect(error.message).toMatch(/^\+\s+stripeKey: 'sub_66123'$/m);
      expect(error.message).toMatch(/^-\s+stripeKey: 'sub_99999'$/m);
      expect(error.message).toContain("type: 'Subscription.Activated'");
      // The type matched, so it is not marked as a difference.
      expect(error.message).not.toMatch(/^[+-].*type:/m);
    });

    test('a failing then on the type and on the number of events names both', async () => {
      const subscription = new Subscription();

      const wrongType = await rejectionOf(
        given(SubscriptionCreated.build({ subscription, userId: 1 }))
          .when(ActivateSubscription, { subscription, stripeKey: 'sub_1' })
          .then([SubscriptionCancelled]),
      );
      expect(wrongType).toBeInstanceOf(AssertionError);
      expect(wrongType.message).toMatch(/^\+\s+type: 'Subscription.Activated'$/m);
      expect(wrongType.message).toMatch(/^-\s+type: 'Subscription.Cancelled'$/m);

      const other = new Subscription();
      const tooFew = await rejectionOf(
        given(SubscriptionCreated.build({ subscription: other, userId: 1 }))
          .when(ActivateSubscription, { subscription: other, stripeKey: 'sub_1' })
          .then([SubscriptionActivated, SubscriptionCancelled.build({ reason: 'x' })]),
      );
      expect(tooFew).toBeInstanceOf(AssertionError);
      expect(tooFew.message).toContain('+ actual - expected');
      expect(tooFew.message).toMatch(/^-\s+type: 'Subscription.Cancelled'$/m);
      expect(tooFew.message).toMatch(/^-\s+reason: 'x'$/m);
    });

    test('then([...]) when the command failed rethrows the command error', async () => {
      const subscription = new Subscription();
      const error = await rejectionOf(
        given(SubscriptionCreated.build({ subscription, userId: 1 }))
          .when(ActivateSubscription, { subscription, stripeKey: '' })
          .then([SubscriptionActivated]),
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toBe('ActivateSubscription is invalid: stripeKey should not be empty');
    });

    test('thenNothing() passes for a no-op, and nothing is written', async () => {
      const subscription = new Subscription();
      await given(
        SubscriptionCreated.build({ subscription, userId: 1 }),
        SubscriptionActivated.build({ subscription, stripeKey: 'sub_1' }),
      )
        .when(ActivateSubscription, { subscription, stripeKey: 'sub_2' })
        .thenNothing();

      expect(await count('subscription_events')).toBe(2);
      expect(subscription).toMatchObject({ stripeKey: 'sub_1', version: 2 });
    });

    test('thenNothing() fails with an AssertionError naming what was emitted', async () => {
      const subscription = new Subscription();
      const error = await rejectionOf(
        given(SubscriptionCreated.build({ subscription, userId: 1 }))
          .when(ActivateSubscription, { subscription, stripeKey: 'sub_1' })
          .thenNothing(),
      );
      expect(error).toBeInstanceOf(AssertionError);
      expect(error.message).toContain('expected the command to be a no-op');
      expect(error.message).toMatch(/^\+\s+type: 'Subscription.Activated'$/m);
    });

    test('thenNothing() rethrows the command error', async () => {
      const subscription = new Subscription();
      const error = await rejectionOf(
        given(SubscriptionCreated.build({ subscription, userId: 1 }))
          .when(ActivateSubscription, { subscription, stripeKey: '' })
          .thenNothing(),
      );
      expect(error).toBeInstanceOf(ValidationError);
    });

    test('thenFails(ValidationError, /stripeKey/) passes and returns the error; nothing is written', async () => {
      const subscription = new Subscription();

      const error = await given(SubscriptionCreated.build({ subscription, userId: 1 }))
        .when(ActivateSubscription, { subscription, stripeKey: '' })
        .thenFails(ValidationError, /stripeKey/);

      expect(error).toBeInstanceOf(ValidationError);
      expect(error.messagesFor('stripeKey')).toEqual(['stripeKey should not be empty']);
      expect(await count('subscription_events')).toBe(1);
    });

    test('thenFails with an exact message, and with an error from the write path', async () => {
      const cancelled = new Subscription();
      await given(
        SubscriptionCreated.build({ subscription: cancelled, userId: 1 }),
        SubscriptionCancelled.build({ subscription: cancelled, reason: 'moving' }),
      )
        .when(ActivateSubscription, { subscription: cancelled, stripeKey: 'sub_3' })
        .thenFails(ValidationError, 'ActivateSubscription is invalid: a cancelled subscription cannot be activated');

      // The example's CancelSubscription skips a second cancellation (noop); this one lets apply refuse it.
      class CancelAnyway extends Command<SubscriptionCancelled> {
        @Attribute() subscription!: Subscription;
        @Attribute() reason!: string;
        buildEvent() {
          return SubscriptionCancelled.build({ subscription: this.subscription, reason: this.reason });
        }
      }
      const applyError = await given()
        .when(CancelAnyway, { subscription: cancelled, reason: 'again' })
        .thenFails(EventApplyError, `Subscription.Cancelled.apply failed on Subscription ${cancelled.id}: subscription is already cancelled`);
      expect(applyError.eventType).toBe('Subscription.Cancelled');
      expect(await count('subscription_events')).toBe(2);
    });

    test('thenFails fails when the command succeeded, naming what it emitted', async () => {
      const subscription = new Subscription();
      const error = await rejectionOf(
        given(SubscriptionCreated.build({ subscription, userId: 1 }))
          .when(ActivateSubscription, { subscription, stripeKey: 'sub_1' })
          .thenFails(ValidationError),
      );
      expect(error).toBeInstanceOf(AssertionError);
      expect(error.message).toBe('expected ValidationError, but the command emitted [{"type":"Subscription.Activated"}]');
    });

    test('thenFails fails for a no-op, for another error class, and for another message', async () => {
      const active = new Subscription();
      const noop = await rejectionOf(
        given(SubscriptionCreated.build({ subscription: active, userId: 1 }), SubscriptionActivated.build({ subscription: active, stripeKey: 'sub_1' }))
          .when(ActivateSubscription, { subscription: active, stripeKey: 'sub_2' })
          .thenFails(ValidationError),
      );
      expect(noop).toBeInstanceOf(AssertionError);
      expect(noop.message).toBe('expected ValidationError, but the command emitted []');

      const cancelled = new Subscription();
      const otherClass = await rejectionOf(
        given(SubscriptionCreated.build({ subscription: cancelled, userId: 1 }))
          .when(CancelSubscription, { subscription: cancelled, reason: '' })
          .thenFails(EventApplyError),
      );
      expect(otherClass).toBeInstanceOf(AssertionError);
      expect(otherClass.message).toBe(
        'expected EventApplyError, but the command failed with ValidationError: CancelSubscription is invalid: reason should not be empty',
      );

      const otherMessage = await rejectionOf(
        given().when(CancelSubscription, { subscription: cancelled, reason: '' }).thenFails(ValidationError, /stripeKey/),
      );
      expect(otherMessage).toBeInstanceOf(AssertionError);
      expect(otherMessage.message).toContain('CancelSubscription is invalid: reason should not be empty');
    });

    test('awaiting a scenario gives { result } or { error }', async () => {
      const subscription = new Subscription();
      const { result, error } = await given(SubscriptionCreated.build({ subscription, userId: 1 })).when(ActivateSubscription, {
        subscription,
        stripeKey: 'sub_1',
      });
      expect(error).toBeUndefined();
      expect(result).toBeInstanceOf(SubscriptionActivated);
      expect(result!.stripeKey).toBe('sub_1');
      expect(result).toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_1' });

      const again = await given().when(ActivateSubscription, { subscription, stripeKey: 'sub_2' });
      expect(again).toEqual({ result: null });

      const failed = await given().when(ActivateSubscription, { subscription, stripeKey: '' });
      expect(failed.result).toBeUndefined();
      expect(failed.error).toBeInstanceOf(ValidationError);
      expect((failed.error as ValidationError).issues).toEqual([{ attribute: 'stripeKey', constraints: { isNotEmpty: 'stripeKey should not be empty' } }]);
    });

    test('a scenario without when is refused', async () => {
      await expect(given(SubscriptionCreated.build({ userId: 1 })).thenNothing()).rejects.toThrow(
        'a scenario needs when(Command, attributes) before then(...)',
      );
    });
  });

  describe('toHaveEmitted', () => {
    test('passes for the event class and data, for the class alone, and among several events', async () => {
      const subscription = await activeSubscription();
      const result = await CancelSubscription.call({ subscription, reason: 'moving' });

      expect(result).toHaveEmitted(SubscriptionCancelled, { reason: 'moving' });
      expect(result).toHaveEmitted(SubscriptionCancelled);
      expect(result).not.toHaveEmitted(SubscriptionCancelled, { reason: 'other' });
      expect(result).not.toHaveEmitted(SubscriptionActivated);
      expect([result, ...(await es.history(Subscription, subscription.id))]).toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_66123' });
    });

    test('a no-op result (null) emitted nothing', async () => {
      const subscription = await activeSubscription();
      const result = await ActivateSubscription.call({ subscription, stripeKey: 'sub_2' });
      expect(result).toBeNull();
      expect(result).not.toHaveEmitted(SubscriptionActivated);
      expect(() => expect(result).toHaveEmitted(SubscriptionActivated)).toThrow(
        "expected event like { type: 'Subscription.Activated' }\nemitted: []",
      );
    });

    test('the failure message shows the expected event and what was emitted, with the same keys', async () => {
      const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
      const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
      const result = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' });

      const outcome = eventMatchers.toHaveEmitted(result, SubscriptionActivated, { stripeKey: 'sub_99999' });
      expect(outcome.pass).toBe(false);
      expect(outcome.message()).toMatch(
        /^expected event like \{ type: 'Subscription\.Activated', data: \{ stripeKey: 'sub_99999' \} \}\nemitted: \[\s*\{ type: 'Subscription\.Activated', data: \{ stripeKey: 'sub_66123' \} \}\s*\]$/,
      );

      expect(() => expect(result).toHaveEmitted(SubscriptionCancelled, { reason: 'moving' })).toThrow(
        "expected event like { type: 'Subscription.Cancelled', data: { reason: 'moving' } }\n" +
          "emitted: [ { type: 'Subscription.Activated', data: { reason: undefined } } ]",
      );
    });

    test('the .not failure message says which event should not have been emitted', async () => {
      const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 1 }));
      const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
      const result = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123' });

      const outcome = eventMatchers.toHaveEmitted(result, SubscriptionActivated, { stripeKey: 'sub_66123' });
      expect(outcome.pass).toBe(true);
      expect(outcome.message()).toMatch(
        /^expected no event like \{ type: 'Subscription\.Activated', data: \{ stripeKey: 'sub_66123' \} \}\nemitted: \[\s*\{ type: 'Subscription\.Activated', data: \{ stripeKey: 'sub_66123' \} \}\s*\]$/,
      );
      expect(() => expect(result).not.toHaveEmitted(SubscriptionActivated, { stripeKey: 'sub_66123' })).toThrow('expected no event like');
    });

    test('the abstract events class of the aggregate matches any of its events', async () => {
      const subscription = await activeSubscription();
      const result = await CancelSubscription.call({ subscription, reason: 'moving' });
      expect(result).toHaveEmitted(SubscriptionEvent);
      expect(null).not.toHaveEmitted(SubscriptionEvent);
      expect(() => expect(result).not.toHaveEmitted(SubscriptionEvent)).toThrow("expected no event like { type: 'SubscriptionEvent' }");
    });

    test('a data key the event class does not have fails instead of being ignored', async () => {
      const subscription = await activeSubscription();
      const result = await CancelSubscription.call({ subscription, reason: 'moving' });
      const message = "toHaveEmitted: SubscriptionCancelled has no @Data attribute 'reasn' (its attributes: reason)";
      // @ts-expect-error the typo is a compile error too; the run-time check is for JavaScript and casts
      expect(() => expect(result).toHaveEmitted(SubscriptionCancelled, { reason: 'moving', reasn: 'typo' })).toThrow(message);
      // @ts-expect-error as above
      expect(() => expect(result).not.toHaveEmitted(SubscriptionCancelled, { reasn: 'typo' })).toThrow(message);
      expect(() => expect(result).toHaveEmitted(SubscriptionEvent, { reason: 'moving' })).toThrow(
        "toHaveEmitted: SubscriptionEvent has no @Data attribute 'reason' (its attributes: none)",
      );
    });
  });

  describe('resetEventStore', () => {
    test('(first case) writes aggregates, events and an outbox row', async () => {
      const subscription = await activeSubscription();
      await dataSource.query(
        `INSERT INTO es_outbox (events_table, event_id, event_position, event_type, reactor) VALUES ('subscription_events', 1, 1, 'Subscription.Created', 'Test')`,
      );
      expect(subscription.id).toBe(1);
      expect(await count('subscription')).toBe(1);
      expect(await count('subscription_events')).toBe(2);
      expect(await count('es_outbox')).toBe(1);
      await dataSource.query(`INSERT INTO es_projections (name, tx_id, position) VALUES ('report', 1, 1)`);
      expect(await count('es_projections')).toBe(1);
    });

    test('(next case) starts from empty aggregate, events, outbox and projection checkpoint tables, identities restarted', async () => {
      expect(await count('subscription')).toBe(0);
      expect(await count('subscription_events')).toBe(0);
      expect(await count('es_outbox')).toBe(0);
      expect(await count('es_projections')).toBe(0);
      const created = await dataSource.manager.save(SubscriptionCreated.build({ userId: 2 }));
      expect(created.aggregateId).toBe(1);
      expect(created.id).toBe(1);
    });

    test('without an argument it resets the only attached EventSourcing', async () => {
      await activeSubscription();
      await resetEventStore();
      expect(await count('subscription')).toBe(0);
      expect(await count('subscription_events')).toBe(0);
    });
  });
});
