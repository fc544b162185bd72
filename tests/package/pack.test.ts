import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freshDatabase } from '../support/database';

/**
 * The package as a user gets it: `npm pack`, unpacked into a separate TypeScript app that
 * type-checks against the shipped declarations and runs against real PostgreSQL.
 */
const root = path.join(__dirname, '..', '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
let work: string;
let app: string;
let files: string[];

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'es-pack-'));
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  files = packed.files.map((file: { path: string }) => file.path);
  app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'pack-test-app', private: true }));
  // A real install: the package's declared dependencies must be enough (from npm's cache when warm).
  execFileSync(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, packed.filename), 'typeorm@1.1.1', 'pg@8.23.1', 'reflect-metadata@0.2.2', '@types/node@20'],
    { cwd: app, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'commonjs', strict: true, experimentalDecorators: true, emitDecoratorMetadata: true,
        rootDir: '.', outDir: 'out', types: ['node'], skipLibCheck: false,
      },
      include: ['app.ts'],
    }),
  );
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the tarball ships the compiled library, its declarations and the README, not the sources or tests', () => {
  expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'README.md', 'package.json']));
  expect(files.filter((file) => file.startsWith('src/') || file.startsWith('tests/'))).toEqual([]);
});

test('a separate TypeScript app type-checks against the package and runs the talk example', async () => {
  writeFileSync(
    path.join(app, 'app.ts'),
    `import 'reflect-metadata';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import {
  Aggregate, AggregateEvent, AggregateVersion, ConcurrencyError, Data, EventSourcing, EventsOf, EventType, HasEvents,
  InvalidEventDataError,
} from 'typeorm-event-sourcing';

@Aggregate()
@Entity()
class Subscription {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', default: 'pending' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) stripeKey!: string | null;
  @Column({ type: 'timestamptz', nullable: true }) activatedAt!: Date | null;
  @AggregateVersion() version!: number;
  @HasEvents(() => SubscriptionEvent) events!: SubscriptionEvent[];
}

@EventsOf(() => Subscription)
abstract class SubscriptionEvent extends AggregateEvent<Subscription> {}

@EventType('Subscription.Created', { creates: true })
class SubscriptionCreated extends SubscriptionEvent {
  apply(subscription: Subscription): Subscription { return subscription; }
}

@EventType('Subscription.Activated')
class SubscriptionActivated extends SubscriptionEvent {
  @Data() stripeKey!: string;
  @Data({ type: () => Date }) trialEndsAt!: Date | null;
  apply(subscription: Subscription): Subscription {
    subscription.stripeKey = this.stripeKey;
    subscription.status = 'active';
    subscription.activatedAt = this.createdAt;
    return subscription;
  }
}

async function main() {
  const dataSource = new DataSource({
    type: 'postgres', url: process.env.DATABASE_URL, synchronize: true,
    entities: [Subscription, SubscriptionEvent, SubscriptionCreated, SubscriptionActivated],
  });
  await dataSource.initialize();
  const es = await EventSourcing.attach(dataSource);
  const created = await dataSource.manager.save(SubscriptionCreated.build({}));
  const subscription = await dataSource.manager.findOneByOrFail(Subscription, { id: created.aggregateId });
  const event = await dataSource.manager.save(
    SubscriptionActivated.build({ subscription, stripeKey: 'sub_66123', trialEndsAt: new Date('2030-01-01T00:00:00.000Z'), metadata: { notificationId: 33456 } }),
  );
  let conflict = '';
  try {
    await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'x', trialEndsAt: null }), { expectedVersion: 1 });
  } catch (error) {
    if (error instanceof ConcurrencyError) conflict = error.message;
  }
  let hostile = '';
  try {
    await es.append(SubscriptionActivated.build({ subscription, stripeKey: 'x\\u0000', trialEndsAt: null }));
  } catch (error) {
    if (error instanceof InvalidEventDataError) hostile = error.message;
  }
  const history = await es.history(Subscription, subscription.id);
  const before = await es.stateAt(Subscription, subscription.id, { version: 1 });
  console.log(JSON.stringify({
    status: subscription.status,
    activatedAtIsCreatedAt: subscription.activatedAt?.getTime() === event.createdAt.getTime(),
    types: history.map((e) => e.type),
    trialEndsAt: (history[1] as SubscriptionActivated).trialEndsAt?.toISOString(),
    before: before?.status,
    conflict,
    hostile,
    mismatches: await es.verify(Subscription),
  }));
  await es.close();
  await dataSource.destroy();
}
main().catch((error) => { console.error(error); process.exit(1); });
`,
  );
  const compiled = spawnSync(process.execPath, [tsc, '-p', app], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const run = spawnSync(process.execPath, [path.join(app, 'out', 'app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('pack') },
  });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    status: 'active',
    activatedAtIsCreatedAt: true,
    types: ['Subscription.Created', 'Subscription.Activated'],
    trialEndsAt: '2030-01-01T00:00:00.000Z',
    before: 'pending',
    conflict: 'Subscription 1: expected version 1, but it is at version 2',
    hostile: 'Subscription.Activated: stripeKey contains a NUL character, which jsonb cannot store',
    mismatches: [],
  });
}, 120_000);

test('reactors, commands and the testing entry work from the installed package, hostile input included', async () => {
  writeFileSync(
    path.join(app, 'reactors-app.ts'),
    `import 'reflect-metadata';
import { IsNotEmpty, IsString } from 'class-validator';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import {
  Aggregate, AggregateEvent, AggregateVersion, Attribute, Command, Data, Dispatcher, EventSourcing, EventsOf, EventType,
  HasEvents, ReactorError, ValidationError, type Reactor, type ReactorContext,
} from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';

@Aggregate()
@Entity()
class Account {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'varchar', default: 'new' }) status!: string;
  @Column({ type: 'varchar', nullable: true }) plan!: string | null;
  @AggregateVersion() version!: number;
  @HasEvents(() => AccountEvent) events!: AccountEvent[];
}

@EventsOf(() => Account)
abstract class AccountEvent extends AggregateEvent<Account> {}

@EventType('Account.Opened', { creates: true })
class AccountOpened extends AccountEvent {
  apply(account: Account) { return account; }
}

@EventType('Account.PlanChosen')
class PlanChosen extends AccountEvent {
  @Data() plan!: string;
  apply(account: Account) {
    account.plan = this.plan;
    account.status = 'active';
    return account;
  }
}

class Welcome implements Reactor<PlanChosen> {
  async call(event: PlanChosen, ctx: ReactorContext) {
    await ctx.manager.query('INSERT INTO welcomes (event_id, plan) VALUES ($1, $2) ON CONFLICT DO NOTHING', [event.id, event.plan]);
  }
}

async function Refuse(event: PlanChosen) {
  if (event.plan === 'forbidden') throw new Error('not sold any more');
}

class ChoosePlan extends Command<PlanChosen> {
  @Attribute() account!: Account;
  @Attribute() @IsString() @IsNotEmpty() plan!: string;
  noop() { return this.account.plan === this.plan; }
  buildEvent() { return PlanChosen.build({ account: this.account, plan: this.plan }); }
}

async function main() {
  const dataSource = new DataSource({
    type: 'postgres', url: process.env.DATABASE_URL, synchronize: true,
    entities: [Account, AccountEvent, AccountOpened, PlanChosen],
  });
  await dataSource.initialize();
  await dataSource.query('CREATE TABLE welcomes (event_id int PRIMARY KEY, plan text)');
  const dispatcher = new Dispatcher().on(PlanChosen, { async: Welcome, trigger: Refuse });
  const es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME } });
  es.worker();
  const opened = await dataSource.manager.save(AccountOpened.build({}));
  const account = await dataSource.manager.findOneByOrFail(Account, { id: opened.aggregateId });

  const chosen = await ChoosePlan.call({ account, plan: 'pro' });
  const again = await ChoosePlan.call({ account, plan: 'pro' });
  // Hostile input, as it would arrive from a JSON request body.
  const body = JSON.parse('{"account": null, "plan": 42, "__proto__": { "polluted": true }}');
  let invalid = '';
  try {
    await ChoosePlan.call({ ...body, account });
  } catch (error) {
    if (error instanceof ValidationError) invalid = error.issues.map((issue) => issue.attribute).sort().join(',');
  }
  let refused = '';
  try {
    await ChoosePlan.call({ account, plan: 'forbidden' });
  } catch (error) {
    if (error instanceof ReactorError) refused = error.message;
  }
  await waitForReactors(es);
  console.log(JSON.stringify({
    chosen: chosen?.type,
    again,
    invalid,
    polluted: ({} as Record<string, unknown>).polluted ?? null,
    refused,
    welcomes: await dataSource.query('SELECT plan FROM welcomes ORDER BY event_id'),
    history: (await es.history(Account, account.id)).map((event) => event.type),
  }));
  await es.close();
  await dataSource.destroy();
}
main().catch((error) => { console.error(error); process.exit(1); });
`,
  );
  writeFileSync(path.join(app, 'tsconfig.reactors.json'), JSON.stringify({ extends: './tsconfig.json', include: ['reactors-app.ts'] }));
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.reactors.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const run = spawnSync(process.execPath, [path.join(app, 'out', 'reactors-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('pack_reactors'), QUEUE_NAME: `pack-${process.pid}-${Date.now()}` },
  });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    chosen: 'Account.PlanChosen',
    again: null,
    invalid: '__proto__,plan',
    polluted: null,
    refused: 'reactor Refuse failed on Account.PlanChosen of aggregate 1: not sold any more',
    welcomes: [{ plan: 'pro' }],
    history: ['Account.Opened', 'Account.PlanChosen'],
  });
}, 120_000);

test('the exports map exposes the entry point and package.json, not internal files', () => {
  const probe = (specifier: string) =>
    spawnSync(process.execPath, ['-e', `require(${JSON.stringify(specifier)})`], { cwd: app, encoding: 'utf8' });
  expect(probe('typeorm-event-sourcing').status).toBe(0);
  expect(probe('typeorm-event-sourcing/package.json').status).toBe(0);
  expect(probe('typeorm-event-sourcing/testing').status).toBe(0);
  const internal = probe('typeorm-event-sourcing/dist/events/write-path');
  expect(internal.status).not.toBe(0);
  expect(internal.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  expect(JSON.parse(readFileSync(path.join(app, 'node_modules', 'typeorm-event-sourcing', 'package.json'), 'utf8')).types).toBe('dist/index.d.ts');
});
