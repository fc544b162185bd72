import { randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { QueryFailedError, type DataSource } from 'typeorm';
import {
  AggregateEvent,
  AggregateNotFoundError,
  AggregateRequiredError,
  ConcurrencyError,
  Dispatcher,
  EventAlreadyWrittenError,
  EventSourcing,
  EventSourcingConfigError,
  EventSourcingError,
  ImmutableEventError,
  InvalidEventDataError,
  UnknownEventAttributeError,
  UsageError,
} from 'typeorm-event-sourcing';
import { resetEventStore } from 'typeorm-event-sourcing/testing';
import { AddNotes, CommandWallet, commandEntities } from '../support/command-models';
import {
  BadInputLedgerCredited,
  BadInputLedgerOpened,
  CreateNothing,
  NoteNothing,
  badInputLedgerEntities,
} from '../support/bad-input-models';
import { testDataSource } from '../support/database';
import { recordFigure } from '../support/figures';
import { rejectionOf } from '../support/rejection';
import {
  Subscription,
  SubscriptionActivated,
  SubscriptionCreated,
  SubscriptionEvent,
  SubscriptionNoteAdded,
  subscriptionEntities,
} from '../support/subscription-model';
import { columnsOf, loadSubscription, subscriptionRow } from '../support/write-path-lint';

/**
 * The "bad input" table: one bad call per row against real PostgreSQL (and Redis for the queue),
 * each refused with an exported error class whose message names what is at fault, and not one
 * aggregate, event or outbox row written anywhere. Rows that write to an existing aggregate also
 * leave the caller's instance and the row as they were.
 */

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6380';
// Claims of a queue name outlive a crashed run by a minute: a name per run never meets them.
const queueName = `bad-input-${randomUUID().slice(0, 8)}`;

/** Attached with a Redis queue; every Subscription event gets one outbox row (no worker runs, and rows stay until their jobs complete). */
let main: DataSource;
let es: EventSourcing;
/** TypeORM told to drop undefined and null from where clauses instead of throwing. */
let lenient: DataSource;
let lenientEs: EventSourcing;
/** The ledger model, attached by no DataSource except briefly by the attach rows. */
let spare: DataSource;
/** The ledger model without BadInputLedgerCredited in its entities. */
let partial: DataSource;

let tried = 0;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let rowsChanged = 0;

function badInputReactor(): void {
  // Never runs: no worker is started; its outbox rows are what the counts see.
}

beforeAll(async () => {
  [main, lenient, spare, partial] = await Promise.all([
    testDataSource('bad_input', commandEntities),
    testDataSource('bad_input_lenient', subscriptionEntities, { invalidWhereValuesBehavior: { undefined: 'ignore', null: 'ignore' } }),
    testDataSource('bad_input_spare', badInputLedgerEntities),
    testDataSource('bad_input_partial', badInputLedgerEntities.filter((entity) => entity !== BadInputLedgerCredited)),
  ]);
  es = await EventSourcing.attach(main, {
    dispatcher: new Dispatcher().on(SubscriptionEvent, { async: badInputReactor }),
    queue: { connection: redisUrl, name: queueName, keepOutboxUntil: 'completed', closeTimeout: 2000 },
  });
  lenientEs = await EventSourcing.attach(lenient);
  // Events of two aggregates: a where clause that lost its id would return both histories.
  for (const userId of [1, 2]) {
    const created = await lenient.manager.save(SubscriptionCreated.build({ userId }));
    await lenient.manager.save(SubscriptionNoteAdded.build({ subscription: await loadSubscription(lenient, created.aggregateId), note: `n${userId}` }));
  }
});

afterAll(async () => {
  recordFigure('bad inputs tried', tried);
  recordFigure('rows changed by bad input', rowsChanged);
  await es?.queue.obliterate({ force: true }).catch(() => undefined);
  await es?.close();
  await lenientEs?.close();
  await Promise.all([main, lenient, spare, partial].map((dataSource) => dataSource?.destroy()));
});

// Counting.

interface Counts {
  aggregates: number;
  events: number;
  outbox: number;
}

/** Aggregate, event and outbox rows of one database, its tables read from the DataSource's entities. */
async function countsOf(dataSource: DataSource): Promise<Counts> {
  const tables = (kind: 'events' | 'aggregates') =>
    dataSource.entityMetadatas
      .filter((metadata) => metadata.tableType !== 'entity-child')
      .filter((metadata) => ((metadata.target as Function).prototype instanceof AggregateEvent) === (kind === 'events'))
      .map((metadata) => `(SELECT count(*)::int FROM "${metadata.tableName}")`);
  // A database nobody attached to has no outbox table: counted through query_to_xml, which parses only when run.
  const outbox = `CASE WHEN to_regclass('es_outbox') IS NULL THEN 0 ELSE (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM es_outbox', false, true, '')))[1]::text::int END`;
  const [row] = await dataSource.query(
    `SELECT ${tables('aggregates').join(' + ')} AS aggregates, ${tables('events').join(' + ')} AS events, ${outbox} AS outbox`,
  );
  return row;
}

async function allCounts(): Promise<Counts[]> {
  return Promise.all([main, lenient, spare, partial].map(countsOf));
}

/** How many rows differ from `before` beyond what the row was allowed to write in `main`. */
function changedRows(before: Counts[], after: Counts[], allowed: Partial<Counts> = {}): number {
  let changed = 0;
  before.forEach((counts, index) => {
    for (const key of ['aggregates', 'events', 'outbox'] as const) {
      const expected = counts[key] + (index === 0 ? (allowed[key] ?? 0) : 0);
      changed += Math.abs(after[index][key] - expected);
    }
  });
  return changed;
}

// The table.

interface Ctx {
  /** A subscription written for this row (version 1), loaded fresh. */
  subscription: Subscription;
}

type ErrorClass = abstract new (...args: any[]) => Error;

interface BadCall {
  name: string;
  call: (ctx: Ctx) => unknown;
  /** The refusal, or `returns` for a call that must do nothing and return it. */
  error?: ErrorClass;
  returns?: unknown;
  /** The exact message, or the parts it must contain. */
  message?: string | string[] | ((ctx: Ctx) => string | string[]);
  /** Parts the message must not contain (a password, say). */
  absent?: string[];
  /** Whether the call writes to ctx.subscription, whose instance and row must then be unchanged. */
  writes?: boolean;
  /** Rows of the main database the call may add besides its refusal (the one save of two that wins). */
  allowed?: Partial<Counts>;
  /** Checks of the outcome beyond the table's. */
  then?: (ctx: Ctx, error: any) => Promise<void> | void;
}

async function newSubscription(userId = 1): Promise<Subscription> {
  const created = await main.manager.save(SubscriptionCreated.build({ userId }));
  return loadSubscription(main, created.aggregateId);
}

const note = (subscription: Subscription, extra: Record<string, unknown> = {}) =>
  SubscriptionNoteAdded.build({ subscription, note: 'bad input', ...extra } as any);
const saveNote = (ctx: Ctx, extra: Record<string, unknown> = {}) => main.manager.save(note(ctx.subscription, extra));

const requiredLater = '(declare @Data({ optional: true }) for an attribute that may be left out)';
const onlyPlain = 'only plain objects, arrays, strings, finite numbers, booleans, null and Dates are stored';
const notBuilt =
  'Subscription.NoteAdded: event was not made by SubscriptionNoteAdded.build(): build() checks and keeps its @Data attributes, which manager.create() and new leave out';
const noTransaction =
  'Subscription.NoteAdded: transaction is missing: manager.insert(event) and save(event, { transaction: false }) write without one, but an event and its aggregate are written together: use manager.save(event) or es.append(event), or insert inside manager.transaction()';

class Money {
  constructor(readonly cents = 5) {}
}

function nested(levels: number, wrap: (inner: unknown) => unknown): unknown {
  let value: unknown = 'bottom';
  for (let level = 0; level < levels; level += 1) value = wrap(value);
  return value;
}

function circular(): Record<string, unknown> {
  const object: Record<string, unknown> = { name: 'loop' };
  object.self = object;
  return object;
}

/** A refused value in data (`details`, an untyped object) or in metadata, with its path and reason. */
const unstorable: [where: 'data' | 'metadata', kind: string, value: () => unknown, path: string, reason: string][] = [
  ['data', 'NaN', () => ({ v: Number.NaN }), 'details.v', 'is NaN, which JSON cannot store'],
  ['metadata', 'Infinity', () => ({ v: Number.POSITIVE_INFINITY }), 'metadata.v', 'is Infinity, which JSON cannot store'],
  ['data', '-Infinity', () => ({ v: [1, Number.NEGATIVE_INFINITY] }), 'details.v[1]', 'is -Infinity, which JSON cannot store'],
  ['data', '-0', () => ({ v: -0 }), 'details.v', 'is -0, which JSON stores as 0'],
  ['metadata', '-0', () => ({ v: { w: -0 } }), 'metadata.v.w', 'is -0, which JSON stores as 0'],
  ['metadata', 'a BigInt', () => ({ v: BigInt(9) }), 'metadata.v', 'is a BigInt, which JSON cannot store (use a string)'],
  ['data', 'a BigInt', () => ({ v: 2n ** 70n }), 'details.v', 'is a BigInt, which JSON cannot store (use a string)'],
  ['data', 'a NUL in a string', () => ({ v: 'a\u0000b' }), 'details.v', 'contains a NUL character, which jsonb cannot store'],
  ['metadata', 'a NUL in a string', () => ({ v: '\u0000' }), 'metadata.v', 'contains a NUL character, which jsonb cannot store'],
  ['data', 'a NUL in a key', () => ({ v: { 'a\u0000b': 1 } }), 'details.v', 'has a key with a NUL character, which jsonb cannot store'],
  ['metadata', 'a NUL in a key', () => ({ '\u0000': 1 }), 'metadata', 'has a key with a NUL character, which jsonb cannot store'],
  ['data', "a lone '\\ud800'", () => ({ v: 'a\ud800' }), 'details.v', 'contains a lone UTF-16 surrogate, which jsonb cannot store'],
  ['metadata', "a lone '\\udc00'", () => ({ v: '\udc00b' }), 'metadata.v', 'contains a lone UTF-16 surrogate, which jsonb cannot store'],
  ['data', "a surrogate pair reversed ('\\udc00\\ud800')", () => ({ v: ['\udc00\ud800'] }), 'details.v[0]', 'contains a lone UTF-16 surrogate, which jsonb cannot store'],
  ['data', "a key with '\\ud800'", () => ({ ['k\ud800']: 1 }), 'details', 'has a key with a lone UTF-16 surrogate, which jsonb cannot store'],
  ['metadata', "a key with '\\udc00'", () => ({ v: { ['\udc00']: 1 } }), 'metadata.v', 'has a key with a lone UTF-16 surrogate, which jsonb cannot store'],
  ['data', 'objects nested 5,000 levels deep', () => nested(5000, (inner) => ({ v: inner })), `${`details${'.v'.repeat(100)}`.slice(0, 60)}...`, 'nests deeper than 1000 levels'],
  ['metadata', 'arrays nested 5,000 levels deep', () => ({ v: nested(5000, (inner) => [inner]) }), `${`metadata.v${'[0]'.repeat(100)}`.slice(0, 60)}...`, 'nests deeper than 1000 levels'],
  [
    'data',
    'a nested Date',
    () => ({ at: new Date('2024-01-02T03:04:05.006Z') }),
    'details.at',
    'is a Date, which would read back as a string: store date.toISOString(), or make it a top-level @Data({ type: () => Date })',
  ],
  [
    'metadata',
    'a nested Date',
    () => ({ request: { at: new Date(0) } }),
    'metadata.request.at',
    'is a Date, which would read back as a string: store date.toISOString(), or make it a top-level @Data({ type: () => Date })',
  ],
  ['data', 'a circular object', circular, 'details.self', 'refers to itself (a circular reference)'],
  ['metadata', 'a circular array', () => ({ v: ((list: unknown[]) => (list.push(list), list))([]) }), 'metadata.v[0]', 'refers to itself (a circular reference)'],
  ['data', 'a Map', () => new Map([['a', 1]]), 'details', `is a Map; ${onlyPlain}`],
  ['metadata', 'a Set', () => ({ v: new Set([1]) }), 'metadata.v', `is a Set; ${onlyPlain}`],
  ['data', 'a class instance', () => ({ v: new Money() }), 'details.v', `is a Money; ${onlyPlain}`],
  ['metadata', 'a function', () => ({ v: () => 1 }), 'metadata.v', 'is a function, which JSON cannot store'],
  ['data', 'a symbol', () => ({ v: Symbol('s') }), 'details.v', 'is a symbol, which JSON cannot store'],
  ['metadata', 'a symbol key', () => ({ [Symbol('k')]: 1 }), 'metadata', 'has symbol keys, which JSON cannot store'],
];

const badExpectedVersions: [shown: string, value: unknown][] = [
  ["'9' (string)", '9'],
  ['NaN (number)', Number.NaN],
  ['null (null)', null],
  ['-1 (number)', -1],
  ['1.5 (number)', 1.5],
  ['Infinity (number)', Number.POSITIVE_INFINITY],
];

const badIds: [shown: string, value: unknown, expected: string][] = [
  ['undefined', undefined, 'must be given (the type of Subscription.id), got undefined (undefined)'],
  ['null', null, 'must be given (the type of Subscription.id), got null (null)'],
  ["'1'", '1', "must be an integer (the type of Subscription.id), got '1'"],
  ['1.5', 1.5, 'must be an integer (the type of Subscription.id), got 1.5 (number)'],
  ['{}', {}, 'must be an integer (the type of Subscription.id), got an object'],
  ['[]', [], 'must be an integer (the type of Subscription.id), got an array'],
  ['NaN', Number.NaN, 'must be an integer (the type of Subscription.id), got NaN (number)'],
];

/**
 * The calls that take an id, on a given EventSourcing. `verify(A, { id: undefined })` is left
 * out: an undefined id reads as no id, and verify then checks every row, as `verify(A)` does.
 */
const readsById = (instance: () => EventSourcing): [name: string, read: (id: unknown) => Promise<unknown>][] => [
  ['history', (id) => instance().history(Subscription, id)],
  ['stateAt', (id) => instance().stateAt(Subscription, id, { version: 1 })],
  ['rebuild', (id) => instance().rebuild(Subscription, id)],
  ['verify', (id) => instance().verify(Subscription, { id })],
];

const cases: BadCall[] = [
  // Event types that do not create their aggregate.
  {
    name: 'a non-creating event type built without an aggregate, saved',
    call: () => main.manager.save(SubscriptionNoteAdded.build({ note: 'orphan' })),
    error: AggregateRequiredError,
    message:
      'Subscription.NoteAdded needs an existing Subscription: build it with { subscription } (only event types declared @EventType(name, { creates: true }) create their aggregate)',
  },
  {
    name: 'a non-creating event type built with an unsaved aggregate instance, appended',
    call: async () => {
      const unsaved = new Subscription();
      const error = await rejectionOf(es.append(SubscriptionActivated.build({ subscription: unsaved, stripeKey: 'sub_x' })));
      expect(unsaved.id).toBeUndefined();
      expect(unsaved.version).toBeUndefined();
      throw error;
    },
    error: AggregateRequiredError,
    message:
      'Subscription.Activated needs an existing Subscription: build it with { subscription } (only event types declared @EventType(name, { creates: true }) create their aggregate)',
  },
  {
    name: 'a non-creating event type given { subscription: null } inside a transaction',
    call: () => main.transaction((manager) => manager.save(SubscriptionNoteAdded.build({ subscription: null, note: 'orphan' } as any))),
    error: AggregateRequiredError,
    message: ['Subscription.NoteAdded needs an existing Subscription'],
  },

  // build() and @Data.
  {
    name: 'build({}) of an event with a required @Data attribute',
    call: () => main.manager.save(SubscriptionActivated.build({} as any)),
    error: InvalidEventDataError,
    message: `Subscription.Activated: stripeKey is required ${requiredLater}`,
  },
  {
    name: 'build() missing two required @Data attributes',
    call: () => spare.manager.save(BadInputLedgerCredited.build({} as any)),
    error: InvalidEventDataError,
    message: `BadInputLedger.Credited: amount, memo are required ${requiredLater}`,
  },
  {
    name: 'build() with an explicitly undefined required attribute',
    call: (ctx) => main.manager.save(SubscriptionActivated.build({ subscription: ctx.subscription, stripeKey: undefined } as any)),
    error: InvalidEventDataError,
    message: `Subscription.Activated: stripeKey is required ${requiredLater}`,
    writes: true,
  },
  {
    name: 'build() with an unknown attribute',
    call: (ctx) => saveNote(ctx, { colour: 'red' }),
    error: UnknownEventAttributeError,
    message: "Subscription.NoteAdded.build: unknown attribute 'colour' (accepted: subscription, note, details, metadata)",
    writes: true,
  },
  {
    name: "build() with '__proto__' as an attribute",
    call: (ctx) => saveNote(ctx, JSON.parse('{"__proto__": {"polluted": true}}')),
    error: UnknownEventAttributeError,
    message: "Subscription.NoteAdded.build: unknown attribute '__proto__' (accepted: subscription, note, details, metadata)",
    writes: true,
    then: () => expect(({} as any).polluted).toBeUndefined(),
  },
  {
    name: 'a number for a @Data attribute declared string',
    call: (ctx) => saveNote(ctx, { note: 42 }),
    error: InvalidEventDataError,
    message: 'Subscription.NoteAdded: note is a number, but is declared as string',
    writes: true,
  },
  {
    name: 'a string for a @Data attribute declared number, on a creating event',
    call: () => main.manager.save(SubscriptionCreated.build({ userId: '7' as any })),
    error: InvalidEventDataError,
    message: 'Subscription.Created: userId is a string, but is declared as number',
  },
  {
    name: 'NaN for a top-level @Data attribute declared number',
    call: () => es.append(SubscriptionCreated.build({ userId: Number.NaN })),
    error: InvalidEventDataError,
    message: 'Subscription.Created: userId is NaN, which JSON cannot store',
  },
  {
    name: 'a string for a @Data attribute declared Date',
    call: (ctx) => main.manager.save(SubscriptionActivated.build({ subscription: ctx.subscription, stripeKey: 'k', trialEndsAt: '2030-01-01' as any })),
    error: InvalidEventDataError,
    message: 'Subscription.Activated: trialEndsAt is a string, but is declared as Date',
    writes: true,
  },
  {
    name: 'an invalid Date for a @Data attribute declared Date',
    call: (ctx) => es.append(SubscriptionActivated.build({ subscription: ctx.subscription, stripeKey: 'k', trialEndsAt: new Date('nope') })),
    error: InvalidEventDataError,
    message: 'Subscription.Activated: trialEndsAt is an invalid Date',
    writes: true,
  },
  {
    name: 'an aggregate of the wrong class',
    call: () => main.manager.save(note(Object.assign(new CommandWallet(), { id: 1, version: 1 }) as any)),
    error: InvalidEventDataError,
    message: 'Subscription.NoteAdded: subscription must be a Subscription instance',
  },
  {
    name: 'a plain object as the aggregate',
    // @ts-expect-error TypeScript refuses both the key and the value; JavaScript callers meet the run-time check
    call: () => main.manager.save(SubscriptionNoteAdded.build({ aggregate: { id: 1, version: 1 }, note: 'x' })),
    error: InvalidEventDataError,
    message: 'Subscription.NoteAdded: aggregate must be a Subscription instance',
  },
  {
    name: 'attributes that are not an object',
    call: () => main.manager.save(SubscriptionNoteAdded.build('note' as any)),
    error: InvalidEventDataError,
    message: 'Subscription.NoteAdded: attributes must be an object',
  },

  // Events not made by build().
  {
    name: 'dataSource.manager.create(EventClass, {...}) then save',
    call: (ctx) => main.manager.save(main.manager.create(SubscriptionNoteAdded, { note: 'created', aggregateId: ctx.subscription.id } as any)),
    error: UsageError,
    message: notBuilt,
  },
  {
    name: 'new EventClass() then save',
    call: (ctx) => main.manager.save(Object.assign(new SubscriptionNoteAdded(), { note: 'new', aggregateId: ctx.subscription.id })),
    error: UsageError,
    message: notBuilt,
  },
  {
    name: 'new EventClass() then es.append',
    call: () => es.append(new SubscriptionNoteAdded()),
    error: UsageError,
    message: notBuilt,
  },
  {
    name: 'a plain object saved as an event class',
    call: (ctx) => main.manager.save(SubscriptionNoteAdded, { note: 'plain', aggregateId: ctx.subscription.id, version: 2 } as any),
    error: EventSourcingConfigError,
    message: 'subscription_events: an event is written by saving an instance of its event class (built with build()), not a plain object',
  },

  // Data and metadata values JSON or jsonb cannot store faithfully.
  ...unstorable.map(
    ([where, kind, value, path, reason]): BadCall => ({
      name: `${kind} in ${where}`,
      call: (ctx) => saveNote(ctx, where === 'data' ? { details: value() } : { metadata: value() }),
      error: InvalidEventDataError,
      message: `Subscription.NoteAdded: ${path} ${reason}`,
      writes: true,
    }),
  ),
  ...(
    [
      ['an array', ['a']],
      ['a string', 'who'],
      ['a Map', new Map([['who', 'me']])],
      ['a class instance', new Money()],
      ['a Date', new Date(0)],
    ] as [string, unknown][]
  ).map(
    ([kind, metadata]): BadCall => ({
      name: `metadata that is ${kind}`,
      call: (ctx) => es.append(note(ctx.subscription, { metadata })),
      error: InvalidEventDataError,
      message: 'Subscription.NoteAdded: metadata must be a plain object',
      writes: true,
    }),
  ),

  {
    name: 'a NaN in es.withMetadata',
    call: (ctx) => es.withMetadata({ request: { score: Number.NaN } }, () => saveNote(ctx)),
    error: InvalidEventDataError,
    message: 'Subscription.NoteAdded: metadata.request.score is NaN, which JSON cannot store',
    writes: true,
  },

  // Expected versions that are no version: a usage error, never a ConcurrencyError.
  ...badExpectedVersions.flatMap(([shown, expectedVersion]): BadCall[] => [
    {
      name: `expectedVersion ${shown} given to build`,
      call: (ctx) => main.manager.save(SubscriptionNoteAdded.build({ subscription: ctx.subscription, note: 'v' }, { expectedVersion } as any)),
      error: UsageError,
      message: `Subscription.NoteAdded: expectedVersion must be a non-negative integer, got ${shown}`,
      writes: true,
    },
    {
      name: `expectedVersion ${shown} given to es.append`,
      call: (ctx) => es.append(note(ctx.subscription), { expectedVersion } as any),
      error: UsageError,
      message: `es.append(Subscription.NoteAdded): expectedVersion must be a non-negative integer, got ${shown}`,
      writes: true,
    },
    {
      name: `expectedVersion ${shown} given to Command.call`,
      call: (ctx) => AddNotes.call({ subscription: ctx.subscription, notes: ['v'] }, { expectedVersion, manager: main.manager } as any),
      error: UsageError,
      message: `AddNotes.call: expectedVersion must be a non-negative integer, got ${shown}`,
      writes: true,
    },
  ]),

  // stateAt options that name no moment PostgreSQL can look up.
  ...(
    [
      ['an invalid Date', { at: new Date('not a date') }, 'at is an invalid Date'],
      [
        'a Date before 4713 BC',
        { at: new Date(-8.64e15) },
        'at is before 4713 BC, the earliest time PostgreSQL stores (-271821-04-20T00:00:00.000Z)',
      ],
      ['a Date given as a string', { at: '2024-01-01' }, 'at must be a Date, got string'],
      ['version 0', { version: 0 }, 'version must be an integer from 1 to 2147483647, got 0 (number)'],
      ['version -1', { version: -1 }, 'version must be an integer from 1 to 2147483647, got -1 (number)'],
      ['version 1.5', { version: 1.5 }, 'version must be an integer from 1 to 2147483647, got 1.5 (number)'],
      ['version 2**31', { version: 2 ** 31 }, 'version must be an integer from 1 to 2147483647, got 2147483648 (number)'],
      ["version '3'", { version: '3' }, "version must be an integer from 1 to 2147483647, got '3' (string)"],
      ['neither at nor version', {}, 'options must give exactly one of version and at, got neither'],
      ['both at and version', { version: 1, at: new Date() }, 'options must give exactly one of version and at, got both'],
      ['no options object', undefined, 'options must be { version } or { at }'],
    ] as [string, unknown, string][]
  ).map(
    ([kind, options, reason]): BadCall => ({
      name: `stateAt with ${kind}`,
      call: (ctx) => es.stateAt(Subscription, ctx.subscription.id, options as any),
      error: UsageError,
      message: `stateAt(Subscription): ${reason}`,
    }),
  ),

  // Ids of the wrong type, out of range, or naming no row.
  ...readsById(() => es).flatMap(([read, run]): BadCall[] => [
    ...badIds.filter(([shown]) => !(read === 'verify' && shown === 'undefined')).map(
      ([shown, id, reason]): BadCall => ({
        name: `${read} with the id ${shown}`,
        call: () => run(id),
        error: UsageError,
        message: `${read}(Subscription): id ${reason}`,
      }),
    ),
    {
      name: `${read} with an id beyond int4 (2**31)`,
      call: () => run(2 ** 31),
      error: AggregateNotFoundError,
      message: 'Subscription 2147483648 does not exist',
    },
    {
      name: `${read} with a missing id`,
      call: () => run(2 ** 31 - 1),
      error: AggregateNotFoundError,
      message: 'Subscription 2147483647 does not exist',
    },
  ]),
  {
    name: "an event for an aggregate whose id is the string '1'",
    call: (ctx) => main.manager.save(note(Object.assign(new Subscription(), { ...ctx.subscription, id: String(ctx.subscription.id) }))),
    error: UsageError,
    message: (ctx) => `Subscription.NoteAdded: id must be an integer (the type of Subscription.id), got '${ctx.subscription.id}'`,
  },
  {
    name: 'an event for an aggregate whose id is beyond int4',
    call: () => es.append(note(Object.assign(new Subscription(), { id: 2 ** 31, version: 1, notes: [] }))),
    error: AggregateNotFoundError,
    message: 'Subscription 2147483648 does not exist',
  },
  {
    name: 'an event for an aggregate that does not exist',
    call: () => main.manager.save(note(Object.assign(new Subscription(), { id: 2 ** 31 - 1, version: 1, notes: [] }))),
    error: AggregateNotFoundError,
    message: 'Subscription 2147483647 does not exist',
  },
  // The same ids through a DataSource whose where clauses drop undefined and null.
  ...readsById(() => lenientEs).flatMap(([read, run]): BadCall[] =>
    badIds.slice(0, 2).filter(([shown]) => !(read === 'verify' && shown === 'undefined')).map(
      ([shown, id, reason]): BadCall => ({
        name: `${read} with the id ${shown}, where TypeORM ignores ${shown} in where clauses`,
        call: () => run(id),
        error: UsageError,
        message: `${read}(Subscription): id ${reason}`,
      }),
    ),
  ),

  // Commands with nothing to write.
  {
    name: 'a Command whose buildEvent returns [] (with an aggregate)',
    call: (ctx) => NoteNothing.call({ subscription: ctx.subscription }, { manager: main.manager }),
    returns: null,
    writes: true,
  },
  {
    name: 'a Command whose buildEvent returns [] (without an aggregate, expecting version 0)',
    call: () => CreateNothing.call({ userId: 3 }, { manager: main.manager, expectedVersion: 0 }),
    returns: null,
  },

  // Writes outside a transaction.
  {
    name: 'manager.insert(EventClass, event) outside a transaction',
    call: (ctx) => main.manager.insert(SubscriptionNoteAdded, note(ctx.subscription) as any),
    error: UsageError,
    message: noTransaction,
    writes: true,
    then: (_ctx, error) => expect(error.message).toContain('manager.insert'),
  },
  {
    name: 'manager.save(event, { transaction: false })',
    call: (ctx) => main.manager.save(note(ctx.subscription), { transaction: false }),
    error: UsageError,
    message: noTransaction,
    writes: true,
  },

  // One event instance written twice.
  {
    name: 'one event instance appended twice at once',
    call: (ctx) => exactlyOneOf(ctx, (event) => es.append(event)),
    error: EventAlreadyWrittenError,
    message: ['Subscription.NoteAdded: this event instance is already', 'an event is written once, build a new one'],
    allowed: { events: 1, outbox: 1 },
  },
  {
    name: 'one event instance saved twice at once through manager.save',
    call: (ctx) => exactlyOneOf(ctx, (event) => main.manager.save(event)),
    error: EventAlreadyWrittenError,
    message: ['Subscription.NoteAdded: this event instance is already', 'an event is written once, build a new one'],
    allowed: { events: 1, outbox: 1 },
  },
  {
    name: 'an event written already, appended again',
    call: async (ctx) => {
      const written = await es.append(note(ctx.subscription));
      ctx.subscription = await loadSubscription(main, ctx.subscription.id);
      return es.append(written);
    },
    error: ImmutableEventError,
    message: ['subscription_events row ', ': events are append-only, update refused'],
    allowed: { events: 1, outbox: 1 },
    then: async (ctx, error) => {
      expect(error.operation).toBe('update');
      expect((await subscriptionRow(main, ctx.subscription.id))!.version).toBe(2);
    },
  },
  {
    name: 'an event written already, changed and saved again',
    call: async (ctx) => {
      const written = await main.manager.save(note(ctx.subscription));
      written.note = 'rewritten';
      return main.manager.save(written);
    },
    error: ImmutableEventError,
    message: ['subscription_events row ', ': events are append-only, update refused'],
    allowed: { events: 1, outbox: 1 },
  },

  // Attaching.
  {
    name: 'an event class missing from the entities at attach',
    call: () => EventSourcing.attach(partial),
    error: EventSourcingConfigError,
    message:
      "BadInputLedgerCredited ('BadInputLedger.Credited') extends BadInputLedgerEvent but is not in the DataSource's entities: list every event class there, or TypeORM can neither save nor load it",
  },
  {
    name: 'a queue name another database has claimed',
    call: () => EventSourcing.attach(spare, { queue: { connection: redisUrl, name: queueName, closeTimeout: 1000 } }),
    error: EventSourcingConfigError,
    message: () => [`queue '${queueName}' is used by another database (identity `, 'attached within the last 60 s): give each database a queue name of its own'],
    then: async (_ctx, error) => {
      const [{ identity }] = await main.query('SELECT id::text AS identity FROM es_identity');
      expect(error.message).toContain(`(identity ${identity},`);
    },
  },
  {
    name: "a Redis URL with the scheme 'http:'",
    call: () => EventSourcing.attach(spare, { queue: { connection: 'http://127.0.0.1:6380', name: `${queueName}-http` } }),
    error: EventSourcingConfigError,
    message: "the Redis URL scheme 'http:' is not supported: use redis:// (TCP), rediss:// (TLS) or unix:// (http://127.0.0.1:6380/)",
  },
  {
    name: "a Redis URL with the scheme 'redis+sentinel:', password included",
    call: () => EventSourcing.attach(spare, { queue: { connection: 'redis+sentinel://user:hunter2@127.0.0.1:26379/mymaster', name: `${queueName}-sentinel` } }),
    error: EventSourcingConfigError,
    message: [
      "the Redis URL scheme 'redis+sentinel:' is not supported: use redis:// (TCP), rediss:// (TLS) or unix:// (",
      'redis+sentinel://user:***@127.0.0.1:26379/mymaster',
    ],
    absent: ['hunter2'],
  },
  {
    // After the failed attaches above: none of them left the ledger half attached.
    name: 'an event saved before EventSourcing.attach',
    call: () => spare.manager.save(BadInputLedgerOpened.build({ owner: 'early' })),
    error: EventSourcingConfigError,
    message:
      'BadInputLedger.Opened was saved through a DataSource without EventSourcing: call EventSourcing.attach(dataSource) after dataSource.initialize(), before writing events',
  },

  // The append-only wall below TypeORM.
  {
    name: 'TRUNCATE of an events table',
    call: () => main.query('TRUNCATE subscription_events'),
    error: QueryFailedError,
    message: 'events are append-only: TRUNCATE on public.subscription_events refused (test helpers: SET LOCAL typeorm_es.allow_truncate = on)',
  },
  {
    name: 'TRUNCATE of an aggregate table, cascading to its events',
    call: () => main.query('TRUNCATE subscription CASCADE'),
    error: QueryFailedError,
    message: ['events are append-only: TRUNCATE on public.', 'refused'],
  },
];

/**
 * Writes one event instance twice at once; exactly one write must succeed. Rejects with the
 * other's error; ctx.subscription becomes the row as written.
 */
async function exactlyOneOf(ctx: Ctx, write: (event: SubscriptionNoteAdded) => Promise<unknown>): Promise<unknown> {
  const event = note(ctx.subscription);
  const results = await Promise.allSettled([write(event), write(event)]);
  const written = results.filter((result) => result.status === 'fulfilled');
  const refused = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
  expect(written).toHaveLength(1);
  expect(refused).toHaveLength(1);
  expect(event.version).toBe(2);
  const rows = await main.query('SELECT id::int, version FROM subscription_events WHERE subscription_id = $1 ORDER BY version', [ctx.subscription.id]);
  expect(rows).toEqual([
    { id: expect.any(Number), version: 1 },
    { id: event.id, version: 2 },
  ]);
  ctx.subscription = await loadSubscription(main, ctx.subscription.id);
  throw refused[0].reason;
}

function expectedMessage(row: BadCall, ctx: Ctx): string | string[] | undefined {
  return typeof row.message === 'function' ? row.message(ctx) : row.message;
}

test('the table has at least 40 cases, each named once', () => {
  expect(cases.length).toBeGreaterThanOrEqual(40);
  expect(new Set(cases.map((row) => row.name)).size).toBe(cases.length);
});

test('the lenient DataSource really drops undefined from where clauses (what the id checks guard against)', async () => {
  const everything = await lenient.manager.find(SubscriptionEvent, { where: { aggregateId: undefined } });
  expect(everything).toHaveLength(4);
});

test('a creating event type needs no aggregate, with none or with an unsaved instance', async () => {
  const before = await allCounts();
  const created = await main.manager.save(SubscriptionCreated.build({ userId: 11 }));
  const unsaved = new Subscription();
  const alsoCreated = await es.append(SubscriptionCreated.build({ subscription: unsaved, userId: 12 }));
  expect(created.version).toBe(1);
  expect(alsoCreated.aggregateId).toBe(unsaved.id);
  expect(unsaved).toMatchObject({ version: 1, userId: 12 });
  expect(changedRows(before, await allCounts(), { aggregates: 2, events: 2, outbox: 2 })).toBe(0);
});

describe('bad input', () => {
  test.each(cases)('$name', async (row) => {
    tried += 1;
    const ctx: Ctx = { subscription: await newSubscription() };
    const instanceBefore = columnsOf(ctx.subscription);
    const rowBefore = await subscriptionRow(main, ctx.subscription.id);
    const before = await allCounts();

    let outcome: { error?: any; value?: unknown };
    try {
      outcome = { value: await row.call(ctx) };
    } catch (error) {
      outcome = { error };
    }
    const changed = changedRows(before, await allCounts(), row.allowed);
    rowsChanged += changed;

    if (row.error) {
      expect(outcome.error).toBeInstanceOf(row.error);
      if (outcome.error instanceof EventSourcingError) expect(outcome.error.name).toBe(row.error.name);
      if (row.error === UsageError) {
        expect(outcome.error.code).toBe('USAGE');
        expect(outcome.error).not.toBeInstanceOf(ConcurrencyError);
      }
      const message = expectedMessage(row, ctx);
      if (typeof message === 'string') expect(outcome.error.message).toBe(message);
      else for (const part of message ?? []) expect(outcome.error.message).toContain(part);
      for (const part of row.absent ?? []) expect(outcome.error.message).not.toContain(part);
    } else {
      expect(outcome.error).toBeUndefined();
      expect(outcome.value).toEqual(row.returns);
    }
    expect(changed).toBe(0);
    if (row.writes) {
      expect(columnsOf(ctx.subscription)).toEqual(instanceBefore);
      expect(await subscriptionRow(main, ctx.subscription.id)).toEqual(rowBefore);
    }
    await row.then?.(ctx, outcome.error);
  });
});

test('rediss:// is not downgraded: against a plain Redis nothing gets through, and the first bytes sent are a TLS handshake', async () => {
  tried += 1;
  const name = `${queueName}-tls`;
  const port = Number(new URL(redisUrl).port || 6379);
  const before = await allCounts();
  const tlsEs = await EventSourcing.attach(spare, { queue: { connection: `rediss://127.0.0.1:${port}`, name, closeTimeout: 1000 }, onError: () => undefined });
  const plain = new Redis(redisUrl);
  try {
    expect((tlsEs.queue.opts.connection as { tls?: unknown }).tls).toEqual({}); // TLS on; no SNI name for an IP address
    const added = tlsEs.queue.add('probe', {});
    added.catch(() => undefined);
    const outcome = await Promise.race([added.then(() => 'added'), sleep(1500).then(() => 'timed out')]);
    expect(outcome).toBe('timed out');
    // Plain TCP would have claimed the queue name at attach, and then added the job.
    expect(await plain.keys(`bull:${name}:*`)).toEqual([]);
  } finally {
    const started = Date.now();
    await tlsEs.close();
    expect(Date.now() - started).toBeLessThan(8000);
    plain.disconnect();
  }

  // What goes on the wire: a TLS record (0x16, handshake) rather than a RESP command ('*').
  const firstBytes: Buffer[] = [];
  const sockets = new Set<Socket>();
  const sniffer = createServer((socket) => {
    sockets.add(socket);
    socket.once('data', (chunk) => firstBytes.push(chunk));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => sniffer.listen(0, '127.0.0.1', resolve));
  const snifferPort = (sniffer.address() as AddressInfo).port;
  const sniffed = await EventSourcing.attach(spare, { queue: { connection: `rediss://127.0.0.1:${snifferPort}`, name, closeTimeout: 500 }, onError: () => undefined });
  try {
    for (let waited = 0; firstBytes.length === 0 && waited < 3000; waited += 50) await sleep(50);
    expect(firstBytes.length).toBeGreaterThan(0);
    expect(firstBytes[0][0]).toBe(0x16);
  } finally {
    await sniffed.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => sniffer.close(resolve));
  }

  const changed = changedRows(before, await allCounts());
  rowsChanged += changed;
  expect(changed).toBe(0);
  // Closed: the spare DataSource is unattached again.
  expect(await rejectionOf(spare.manager.save(BadInputLedgerOpened.build({ owner: 'after' })))).toBeInstanceOf(EventSourcingConfigError);
});

test('resetEventStore still empties the event store past the TRUNCATE wall', async () => {
  expect((await countsOf(lenient)).events).toBeGreaterThan(0);
  await resetEventStore(lenientEs);
  expect(await countsOf(lenient)).toEqual({ aggregates: 0, events: 0, outbox: 0 });
  // The wall is back up after the helper's transaction.
  await lenient.manager.save(SubscriptionCreated.build({ userId: 5 }));
  const error = await rejectionOf(lenient.query('TRUNCATE subscription_events'));
  expect(error).toBeInstanceOf(QueryFailedError);
  expect(error.message).toContain('append-only');
  expect((await countsOf(lenient)).events).toBe(1);
});
