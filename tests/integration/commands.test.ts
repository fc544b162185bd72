import { IsNotEmpty } from 'class-validator';
import type { DataSource } from 'typeorm';
import {
  AggregateEvent,
  Attribute,
  Command,
  ConcurrencyError,
  EventApplyError,
  EventSourcing,
  EventSourcingConfigError,
  ValidationError,
} from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import {
  ActivateSubscription,
  ActivateSubscriptionLater,
  ActivateWithBonus,
  AddNotes,
  CancelSubscription,
  CommandWallet,
  CommandWalletCredited,
  CommandWalletOpened,
  CreateSubscription,
  OpenWallet,
  commandEntities,
} from '../support/command-models';
import { rejectionOf } from '../support/rejection';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCancelled,
  SubscriptionCreated,
  SubscriptionNoteAdded,
  subscriptionEntities,
} from '../support/subscription-model';
import { columnsOf, countEvents, eventRows, loadSubscription, subscriptionRow, writePathLint } from '../support/write-path-lint';

/**
 * A command whose buildEvent returns the event it is given: the write-path lint's event goes
 * through the whole command pipeline (attributes, validation, noop, write, errors passing through).
 */
class RecordEvent extends Command<AggregateEvent> {
  @Attribute() event!: AggregateEvent;
  buildEvent() {
    return this.event;
  }
}

writePathLint(
  'Command.call (buildEvent returns the event)',
  async ({ event }) => {
    const saved = await RecordEvent.call({ event });
    // The command returns the saved event itself.
    expect(saved).toBe(event);
    return event;
  },
  { database: 'lint_command' },
);

/** Polls until `condition` holds; fails after `attempts` tries (a guard against hanging, not a timing assertion). */
async function waitUntil(condition: () => Promise<boolean>, what: string, attempts = 1000): Promise<void> {
  for (let i = 0; i < attempts; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting until ${what}`);
}

/** Which step of a spied command ran, in order. */
const steps: string[] = [];

/** ActivateSubscription that records its steps. */
class SpiedActivation extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() stripeKey!: string;
  /** Runs inside buildEvent, before the event is built (to provoke conflicts). */
  static duringBuild: (() => Promise<void>) | undefined;

  validate() {
    steps.push(`validate@${this.subscription.version}`);
    if (this.subscription.status === 'cancelled') this.addError('subscription', 'a cancelled subscription cannot be activated');
  }

  noop() {
    steps.push(`noop@${this.subscription.version}`);
    return this.subscription.status === 'active';
  }

  async buildEvent() {
    steps.push(`buildEvent@${this.subscription.version}`);
    await SpiedActivation.duringBuild?.();
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey });
  }
}

/** Adds a note; records its buildEvent calls. */
class SpiedNote extends Command<SubscriptionNoteAdded> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() note!: string;
  static duringBuild: (() => Promise<void>) | undefined;

  async buildEvent() {
    steps.push(`buildEvent@${this.subscription.version}`);
    await SpiedNote.duringBuild?.();
    return SubscriptionNoteAdded.build({ subscription: this.subscription, note: this.note });
  }
}

/** validate() adds two errors to one attribute and one to another, and records that it ran. */
class StrictActivation extends Command<SubscriptionActivated> {
  @Attribute() subscription!: Subscription;
  @Attribute() @IsNotEmpty() stripeKey!: string;

  validate() {
    steps.push('validate');
    if (this.subscription.status !== 'active') {
      this.addError('subscription', 'must be active');
      this.addError('subscription', 'must have a stripe key', 'hasKey');
    }
    if (!this.stripeKey.startsWith('sub_')) this.addError('stripeKey', 'must start with sub_', 'prefix');
  }

  buildEvent() {
    steps.push('buildEvent');
    return SubscriptionActivated.build({ subscription: this.subscription, stripeKey: this.stripeKey });
  }
}

describe('commands without EventSourcing attached', () => {
  test('a command raises EventSourcingConfigError when no EventSourcing is attached', async () => {
    const error = await rejectionOf(CreateSubscription.call({ userId: 1 }));
    expect(error).toBeInstanceOf(EventSourcingConfigError);
    expect(error.message).toBe('no EventSourcing is attached: call EventSourcing.attach(dataSource) first');
  });
});

describe('commands', () => {
  let dataSource: DataSource;
  let es: EventSourcing;
  const committed: AggregateEvent[][] = [];

  async function createSubscription(userId = 1): Promise<Subscription> {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId }));
    const subscription = await loadSubscription(dataSource, created.aggregateId);
    committed.length = 0; // only what the test itself writes
    return subscription;
  }

  async function createWallet(owner = 'ann'): Promise<CommandWallet> {
    const opened = await dataSource.manager.save(CommandWalletOpened.build({ owner }));
    const wallet = await dataSource.manager.findOneByOrFail(CommandWallet, { id: opened.aggregateId });
    committed.length = 0;
    return wallet;
  }

  async function walletRow(id: number): Promise<Record<string, any> | undefined> {
    return (await dataSource.query('SELECT * FROM command_wallet WHERE id = $1', [id]))[0];
  }

  async function countAllEvents(): Promise<number> {
    const [{ count }] = await dataSource.query(
      'SELECT (SELECT count(*) FROM subscription_events) + (SELECT count(*) FROM command_wallet_events) AS count',
    );
    return Number(count);
  }

  beforeAll(async () => {
    dataSource = await testDataSource('commands', commandEntities);
    es = await EventSourcing.attach(dataSource);
    es.afterCommit((events) => committed.push(events));
  });

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  beforeEach(() => {
    steps.length = 0;
    committed.length = 0;
    SpiedActivation.duringBuild = undefined;
    SpiedNote.duringBuild = undefined;
  });

  describe('a valid call', () => {
    test('returns the saved event and updates the aggregate row and the caller instance', async () => {
      const subscription = await createSubscription(7);
      committed.length = 0;
      const trialEndsAt = new Date('2031-01-02T03:04:05.678Z');

      const event = await ActivateSubscription.call({ subscription, stripeKey: 'sub_66123', trialEndsAt, metadata: { notificationId: 33456 } });

      expect(event).toBeInstanceOf(SubscriptionActivated);
      expect(event).toMatchObject({ stripeKey: 'sub_66123', trialEndsAt, version: 2, aggregateId: subscription.id, metadata: { notificationId: 33456 } });
      expect(typeof event!.id).toBe('number');
      expect(subscription).toMatchObject({ status: 'active', stripeKey: 'sub_66123', version: 2 });
      expect(subscription.activatedAt!.getTime()).toBe(event!.createdAt.getTime());
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'active', stripeKey: 'sub_66123', version: 2 });
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((row) => [row.version, row.type, row.data, row.metadata])).toEqual([
        [1, 'Subscription.Created', { userId: 7 }, {}],
        [2, 'Subscription.Activated', { stripeKey: 'sub_66123', trialEndsAt: '2031-01-02T03:04:05.678Z' }, { notificationId: 33456 }],
      ]);
      expect(committed).toEqual([[event]]);
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });

    test('a command without an aggregate attribute creates the aggregate', async () => {
      const event = await CreateSubscription.call({ userId: 12 });

      expect(event).toBeInstanceOf(SubscriptionCreated);
      expect(event!.version).toBe(1);
      expect(await subscriptionRow(dataSource, event!.aggregateId)).toMatchObject({ userId: 12, status: 'pending', version: 1 });
    });

    test('an optional aggregate attribute may be left out, or given', async () => {
      const opened = await OpenWallet.call({ owner: 'bob' });
      expect(opened!.version).toBe(1);
      const wallet = await dataSource.manager.findOneByOrFail(CommandWallet, { id: opened!.aggregateId });

      const renamed = await OpenWallet.call({ wallet, owner: 'carol' });
      expect(renamed!.version).toBe(2);
      expect(wallet).toMatchObject({ owner: 'carol', version: 2 });
    });

    test('a command subclass inherits the attributes, rules, validate and noop of its parent', async () => {
      class ActivateWithNote extends ActivateSubscription {
        @Attribute() @IsNotEmpty() note!: string;
      }
      const subscription = await createSubscription();

      const invalid = await rejectionOf(ActivateWithNote.call({ subscription, stripeKey: '', note: '' }));
      // Both attributes are listed (in class-validator's order, which puts the subclass's first).
      expect(invalid.issues).toHaveLength(2);
      expect(invalid.messagesFor('stripeKey')).toEqual(['stripeKey should not be empty']);
      expect(invalid.messagesFor('note')).toEqual(['note should not be empty']);

      const event = await ActivateWithNote.call({ subscription, stripeKey: 'sub_child', note: 'hello' });
      expect(event).toMatchObject({ stripeKey: 'sub_child', version: 2 });
      expect(await ActivateWithNote.call({ subscription, stripeKey: 'sub_child', note: 'again' })).toBeNull();
    });

    test('call is typed: it accepts only declared attributes and returns the command event type', async () => {
      const subscription = await createSubscription();
      const eventsBefore = await countEvents(dataSource);

      // @ts-expect-error stripeKy is not an attribute of ActivateSubscription
      const error = await rejectionOf(ActivateSubscription.call({ subscription, stripeKey: 'sub_1', stripeKy: 'sub_2' }));
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toBe('ActivateSubscription is invalid: stripeKy is not an attribute of ActivateSubscription');

      // @ts-expect-error stripeKey is required
      expect(await rejectionOf(ActivateSubscription.call({ subscription }))).toBeInstanceOf(ValidationError);

      // @ts-expect-error methods of the command are not attributes
      expect(await rejectionOf(ActivateSubscription.call({ subscription, stripeKey: 'sub_1', noop: () => true }))).toBeInstanceOf(ValidationError);
      expect(await countEvents(dataSource)).toBe(eventsBefore);

      const event: SubscriptionActivated | null = await ActivateSubscription.call({ subscription, stripeKey: 'sub_1' });
      const notes: SubscriptionNoteAdded[] | null = await AddNotes.call({ subscription, notes: ['x'] });
      expect(event!.stripeKey).toBe('sub_1');
      expect(notes!.map((note) => note.note)).toEqual(['x']);
    });
  });

  describe('validation', () => {
    test('an empty stripeKey: ValidationError listing it, nothing built or written', async () => {
      const subscription = await createSubscription();
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(SpiedActivation.call({ subscription, stripeKey: '' }));

      expect(error).toBeInstanceOf(ValidationError);
      expect(error.code).toBe('VALIDATION');
      expect(error.command).toBe('SpiedActivation');
      expect(error.message).toBe('SpiedActivation is invalid: stripeKey should not be empty');
      expect(error.issues).toEqual([{ attribute: 'stripeKey', constraints: { isNotEmpty: 'stripeKey should not be empty' } }]);
      expect(error.messagesFor('stripeKey')).toEqual(['stripeKey should not be empty']);
      expect(error.messagesFor('subscription')).toEqual([]);
      // Rules fail first: validate, noop and buildEvent never ran.
      expect(steps).toEqual([]);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(columnsOf(subscription)).toEqual(before);
      expect(committed).toEqual([]);
    });

    test('each rule of an attribute is listed: a stripeKey too long', async () => {
      const subscription = await createSubscription();
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(ActivateSubscription.call({ subscription, stripeKey: 'sub_' + 'x'.repeat(20) }));

      expect(error).toBeInstanceOf(ValidationError);
      expect(error.issues).toEqual([
        { attribute: 'stripeKey', constraints: { maxLength: 'stripeKey must be shorter than or equal to 20 characters' } },
      ]);
      expect(error.message).toBe('ActivateSubscription is invalid: stripeKey must be shorter than or equal to 20 characters');
      expect(await countEvents(dataSource)).toBe(eventsBefore);
    });

    test('an optional attribute with a rule: a trialEndsAt that is not a Date', async () => {
      const subscription = await createSubscription();
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(
        ActivateSubscription.call({ subscription, stripeKey: 'sub_1', trialEndsAt: '2031-01-01' as unknown as Date }),
      );

      expect(error.issues).toEqual([{ attribute: 'trialEndsAt', constraints: { isDate: 'trialEndsAt must be a Date instance' } }]);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
    });

    test('every failed attribute is listed, with every message, in one ValidationError', async () => {
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(
        ActivateSubscription.call({ subscription: undefined as unknown as Subscription, stripeKey: '', trialEndsAt: 5 as unknown as Date }),
      );

      expect(error).toBeInstanceOf(ValidationError);
      expect(error.issues).toEqual([
        { attribute: 'subscription', constraints: { isDefined: 'subscription must be a Subscription' } },
        { attribute: 'stripeKey', constraints: { isNotEmpty: 'stripeKey should not be empty' } },
        { attribute: 'trialEndsAt', constraints: { isDate: 'trialEndsAt must be a Date instance' } },
      ]);
      expect(error.message).toBe(
        'ActivateSubscription is invalid: subscription must be a Subscription; stripeKey should not be empty; trialEndsAt must be a Date instance',
      );
      expect(await countEvents(dataSource)).toBe(eventsBefore);
    });

    test('several rules failing on one attribute are all listed', async () => {
      const error = await rejectionOf(CreateSubscription.call({ userId: -1.5 }));

      expect(error.issues).toEqual([
        { attribute: 'userId', constraints: { isInt: 'userId must be an integer number', isPositive: 'userId must be a positive number' } },
      ]);
      // In class-validator's order: decorators run bottom-up, so @IsPositive's message comes first.
      expect(error.messagesFor('userId')).toEqual(['userId must be a positive number', 'userId must be an integer number']);
      expect(error.message).toBe('CreateSubscription is invalid: userId must be a positive number, userId must be an integer number');
    });

    test('the message of the design: a missing subscription and an empty stripeKey', async () => {
      const error = await rejectionOf(ActivateSubscription.call({ subscription: null as unknown as Subscription, stripeKey: '' }));
      expect(error.message).toBe('ActivateSubscription is invalid: subscription must be a Subscription; stripeKey should not be empty');
    });

    test.each([
      ['undefined', undefined],
      ['null', null],
    ])('a %s aggregate attribute is a ValidationError, not a TypeError from validate or noop', async (_label, value) => {
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(SpiedActivation.call({ subscription: value as unknown as Subscription, stripeKey: 'sub_1' }));

      expect(error).toBeInstanceOf(ValidationError);
      expect(error.issues).toEqual([{ attribute: 'subscription', constraints: { isDefined: 'subscription must be a Subscription' } }]);
      expect(error.message).toBe('SpiedActivation is invalid: subscription must be a Subscription');
      expect(steps).toEqual([]);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
    });

    test('a left-out aggregate attribute is a ValidationError', async () => {
      const error = await rejectionOf(ActivateSubscription.call({ stripeKey: 'sub_1' } as never));
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.messagesFor('subscription')).toEqual(['subscription must be a Subscription']);
    });

    test('an aggregate attribute holding another class is a ValidationError (isInstance)', async () => {
      const subscription = await createSubscription();
      const wallet = await createWallet();
      const eventsBefore = await countAllEvents();

      const wrongAggregate = await rejectionOf(SpiedActivation.call({ subscription: wallet as unknown as Subscription, stripeKey: 'sub_1' }));
      expect(wrongAggregate).toBeInstanceOf(ValidationError);
      expect(wrongAggregate.issues).toEqual([{ attribute: 'subscription', constraints: { isInstance: 'subscription must be a Subscription' } }]);

      const plainObject = await rejectionOf(
        ActivateSubscription.call({ subscription: { id: subscription.id, status: 'pending', version: 1 } as Subscription, stripeKey: 'sub_1' }),
      );
      expect(plainObject.issues).toEqual([{ attribute: 'subscription', constraints: { isInstance: 'subscription must be a Subscription' } }]);

      const optional = await rejectionOf(OpenWallet.call({ wallet: subscription as unknown as CommandWallet, owner: 'x' }));
      expect(optional.message).toBe('OpenWallet is invalid: wallet must be a CommandWallet');

      expect(steps).toEqual([]);
      expect(await countAllEvents()).toBe(eventsBefore);
      expect(subscription.status).toBe('pending');
    });

    test('unknown attributes are rejected, each one listed, before any rule is checked', async () => {
      const subscription = await createSubscription();
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(
        SpiedActivation.call({ subscription, stripeKey: '', status: 'active', duringBuild: undefined } as never),
      );

      expect(error).toBeInstanceOf(ValidationError);
      expect(error.issues).toEqual([
        { attribute: 'status', constraints: { unknownAttribute: 'status is not an attribute of SpiedActivation' } },
        { attribute: 'duringBuild', constraints: { unknownAttribute: 'duringBuild is not an attribute of SpiedActivation' } },
        { attribute: 'stripeKey', constraints: { isNotEmpty: 'stripeKey should not be empty' } },
      ]);
      // The unknown attribute was not assigned to the command (nor to the aggregate).
      expect(subscription.status).toBe('pending');
      expect(steps).toEqual([]);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
    });

    test('an unknown attribute alone is rejected even when everything else is valid', async () => {
      const subscription = await createSubscription();
      const error = await rejectionOf(ActivateSubscription.call({ subscription, stripeKey: 'sub_1', extra: undefined } as never));
      expect(error.message).toBe('ActivateSubscription is invalid: extra is not an attribute of ActivateSubscription');
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'pending', version: 1 });
    });

    test('validate() reports state problems with addError; runs only after the rules pass', async () => {
      const subscription = await createSubscription();
      const eventsBefore = await countEvents(dataSource);

      // Rules fail: validate does not run, only the rule is listed.
      const ruleError = await rejectionOf(StrictActivation.call({ subscription, stripeKey: '' }));
      expect(ruleError.issues).toEqual([{ attribute: 'stripeKey', constraints: { isNotEmpty: 'stripeKey should not be empty' } }]);
      expect(steps).toEqual([]);

      // Rules pass: validate runs, every addError is listed, nothing is built.
      const stateError = await rejectionOf(StrictActivation.call({ subscription, stripeKey: 'key_1' }));
      expect(stateError).toBeInstanceOf(ValidationError);
      expect(stateError.issues).toEqual([
        { attribute: 'subscription', constraints: { validate: 'must be active', hasKey: 'must have a stripe key' } },
        { attribute: 'stripeKey', constraints: { prefix: 'must start with sub_' } },
      ]);
      expect(stateError.messagesFor('subscription')).toEqual(['must be active', 'must have a stripe key']);
      expect(stateError.message).toBe('StrictActivation is invalid: must be active, must have a stripe key; must start with sub_');
      expect(steps).toEqual(['validate']);

      // Errors of a previous call do not leak into the next one.
      await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_x' }));
      steps.length = 0;
      const event = await StrictActivation.call({ subscription, stripeKey: 'sub_2' });
      expect(event!.version).toBe(3);
      expect(steps).toEqual(['validate', 'buildEvent']);
      expect(await countEvents(dataSource)).toBe(eventsBefore + 2);
    });

    test('validate() on the example command: a cancelled subscription cannot be activated', async () => {
      const subscription = await createSubscription();
      await CancelSubscription.call({ subscription, reason: 'moving' });
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(ActivateSubscription.call({ subscription, stripeKey: 'sub_1' }));

      expect(error.issues).toEqual([{ attribute: 'subscription', constraints: { notCancelled: 'a cancelled subscription cannot be activated' } }]);
      expect(error.message).toBe('ActivateSubscription is invalid: a cancelled subscription cannot be activated');
      expect(await countEvents(dataSource)).toBe(eventsBefore);
    });

    test('an async validate() is awaited: its errors stop the command', async () => {
      const subscription = await createSubscription();
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(ActivateSubscriptionLater.call({ subscription, stripeKey: 'test_123' }));
      expect(error).toBeInstanceOf(ValidationError);
      expect(error.issues).toEqual([{ attribute: 'stripeKey', constraints: { liveKey: 'test keys are not accepted' } }]);

      await CancelSubscription.call({ subscription, reason: 'gone' });
      const both = await rejectionOf(ActivateSubscriptionLater.call({ subscription, stripeKey: 'test_123' }));
      expect(both.message).toBe('ActivateSubscriptionLater is invalid: a cancelled subscription cannot be activated; test keys are not accepted');
      expect(await countEvents(dataSource)).toBe(eventsBefore + 1);
    });

    test('an async validate() that passes lets the command write', async () => {
      const subscription = await createSubscription();
      const event = await ActivateSubscriptionLater.call({ subscription, stripeKey: 'live_123' });
      expect(event).toMatchObject({ stripeKey: 'live_123', version: 2 });
      expect(subscription.status).toBe('active');
    });
  });

  describe('noop', () => {
    test('a second activation is a no-op: returns null, writes nothing, builds nothing', async () => {
      const subscription = await createSubscription();
      const first = await SpiedActivation.call({ subscription, stripeKey: 'sub_1' });
      expect(first!.version).toBe(2);
      steps.length = 0;
      committed.length = 0;
      const rowBefore = await subscriptionRow(dataSource, subscription.id);

      const second = await SpiedActivation.call({ subscription, stripeKey: 'sub_2' });

      expect(second).toBeNull();
      expect(steps).toEqual(['validate@2', 'noop@2']);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
      expect((await eventRows(dataSource, subscription.id)).map((row) => row.version)).toEqual([1, 2]);
      expect(subscription.stripeKey).toBe('sub_1');
      expect(committed).toEqual([]);
    });

    test('an async noop() is awaited', async () => {
      const subscription = await createSubscription();
      expect(await ActivateSubscriptionLater.call({ subscription, stripeKey: 'live_1' })).not.toBeNull();
      const eventsBefore = await countEvents(dataSource);

      expect(await ActivateSubscriptionLater.call({ subscription, stripeKey: 'live_2' })).toBeNull();
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ stripeKey: 'live_1', version: 2 });
    });

    test('steps run in order: validate, noop, buildEvent', async () => {
      const subscription = await createSubscription();
      await SpiedActivation.call({ subscription, stripeKey: 'sub_1' });
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1']);
    });
  });

  describe('several events', () => {
    test('buildEvent returning several events on one aggregate: saved in order, in one transaction', async () => {
      const subscription = await createSubscription();
      committed.length = 0;

      const events = await AddNotes.call({ subscription, notes: ['a', 'b', 'c'] });

      expect(events).toHaveLength(3);
      expect(events!.map((event) => [event.note, event.version])).toEqual([
        ['a', 2],
        ['b', 3],
        ['c', 4],
      ]);
      expect(new Set(events!.map((event) => event.txId)).size).toBe(1);
      expect(subscription).toMatchObject({ notes: ['a', 'b', 'c'], version: 4 });
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ notes: ['a', 'b', 'c'], version: 4 });
      expect(committed).toHaveLength(1);
      expect(committed[0]).toEqual(events);
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });

    test('several events on one aggregate: an invalid list is a ValidationError', async () => {
      const subscription = await createSubscription();
      const empty = await rejectionOf(AddNotes.call({ subscription, notes: [] }));
      expect(empty.message).toBe('AddNotes is invalid: notes should not be empty');
      const notStrings = await rejectionOf(AddNotes.call({ subscription, notes: ['a', 1 as unknown as string] }));
      expect(notStrings.issues).toEqual([{ attribute: 'notes', constraints: { isString: 'each value in notes must be a string' } }]);
    });

    test('buildEvent returning an array of one event returns an array of one saved event', async () => {
      const subscription = await createSubscription();

      const events = await AddNotes.call({ subscription, notes: ['only'] });

      expect(Array.isArray(events)).toBe(true);
      expect(events).toHaveLength(1);
      expect(events![0]).toBeInstanceOf(SubscriptionNoteAdded);
      expect(events![0]).toMatchObject({ note: 'only', version: 2 });
      expect(subscription.notes).toEqual(['only']);
    });

    test('two events on two aggregates: both written in one transaction', async () => {
      const subscription = await createSubscription();
      const wallet = await createWallet();
      committed.length = 0;

      const [activated, credited] = (await ActivateWithBonus.call({ subscription, wallet, stripeKey: 'sub_bonus', amount: 50 }))!;

      expect(activated).toMatchObject({ stripeKey: 'sub_bonus', version: 2, aggregateId: subscription.id });
      expect(credited).toMatchObject({ amount: 50, version: 2, aggregateId: wallet.id });
      expect(activated.txId).toBe(credited.txId);
      expect(subscription).toMatchObject({ status: 'active', version: 2 });
      expect(wallet).toMatchObject({ balance: 50, version: 2 });
      expect(await walletRow(wallet.id)).toMatchObject({ balance: 50, version: 2 });
      expect(committed).toEqual([[activated, credited]]);
    });

    test("atomic: the second event's apply throws, nothing is written, both instances are restored", async () => {
      const subscription = await createSubscription();
      const wallet = await createWallet();
      const subscriptionBefore = columnsOf(subscription);
      const walletBefore = structuredClone({ ...wallet });
      const subscriptionRowBefore = await subscriptionRow(dataSource, subscription.id);
      const walletRowBefore = await walletRow(wallet.id);
      const eventsBefore = await countAllEvents();
      committed.length = 0;

      const error = await rejectionOf(ActivateWithBonus.call({ subscription, wallet, stripeKey: 'sub_bonus', amount: -5 }));

      expect(error).toBeInstanceOf(EventApplyError);
      expect(error.message).toBe(`CommandWallet.Credited.apply failed on CommandWallet ${wallet.id}: cannot credit -5`);
      expect(await countAllEvents()).toBe(eventsBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(subscriptionRowBefore);
      expect(await walletRow(wallet.id)).toEqual(walletRowBefore);
      expect(columnsOf(subscription)).toEqual(subscriptionBefore);
      expect(subscription.status).toBe('pending');
      expect({ ...wallet }).toEqual(walletBefore);
      expect(committed).toEqual([]);
    });

    test('atomic on one aggregate: a failing event after a successful one writes neither', async () => {
      const subscription = await createSubscription();
      await CancelSubscription.call({ subscription, reason: 'first' });
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);

      class NoteThenCancel extends Command<AggregateEvent[]> {
        @Attribute() subscription!: Subscription;
        buildEvent() {
          return [
            SubscriptionNoteAdded.build({ subscription: this.subscription, note: 'must not survive' }),
            // Already cancelled: apply throws.
            SubscriptionCancelled.build({ subscription: this.subscription, reason: 'again' }),
          ];
        }
      }

      const error = await rejectionOf(NoteThenCancel.call({ subscription }));

      expect(error).toBeInstanceOf(EventApplyError);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(columnsOf(subscription)).toEqual(before);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ version: 2, notes: [], status: 'cancelled' });
    });

    test('buildEvent returning something that is not an event: EventSourcingConfigError', async () => {
      class Broken extends Command<AggregateEvent> {
        @Attribute() userId!: number;
        buildEvent() {
          return { userId: this.userId } as unknown as AggregateEvent;
        }
      }
      const error = await rejectionOf(Broken.call({ userId: 1 }));
      expect(error).toBeInstanceOf(EventSourcingConfigError);
      expect(error.message).toBe('Broken.buildEvent must return an event built with Event.build (or an array of them)');
    });
  });

  describe('errors of the write path pass through', () => {
    test('EventApplyError from apply passes through; nothing written, instance unchanged', async () => {
      const subscription = await createSubscription();
      await CancelSubscription.call({ subscription, reason: 'first' });
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(CancelSubscription.call({ subscription, reason: 'again' }));

      expect(error).toBeInstanceOf(EventApplyError);
      expect(error).toMatchObject({ eventType: 'Subscription.Cancelled', aggregateType: 'Subscription', aggregateId: subscription.id });
      expect(error.message).toBe(`Subscription.Cancelled.apply failed on Subscription ${subscription.id}: already cancelled`);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(columnsOf(subscription)).toEqual(before);
    });

    test('an error thrown by buildEvent passes through unchanged', async () => {
      const subscription = await createSubscription();
      const boom = new Error('no event today');
      SpiedActivation.duringBuild = async () => {
        throw boom;
      };
      expect(await rejectionOf(SpiedActivation.call({ subscription, stripeKey: 'sub_1' }))).toBe(boom);
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1']);
      expect(subscription.status).toBe('pending');
    });
  });

  describe('expected versions and conflicts', () => {
    test('{ expectedVersion } that does not match: ConcurrencyError, never retried, nothing written', async () => {
      const subscription = await createSubscription();
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(SpiedActivation.call({ subscription, stripeKey: 'sub_1' }, { expectedVersion: 5 }));

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ aggregateType: 'Subscription', aggregateId: subscription.id, expectedVersion: 5, actualVersion: 1, retryable: false });
      expect(error.message).toBe(`Subscription ${subscription.id}: expected version 5, but it is at version 1`);
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1']);
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(subscription).toMatchObject({ status: 'pending', version: 1 });
    });

    test('{ expectedVersion } on a stale instance: ConcurrencyError, not reloaded and not retried', async () => {
      const stale = await createSubscription();
      const other = await loadSubscription(dataSource, stale.id);
      await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: other, note: 'meanwhile' }));

      const error = await rejectionOf(SpiedActivation.call({ subscription: stale, stripeKey: 'sub_1' }, { expectedVersion: 1, retries: 5 }));

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ expectedVersion: 1, actualVersion: 2 });
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1']);
      expect(stale).toMatchObject({ version: 1, status: 'pending', notes: [] });
      expect((await eventRows(dataSource, stale.id)).map((row) => row.type)).toEqual(['Subscription.Created', 'Subscription.NoteAdded']);
    });

    test('a matching { expectedVersion } writes', async () => {
      const subscription = await createSubscription();
      await AddNotes.call({ subscription, notes: ['one'] });

      const event = await ActivateSubscription.call({ subscription, stripeKey: 'sub_1' }, { expectedVersion: 2 });

      expect(event!.version).toBe(3);
      expect(subscription).toMatchObject({ version: 3, status: 'active' });
    });

    test('{ expectedVersion: 0 } on a command that creates its aggregate writes', async () => {
      const wallet = new CommandWallet();
      const event = await OpenWallet.call({ wallet, owner: 'dora' }, { expectedVersion: 0 });
      expect(event!.version).toBe(1);
      expect(wallet).toMatchObject({ owner: 'dora', version: 1 });
    });

    test('{ expectedVersion } on a command that creates its aggregate: anything but 0 is a ConcurrencyError', async () => {
      const [{ count: before }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');

      const created = await rejectionOf(CreateSubscription.call({ userId: 3 }, { expectedVersion: 3 }));
      expect(created).toBeInstanceOf(ConcurrencyError);
      expect(created).toMatchObject({ aggregateType: 'Subscription', aggregateId: undefined, expectedVersion: 3, actualVersion: 0 });
      expect(created.message).toBe('Subscription (new): expected version 3, but it is at version 0');

      const opened = await rejectionOf(OpenWallet.call({ owner: 'eve' }, { expectedVersion: 1 }));
      expect(opened).toBeInstanceOf(ConcurrencyError);
      expect(opened).toMatchObject({ aggregateType: 'CommandWallet', expectedVersion: 1, actualVersion: 0 });

      const [{ count: after }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      expect(after).toBe(before);
      expect((await CreateSubscription.call({ userId: 3 }, { expectedVersion: 0 }))!.version).toBe(1);
    });

    test('a stale instance without expectedVersion: the command reloads and decides again on the fresh state', async () => {
      const stale = await createSubscription();
      const other = await loadSubscription(dataSource, stale.id);
      await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: other, note: 'meanwhile' }));

      const event = await SpiedActivation.call({ subscription: stale, stripeKey: 'sub_1' });

      expect(event!.version).toBe(3);
      // First attempt on the loaded version 1 conflicted; the second ran on the reloaded version 2.
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1', 'validate@2', 'noop@2', 'buildEvent@2']);
      expect(stale).toMatchObject({ version: 3, status: 'active', notes: ['meanwhile'] });
      expect(await es.verify(Subscription, { id: stale.id })).toEqual([]);
    });

    test('a stale instance whose fresh state makes the command a no-op: null after the reload', async () => {
      const stale = await createSubscription();
      const other = await loadSubscription(dataSource, stale.id);
      await ActivateSubscription.call({ subscription: other, stripeKey: 'sub_first' });

      expect(await SpiedActivation.call({ subscription: stale, stripeKey: 'sub_second' })).toBeNull();
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1', 'validate@2', 'noop@2']);
      expect(stale).toMatchObject({ status: 'active', stripeKey: 'sub_first', version: 2 });
      expect((await eventRows(dataSource, stale.id)).map((row) => row.data.stripeKey ?? null)).toEqual([null, 'sub_first']);
    });

    test('a stale instance whose fresh state is invalid: ValidationError after the reload', async () => {
      const stale = await createSubscription();
      const other = await loadSubscription(dataSource, stale.id);
      await CancelSubscription.call({ subscription: other, reason: 'gone' });

      const error = await rejectionOf(SpiedActivation.call({ subscription: stale, stripeKey: 'sub_1' }));

      expect(error).toBeInstanceOf(ValidationError);
      expect(error.message).toBe('SpiedActivation is invalid: a cancelled subscription cannot be activated');
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1', 'validate@2']);
      expect((await eventRows(dataSource, stale.id)).map((row) => row.type)).toEqual(['Subscription.Created', 'Subscription.Cancelled']);
    });

    test('{ retries: 0 } surfaces the first conflict', async () => {
      const stale = await createSubscription();
      const other = await loadSubscription(dataSource, stale.id);
      await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: other, note: 'meanwhile' }));

      const error = await rejectionOf(SpiedActivation.call({ subscription: stale, stripeKey: 'sub_1' }, { retries: 0 }));

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ aggregateId: stale.id, expectedVersion: 1, actualVersion: 2 });
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1']);
      expect(stale).toMatchObject({ version: 1, notes: [] });
    });

    test('retries are bounded: a conflict on every attempt surfaces after the default 3 retries', async () => {
      const subscription = await createSubscription();
      const meddler = await loadSubscription(dataSource, subscription.id);
      let meddled = 0;
      // Another writer gets in between every time the command has decided.
      SpiedNote.duringBuild = async () => {
        meddled += 1;
        await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: meddler, note: `meddle ${meddled}` }));
      };

      const error = await rejectionOf(SpiedNote.call({ subscription, note: 'mine' }));

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ expectedVersion: 4, actualVersion: 5 });
      expect(steps).toEqual(['buildEvent@1', 'buildEvent@2', 'buildEvent@3', 'buildEvent@4']);
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((row) => row.data.note ?? null)).toEqual([null, 'meddle 1', 'meddle 2', 'meddle 3', 'meddle 4']);
    });

    test('{ retries: 1 } gives up after one retry', async () => {
      const subscription = await createSubscription();
      const meddler = await loadSubscription(dataSource, subscription.id);
      SpiedNote.duringBuild = async () => {
        await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: meddler, note: 'meddle' }));
      };

      const error = await rejectionOf(SpiedNote.call({ subscription, note: 'mine' }, { retries: 1 }));

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(steps).toEqual(['buildEvent@1', 'buildEvent@2']);
    });

    test('a conflict that goes away is retried until it succeeds', async () => {
      const subscription = await createSubscription();
      const meddler = await loadSubscription(dataSource, subscription.id);
      let meddled = 0;
      SpiedNote.duringBuild = async () => {
        if (meddled >= 2) return;
        meddled += 1;
        await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: meddler, note: `meddle ${meddled}` }));
      };

      const event = await SpiedNote.call({ subscription, note: 'mine' });

      expect(event!.version).toBe(4);
      expect(steps).toEqual(['buildEvent@1', 'buildEvent@2', 'buildEvent@3']);
      expect(subscription.notes).toEqual(['meddle 1', 'meddle 2', 'mine']);
    });

    test('two commands locking two aggregates in opposite orders: the deadlock victim reloads and retries', async () => {
      const subscription = await createSubscription();
      const wallet = await createWallet();
      class NoteThenCredit extends Command<AggregateEvent[]> {
        @Attribute() subscription!: Subscription;
        @Attribute() wallet!: CommandWallet;
        buildEvent() {
          steps.push('NoteThenCredit');
          return [
            SubscriptionNoteAdded.build({ subscription: this.subscription, note: 'from A' }),
            CommandWalletCredited.build({ commandWallet: this.wallet, amount: 1 }),
          ];
        }
      }
      class CreditThenNote extends Command<AggregateEvent[]> {
        @Attribute() subscription!: Subscription;
        @Attribute() wallet!: CommandWallet;
        buildEvent() {
          steps.push('CreditThenNote');
          return [
            CommandWalletCredited.build({ commandWallet: this.wallet, amount: 10 }),
            SubscriptionNoteAdded.build({ subscription: this.subscription, note: 'from B' }),
          ];
        }
      }
      // A gate: each transaction, once it holds its first aggregate's row lock (at the UPDATE of
      // that row), waits until this test opens the gate, so both hold one lock and want the other.
      const gate = dataSource.createQueryRunner();
      await gate.connect();
      await gate.query('SELECT pg_advisory_lock(4242)');
      await dataSource.query(
        `CREATE FUNCTION command_test_gate() RETURNS trigger AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$ LANGUAGE plpgsql`,
      );
      await dataSource.query('CREATE TRIGGER command_test_gate BEFORE UPDATE ON subscription FOR EACH ROW EXECUTE FUNCTION command_test_gate()');
      await dataSource.query('CREATE TRIGGER command_test_gate BEFORE UPDATE ON command_wallet FOR EACH ROW EXECUTE FUNCTION command_test_gate()');
      try {
        const a = NoteThenCredit.call({ subscription: await loadSubscription(dataSource, subscription.id), wallet: await dataSource.manager.findOneByOrFail(CommandWallet, { id: wallet.id }) }).then(
          (result) => result,
          (error: unknown) => error,
        );
        const b = CreditThenNote.call({ subscription: await loadSubscription(dataSource, subscription.id), wallet }).then(
          (result) => result,
          (error: unknown) => error,
        );
        await waitUntil(async () => {
          const [{ count }] = await dataSource.query(
            `SELECT count(*)::int AS count FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          );
          return count === 2;
        }, 'both commands wait at the gate');
        await gate.query('SELECT pg_advisory_unlock(4242)');

        const [resultA, resultB] = await Promise.all([a, b]);

        expect(resultA).toHaveLength(2);
        expect(resultB).toHaveLength(2);
        // PostgreSQL aborted one of them (deadlock); that command reloaded and built again.
        expect(steps.length).toBeGreaterThan(2);
        expect((await eventRows(dataSource, subscription.id)).map((row) => row.version)).toEqual([1, 2, 3]);
        expect(await walletRow(wallet.id)).toMatchObject({ balance: 11, version: 3 });
        expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
        expect(await es.verify(CommandWallet, { id: wallet.id })).toEqual([]);
      } finally {
        await dataSource.query('DROP TRIGGER IF EXISTS command_test_gate ON subscription');
        await dataSource.query('DROP TRIGGER IF EXISTS command_test_gate ON command_wallet');
        await dataSource.query('DROP FUNCTION IF EXISTS command_test_gate()');
        await gate.release();
      }
    });

    test('10 concurrent identical activations of one subscription, each on its own loaded instance, write exactly one event', async () => {
      const subscription = await createSubscription();
      const instances = await Promise.all(Array.from({ length: 10 }, () => loadSubscription(dataSource, subscription.id)));
      committed.length = 0;

      const results = await Promise.all(instances.map((instance) => ActivateSubscription.call({ subscription: instance, stripeKey: 'sub_same' })));

      const written = results.filter((result) => result !== null);
      expect(written).toHaveLength(1);
      expect(written[0]).toMatchObject({ version: 2, stripeKey: 'sub_same' });
      expect(results.filter((result) => result === null)).toHaveLength(9);
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((row) => row.type)).toEqual(['Subscription.Created', 'Subscription.Activated']);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'active', version: 2 });
      // Every caller's instance shows the state its decision was made on: active at version 2.
      for (const instance of instances) expect(instance).toMatchObject({ status: 'active', version: 2, stripeKey: 'sub_same' });
      expect(committed).toHaveLength(1);
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });

    test('10 concurrent activations with different keys: exactly one wins, the others are no-ops', async () => {
      const subscription = await createSubscription();
      const instances = await Promise.all(Array.from({ length: 10 }, () => loadSubscription(dataSource, subscription.id)));

      const results = await Promise.all(
        instances.map((instance, index) => ActivateSubscriptionLater.call({ subscription: instance, stripeKey: `live_${index}` })),
      );

      const written = results.filter((result) => result !== null);
      expect(written).toHaveLength(1);
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((row) => row.data.stripeKey ?? null)).toEqual([null, written[0]!.stripeKey]);
    });

    test('concurrent multi-event commands on one aggregate: versions stay contiguous, each command atomic', async () => {
      const subscription = await createSubscription();
      const instances = await Promise.all(Array.from({ length: 4 }, () => loadSubscription(dataSource, subscription.id)));

      // Each writer retries at most 3 times (the default); 4 writers need at most 3 retries each.
      const results = await Promise.all(instances.map((instance, index) => AddNotes.call({ subscription: instance, notes: [`${index}a`, `${index}b`] })));

      expect(results.every((result) => result !== null && result.length === 2)).toBe(true);
      const rows = await eventRows(dataSource, subscription.id);
      expect(rows.map((row) => row.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // Each command's two notes are adjacent.
      const notes = rows.slice(1).map((row) => row.data.note as string);
      for (let i = 0; i < notes.length; i += 2) expect(notes[i + 1]).toBe(`${notes[i][0]}b`);
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });
  });

  describe('{ manager }', () => {
    test('inside a user transaction: the command commits with it', async () => {
      const subscription = await createSubscription();
      committed.length = 0;

      const event = await dataSource.transaction(async (manager) => {
        const activated = await ActivateSubscription.call({ subscription, stripeKey: 'sub_tx' }, { manager });
        // Not visible outside the transaction yet.
        expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'pending', version: 1 });
        expect(committed).toEqual([]);
        await manager.save(SubscriptionNoteAdded.build({ subscription, note: 'same tx' }));
        return activated;
      });

      expect(event!.version).toBe(2);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'active', version: 3, notes: ['same tx'] });
      expect(committed).toHaveLength(1);
      expect(committed[0].map((written) => written.version)).toEqual([2, 3]);
    });

    test('inside a user transaction: the command rolls back with it, the instance is restored', async () => {
      const subscription = await createSubscription();
      const before = columnsOf(subscription);
      const eventsBefore = await countEvents(dataSource);
      committed.length = 0;

      await expect(
        dataSource.transaction(async (manager) => {
          await ActivateSubscription.call({ subscription, stripeKey: 'sub_tx' }, { manager });
          await AddNotes.call({ subscription, notes: ['x', 'y'] }, { manager });
          expect(subscription).toMatchObject({ status: 'active', version: 4, notes: ['x', 'y'] });
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');

      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'pending', version: 1, notes: [] });
      expect(columnsOf(subscription)).toEqual(before);
      expect(committed).toEqual([]);
    });

    test('inside a user transaction a conflict is not retried (the transaction decides)', async () => {
      const stale = await createSubscription();
      const other = await loadSubscription(dataSource, stale.id);
      await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription: other, note: 'meanwhile' }));

      const error = await rejectionOf(
        dataSource.transaction((manager) => SpiedActivation.call({ subscription: stale, stripeKey: 'sub_1' }, { manager })),
      );

      expect(error).toBeInstanceOf(ConcurrencyError);
      expect(error).toMatchObject({ expectedVersion: 1, actualVersion: 2 });
      expect(steps).toEqual(['validate@1', 'noop@1', 'buildEvent@1']);
      expect(stale).toMatchObject({ version: 1, status: 'pending' });
    });

    test('a failing multi-event command inside a user transaction rolls back only its own events', async () => {
      const subscription = await createSubscription();
      const wallet = await createWallet();

      await dataSource.transaction(async (manager) => {
        await AddNotes.call({ subscription, notes: ['kept'] }, { manager });
        const error = await rejectionOf(ActivateWithBonus.call({ subscription, wallet, stripeKey: 'sub_1', amount: 0 }, { manager }));
        expect(error).toBeInstanceOf(EventApplyError);
        expect(subscription).toMatchObject({ status: 'pending', version: 2, notes: ['kept'] });
        expect(wallet).toMatchObject({ balance: 0, version: 1 });
      });

      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'pending', version: 2, notes: ['kept'] });
      expect(await walletRow(wallet.id)).toMatchObject({ balance: 0, version: 1 });
    });

    test("the DataSource's own manager (no transaction) behaves like no manager", async () => {
      const subscription = await createSubscription();
      const event = await ActivateSubscription.call({ subscription, stripeKey: 'sub_m' }, { manager: dataSource.manager });
      expect(event!.version).toBe(2);
      expect(await subscriptionRow(dataSource, subscription.id)).toMatchObject({ status: 'active' });
    });
  });

  describe('several DataSources', () => {
    let second: DataSource;
    let secondEs: EventSourcing;

    beforeAll(async () => {
      second = await testDataSource('commands_second', subscriptionEntities);
    });

    afterAll(async () => {
      await secondEs?.close();
      await second?.destroy();
    });

    test('a manager whose DataSource has no EventSourcing: EventSourcingConfigError', async () => {
      const error = await rejectionOf(CreateSubscription.call({ userId: 1 }, { manager: second.manager }));
      expect(error).toBeInstanceOf(EventSourcingConfigError);
      expect(error.message).toBe('no EventSourcing is attached to the DataSource of the given manager: call EventSourcing.attach first');
    });

    test('two attached DataSources and no manager: EventSourcingConfigError; with a manager, the right database', async () => {
      secondEs = await EventSourcing.attach(second);
      const eventsBefore = await countEvents(dataSource);

      const error = await rejectionOf(CreateSubscription.call({ userId: 1 }));
      expect(error).toBeInstanceOf(EventSourcingConfigError);
      expect(error.message).toBe('2 DataSources have EventSourcing attached: pass { manager } to say which one');

      const event = await CreateSubscription.call({ userId: 99 }, { manager: second.manager });
      expect(await countEvents(second)).toBe(1);
      expect(await subscriptionRow(second, event!.aggregateId)).toMatchObject({ userId: 99 });
      expect(await countEvents(dataSource)).toBe(eventsBefore);

      // Retries reload from the manager's own database.
      const stale = await loadSubscription(second, event!.aggregateId);
      const other = await loadSubscription(second, event!.aggregateId);
      await second.manager.save(SubscriptionNoteAdded.build({ subscription: other, note: 'meanwhile' }));
      const activated = await ActivateSubscription.call({ subscription: stale, stripeKey: 'sub_2nd' }, { manager: second.manager });
      expect(activated!.version).toBe(3);
      expect(stale).toMatchObject({ notes: ['meanwhile'], status: 'active' });
    });
  });
});
