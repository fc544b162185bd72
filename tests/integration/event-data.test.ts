import { unstorableValues } from '../support/unstorable-values';
import type { DataSource } from 'typeorm';
import {
  AggregateEvent,
  EventSourcing,
  InvalidEventDataError,
  UnknownEventAttributeError,
  UnknownEventTypeError,
} from 'typeorm-event-sourcing';
import { testDataSource } from '../support/database';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCreated,
  SubscriptionEvent,
  SubscriptionNoteAdded,
  subscriptionEntities,
} from '../support/subscription-model';
import { rejectionOf } from '../support/rejection';
import { columnsOf, countEvents, eventRows, loadSubscription, subscriptionRow } from '../support/write-path-lint';

describe('event data', () => {
  let dataSource: DataSource;
  let es: EventSourcing;

  async function createSubscription(userId = 1): Promise<Subscription> {
    const created = await dataSource.manager.save(SubscriptionCreated.build({ userId }));
    return loadSubscription(dataSource, created.aggregateId);
  }

  beforeAll(async () => {
    dataSource = await testDataSource('event_data', subscriptionEntities);
    es = await EventSourcing.attach(dataSource);
  });

  afterAll(async () => {
    await es?.close();
    await dataSource?.destroy();
  });

  describe('round trips', () => {
    test('a Date, a null Date and an absent Date come back typed and equal through es.history', async () => {
      const subscription = await createSubscription();
      const trialEndsAt = new Date('2030-01-02T03:04:05.678Z');
      await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_date', trialEndsAt }));
      await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_null', trialEndsAt: null }));
      await dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'sub_absent' }));

      const [, withDate, withNull, without] = (await es.history(Subscription, subscription.id)) as SubscriptionActivated[];

      expect(withDate).toBeInstanceOf(SubscriptionActivated);
      expect(withDate.trialEndsAt).toBeInstanceOf(Date);
      expect(withDate.trialEndsAt!.getTime()).toBe(trialEndsAt.getTime());
      expect(withDate.stripeKey).toBe('sub_date');
      expect(withNull.trialEndsAt).toBeNull();
      expect(without.trialEndsAt).toBeUndefined();

      const rows = await eventRows(dataSource, subscription.id);
      expect(rows[1].data).toEqual({ stripeKey: 'sub_date', trialEndsAt: '2030-01-02T03:04:05.678Z' });
      expect(rows[2].data).toEqual({ stripeKey: 'sub_null', trialEndsAt: null });
      expect(rows[3].data).toEqual({ stripeKey: 'sub_absent' });
    });

    test('a nested plain object with numbers, booleans, strings and arrays comes back equal, with its types', async () => {
      const subscription = await createSubscription();
      const details = {
        tags: ['vip', 'émigré', '🎉', 'quote " and \\ backslash', ''],
        at: '2024-05-06T07:08:09.000Z',
        nested: { level: -12.75, ok: false },
      };
      await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'with details', details }));
      await dataSource.manager.save(
        SubscriptionNoteAdded.build({ subscription, note: 'big', details: { tags: [], at: '', nested: { level: Number.MAX_SAFE_INTEGER, ok: true } } }),
      );

      const [, first, second] = (await es.history(Subscription, subscription.id)) as SubscriptionNoteAdded[];

      expect(first.details).toEqual(details);
      expect(typeof first.details!.nested.level).toBe('number');
      expect(typeof first.details!.nested.ok).toBe('boolean');
      expect(typeof first.details!.at).toBe('string');
      expect(second.details!.nested).toEqual({ level: Number.MAX_SAFE_INTEGER, ok: true });
      const [stored] = await dataSource.query(`SELECT jsonb_typeof(data->'details'->'nested'->'level') AS level, jsonb_typeof(data->'details'->'nested'->'ok') AS ok FROM subscription_events WHERE id = $1`, [first.id]);
      expect(stored).toEqual({ level: 'number', ok: 'boolean' });
    });

    test('numbers of the created event and metadata of every kind round-trip', async () => {
      const created = await dataSource.manager.save(
        SubscriptionCreated.build({
          userId: 0,
          metadata: {
            integer: 33456,
            negative: -7,
            float: 0.1,
            yes: true,
            no: false,
            nothing: null,
            text: 'multi\nline',
            list: [1, 'two', false, null, { three: 3 }],
            deep: { deeper: { deepest: ['x'] } },
            when: '2029-12-31T23:59:59.999Z',
          },
        }),
      );

      const [loaded] = await es.history(Subscription, created.aggregateId);

      expect((loaded as SubscriptionCreated).userId).toBe(0);
      expect(loaded.metadata).toEqual({
        integer: 33456,
        negative: -7,
        float: 0.1,
        yes: true,
        no: false,
        nothing: null,
        text: 'multi\nline',
        list: [1, 'two', false, null, { three: 3 }],
        deep: { deeper: { deepest: ['x'] } },
        when: '2029-12-31T23:59:59.999Z',
      });
      expect(await subscriptionRow(dataSource, created.aggregateId)).toMatchObject({ userId: 0 });
    });

    test('a Date nested in metadata or data would read back as a string: refused with its path, nothing written', async () => {
      const subscription = await createSubscription();
      const eventsBefore = await countEvents(dataSource);
      const inMetadata = await rejectionOf(
        dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'x', metadata: { audit: { at: new Date() } } })),
      );
      expect(inMetadata).toBeInstanceOf(InvalidEventDataError);
      expect(inMetadata.message).toBe(
        'Subscription.NoteAdded: metadata.audit.at is a Date, which would read back as a string: store date.toISOString(), or make it a top-level @Data({ type: () => Date })',
      );
      const inData = await rejectionOf(
        dataSource.manager.save(
          SubscriptionNoteAdded.build({ subscription, note: 'x', details: { tags: [], at: new Date() as unknown as string, nested: { level: 1, ok: true } } }),
        ),
      );
      expect(inData).toBeInstanceOf(InvalidEventDataError);
      expect(inData.attribute).toBe('details.at');
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await es.verify(Subscription, { id: subscription.id })).toEqual([]);
    });

    test('the loaded event equals the written one: ids, version, createdAt, position, txId, schemaVersion', async () => {
      const subscription = await createSubscription();
      const written = await dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'same', metadata: { by: 'me' } }));

      const [, loaded] = await es.history(Subscription, subscription.id);
      const viaFind = await dataSource.manager.findOneByOrFail(SubscriptionEvent, { id: written.id });

      for (const event of [loaded, viaFind]) {
        expect(event).toBeInstanceOf(SubscriptionNoteAdded);
        expect(event).toMatchObject({
          id: written.id,
          aggregateId: subscription.id,
          version: 2,
          type: 'Subscription.NoteAdded',
          schemaVersion: 1,
          position: written.position,
          txId: written.txId,
          note: 'same',
          metadata: { by: 'me' },
        });
        expect(event.createdAt.getTime()).toBe(written.createdAt.getTime());
      }
    });
  });

  describe('rejected values: InvalidEventDataError naming type and attribute, nothing written', () => {
    type Placement = [string, (value: unknown, subscription: Subscription) => AggregateEvent, string];
    const placements: Placement[] = [
      ['in data', (value, subscription) => SubscriptionNoteAdded.build({ subscription, note: 'n', details: value as never }), 'details'],
      [
        'in nested data',
        (value, subscription) =>
          SubscriptionNoteAdded.build({ subscription, note: 'n', details: { tags: [], at: 'x', nested: { level: value, ok: true } } as never }),
        'details.nested.level',
      ],
      [
        'in an array in data',
        (value, subscription) => SubscriptionNoteAdded.build({ subscription, note: 'n', details: { tags: ['ok', value] } as never }),
        'details.tags[1]',
      ],
      ['in metadata', (value, subscription) => SubscriptionNoteAdded.build({ subscription, note: 'n', metadata: { key: value } }), 'metadata.key'],
      [
        'in nested metadata',
        (value, subscription) => SubscriptionNoteAdded.build({ subscription, note: 'n', metadata: { outer: { inner: [value] } } }),
        'metadata.outer.inner[0]',
      ],
    ];
    const cases = unstorableValues.flatMap(([kind, make, suffix, reason]) =>
      placements.map(([where, build, path]) => [kind, where, make, build, `${path}${suffix}`, reason] as const),
    );

    let subscription: Subscription;
    let rowBefore: Record<string, unknown> | undefined;
    let eventsBefore: number;

    beforeAll(async () => {
      subscription = await createSubscription(77);
      rowBefore = await subscriptionRow(dataSource, subscription.id);
      eventsBefore = await countEvents(dataSource);
    });

    afterEach(async () => {
      expect(await countEvents(dataSource)).toBe(eventsBefore);
      expect(await subscriptionRow(dataSource, subscription.id)).toEqual(rowBefore);
    });

    test.each(cases)('%s %s', async (_kind, _where, make, build, path, reason) => {
      const before = columnsOf(subscription);

      const error = await rejectionOf(dataSource.manager.save(build(make(), subscription)));

      expect(error).toBeInstanceOf(InvalidEventDataError);
      expect(error).toMatchObject({ eventType: 'Subscription.NoteAdded', attribute: path, code: 'INVALID_EVENT_DATA' });
      expect(error.message).toContain(`Subscription.NoteAdded: ${path} ${reason}`);
      expect(columnsOf(subscription)).toEqual(before);
    });

    test('the same through es.append and for an event that would create its aggregate', async () => {
      const appended = await rejectionOf(es.append(SubscriptionNoteAdded.build({ subscription, note: 'n', metadata: { score: Number.NaN } })));
      expect(appended).toBeInstanceOf(InvalidEventDataError);
      expect(appended.message).toBe('Subscription.NoteAdded: metadata.score is NaN, which JSON cannot store');

      const [{ count: aggregatesBefore }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      const creating = await rejectionOf(dataSource.manager.save(SubscriptionCreated.build({ userId: Number.POSITIVE_INFINITY })));
      expect(creating).toBeInstanceOf(InvalidEventDataError);
      expect(creating.message).toBe('Subscription.Created: userId is Infinity, which JSON cannot store');
      const fresh = new Subscription();
      const creatingFromInstance = await rejectionOf(dataSource.manager.save(SubscriptionCreated.build({ subscription: fresh, userId: Number.NaN })));
      expect(creatingFromInstance).toBeInstanceOf(InvalidEventDataError);
      expect(fresh.id).toBeUndefined();
      const [{ count: aggregatesAfter }] = await dataSource.query('SELECT count(*)::int AS count FROM subscription');
      expect(aggregatesAfter).toBe(aggregatesBefore);
    });

    test('a wrong scalar type: a number where a string is declared, a string where a number or a Date is', async () => {
      const note = await rejectionOf(dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 42 as never })));
      expect(note).toBeInstanceOf(InvalidEventDataError);
      expect(note).toMatchObject({ eventType: 'Subscription.NoteAdded', attribute: 'note' });
      expect(note.message).toBe('Subscription.NoteAdded: note is a number, but is declared as string');

      const userId = await rejectionOf(dataSource.manager.save(SubscriptionCreated.build({ userId: '5' as never })));
      expect(userId.message).toBe('Subscription.Created: userId is a string, but is declared as number');

      const trial = await rejectionOf(
        dataSource.manager.save(SubscriptionActivated.build({ subscription, stripeKey: 'k', trialEndsAt: '2030-01-01' as never })),
      );
      expect(trial).toBeInstanceOf(InvalidEventDataError);
      expect(trial.message).toBe('Subscription.Activated: trialEndsAt is a string, but is declared as Date');
    });

    test('metadata that is not a plain object: an array, a Map, a string', async () => {
      for (const metadata of [[1, 2], new Map(), 'text']) {
        const error = await rejectionOf(dataSource.manager.save(SubscriptionNoteAdded.build({ subscription, note: 'n', metadata: metadata as never })));
        expect(error).toBeInstanceOf(InvalidEventDataError);
        expect(error).toMatchObject({ eventType: 'Subscription.NoteAdded', attribute: 'metadata' });
        expect(error.message).toBe('Subscription.NoteAdded: metadata must be a plain object');
      }
    });

    test('build with an unknown attribute, __proto__ from JSON.parse included: UnknownEventAttributeError', () => {
      const unknown = (() => {
        try {
          // @ts-expect-error an unknown key is a compile error; JavaScript callers meet the run-time check
          SubscriptionNoteAdded.build({ subscription, note: 'n', colour: 'red' });
        } catch (error) {
          return error as UnknownEventAttributeError;
        }
        throw new Error('build accepted an unknown attribute');
      })();
      expect(unknown).toBeInstanceOf(UnknownEventAttributeError);
      expect(unknown).toMatchObject({ eventType: 'Subscription.NoteAdded', attribute: 'colour', code: 'UNKNOWN_EVENT_ATTRIBUTE' });
      expect(unknown.message).toBe(
        "Subscription.NoteAdded.build: unknown attribute 'colour' (accepted: subscription, note, details, metadata)",
      );

      const attributes = JSON.parse('{"note": "n", "__proto__": 1}');
      expect(() => SubscriptionNoteAdded.build(attributes)).toThrow(UnknownEventAttributeError);
      expect(() => SubscriptionNoteAdded.build(attributes)).toThrow("unknown attribute '__proto__'");

      const polluting = JSON.parse('{"note": "n", "__proto__": {"polluted": true}}');
      expect(() => SubscriptionNoteAdded.build(polluting)).toThrow("Subscription.NoteAdded.build: unknown attribute '__proto__'");
      expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    });

    test('build with something else than a Subscription as the aggregate: InvalidEventDataError', () => {
      // @ts-expect-error an aggregate of the wrong type is a compile error; JavaScript callers meet the run-time check
      expect(() => SubscriptionNoteAdded.build({ subscription: { id: subscription.id }, note: 'n' })).toThrow(
        new InvalidEventDataError('Subscription.NoteAdded', 'subscription', 'must be a Subscription instance'),
      );
      // @ts-expect-error as above
      expect(() => SubscriptionNoteAdded.build({ subscription: { id: subscription.id }, note: 'n' })).toThrow(
        'Subscription.NoteAdded: subscription must be a Subscription instance',
      );
    });
  });

  describe('stored rows that do not fit their class', () => {
    /** A row written behind the library's back: raw SQL INSERT (the trigger only refuses UPDATE and DELETE). */
    async function insertRaw(subscriptionId: number, version: number, type: string, data: string): Promise<number> {
      const [{ id }] = await dataSource.query(
        `INSERT INTO subscription_events (subscription_id, version, type, data, metadata, created_at) VALUES ($1, $2, $3, $4::jsonb, '{}', now()) RETURNING id`,
        [subscriptionId, version, type, data],
      );
      return Number(id);
    }

    // First: the rows this block writes make every unfiltered read of the events table fail, and
    // this test reads the whole table.
    test('an unknown stored type: es.history and manager.find reject with UnknownEventTypeError', async () => {
      const subscription = await createSubscription();
      const id = await insertRaw(subscription.id, 2, 'Subscription.Nope', '{"whatever": true}');
      const message = `subscription_events row ${id} has type 'Subscription.Nope', which no @EventType class registers`;

      const fromHistory = await rejectionOf(es.history(Subscription, subscription.id));
      expect(fromHistory).toBeInstanceOf(UnknownEventTypeError);
      expect(fromHistory).toMatchObject({ table: 'subscription_events', eventId: id, eventType: 'Subscription.Nope', code: 'UNKNOWN_EVENT_TYPE' });
      expect(fromHistory.message).toBe(message);

      const fromFind = await rejectionOf(dataSource.manager.find(SubscriptionEvent));
      expect(fromFind).toBeInstanceOf(UnknownEventTypeError);
      expect(fromFind.message).toBe(message);

      const fromRelation = await rejectionOf(
        dataSource.manager.findOne(Subscription, { where: { id: subscription.id }, relations: { events: true } }),
      );
      expect(fromRelation).toBeInstanceOf(UnknownEventTypeError);
      expect(fromRelation.message).toBe(message);

      const fromVerify = await rejectionOf(es.verify(Subscription, { id: subscription.id }));
      expect(fromVerify).toBeInstanceOf(UnknownEventTypeError);

      // A query for a known type does not read the row and still works.
      const notes = await dataSource.manager.find(SubscriptionNoteAdded, { where: { aggregateId: subscription.id } });
      expect(notes).toEqual([]);
    });

    test('stored data of the wrong shape raises InvalidEventDataError on load', async () => {
      const badDate = await createSubscription();
      await insertRaw(badDate.id, 2, 'Subscription.Activated', '{"stripeKey": "k", "trialEndsAt": "someday"}');
      const badDateError = await rejectionOf(es.history(Subscription, badDate.id));
      expect(badDateError).toBeInstanceOf(InvalidEventDataError);
      expect(badDateError.message).toBe('Subscription.Activated: trialEndsAt is stored as a string, which is not a Date');

      const badScalar = await createSubscription();
      await insertRaw(badScalar.id, 2, 'Subscription.NoteAdded', '{"note": 5}');
      const badScalarError = await rejectionOf(es.history(Subscription, badScalar.id));
      expect(badScalarError).toBeInstanceOf(InvalidEventDataError);
      expect(badScalarError.message).toBe('Subscription.NoteAdded: note is stored as a number, but is declared as string');

      const notAnObject = await createSubscription();
      await insertRaw(notAnObject.id, 2, 'Subscription.NoteAdded', '["note"]');
      const notAnObjectError = await rejectionOf(es.history(Subscription, notAnObject.id));
      expect(notAnObjectError).toBeInstanceOf(InvalidEventDataError);
      expect(notAnObjectError.message).toBe('Subscription.NoteAdded: data is an array, but must be a JSON object');
    });

    test('undeclared stored keys, __proto__ included, are ignored on load', async () => {
      const subscription = await createSubscription();
      await insertRaw(subscription.id, 2, 'Subscription.NoteAdded', '{"note": "kept", "extra": 1, "__proto__": {"polluted": true}}');

      const [, loaded] = (await es.history(Subscription, subscription.id)) as SubscriptionNoteAdded[];
      expect(loaded.note).toBe('kept');
      expect((loaded as unknown as { extra?: number }).extra).toBeUndefined();
      expect((loaded as unknown as { polluted?: boolean }).polluted).toBeUndefined();
      expect(Object.getPrototypeOf(loaded)).toBe(SubscriptionNoteAdded.prototype);
    });

  });
});
