import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
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
let installLog: string;
let manifestBeforePack: string;
/** What docs/getting-started.md has a project install for its tests, at the versions this repository uses. */
const testTools = ['typescript', 'jest', '@jest/globals', 'ts-jest', '@types/jest'].map(
  (name) => `${name}@${JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version}`,
);
const fixtures = path.join(__dirname, 'app-fixtures');

/**
 * A copy of the repository's files (node_modules linked), where packing builds dist/ and the API
 * reference: other test files (the demo's) build the repository's own dist/ at the same time.
 */
function repositoryCopy(into: string): string {
  const copy = path.join(into, 'repository');
  const tracked = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter((file) => file && existsSync(path.join(root, file)));
  for (const file of tracked) {
    mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
    copyFileSync(path.join(root, file), path.join(copy, file));
  }
  symlinkSync(path.join(root, 'node_modules'), path.join(copy, 'node_modules'));
  return copy;
}

let packedFrom: string;
let tarball: string;

beforeAll(() => {
  work = mkdtempSync(path.join(os.tmpdir(), 'es-pack-'));
  packedFrom = repositoryCopy(work);
  manifestBeforePack = readFileSync(path.join(packedFrom, 'package.json'), 'utf8');
  const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: packedFrom, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
  tarball = path.join(work, packed.filename);
  files = packed.files.map((file: { path: string }) => file.path);
  app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'pack-test-app', private: true }));
  // A real install: the package's declared dependencies must be enough (from npm's cache when warm).
  const install = spawnSync(
    'npm',
    [
      'install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, packed.filename), 'typeorm@1.1.1', 'pg@8.23.1', 'reflect-metadata@0.2.2',
      '@types/node@20', ...testTools,
    ],
    { cwd: app, encoding: 'utf8' },
  );
  installLog = install.stdout + install.stderr;
  if (install.status !== 0) throw new Error(`npm install of the tarball failed:\n${installLog}`);
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

test('the tarball ships the API reference and the examples, and every link of its docs leads to a shipped file', () => {
  expect(files).toEqual(expect.arrayContaining(['docs/api/index.html', 'examples/docs/testing.test.ts', 'examples/subscriptions/model.ts']));
  const installed = path.join(app, 'node_modules', 'typeorm-event-sourcing');
  const broken: string[] = [];
  for (const doc of files.filter((file) => /^(README|docs\/[^/]+)\.md$/.test(file))) {
    const text = readFileSync(path.join(installed, doc), 'utf8');
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      if (!existsSync(path.join(installed, path.dirname(doc), target))) broken.push(`${doc} -> ${target}`);
    }
  }
  expect(broken).toEqual([]);
  expect(readFileSync(path.join(installed, 'docs', 'api', 'index.html'), 'utf8')).toContain('typeorm-event-sourcing');
});

test('the installed package.json has no scripts, so installing the tarball asks nobody to approve an install script', () => {
  const installed = JSON.parse(readFileSync(path.join(app, 'node_modules', 'typeorm-event-sourcing', 'package.json'), 'utf8'));
  expect(installed.scripts).toBeUndefined();
  expect(installed).toMatchObject({ name: 'typeorm-event-sourcing', main: 'dist/index.js', types: 'dist/index.d.ts' });
  // npm 11 lists every package whose install scripts are not approved, one per line:
  //   npm warn install-scripts   name@version (event: command)
  // bullmq's msgpackr brings msgpackr-extract (a native build), and jest brings @parcel/watcher:
  // those lines are not ours to remove. npm before 11 prints no such list, so an empty one is
  // accepted too.
  const warned = [...installLog.matchAll(/^npm warn install-scripts\s+(\S+)@\S+ \(/gm)].map((match) => match[1]);
  expect(warned.filter((name) => name !== 'msgpackr-extract' && name !== '@parcel/watcher')).toEqual([]);
  expect(installLog).not.toMatch(/typeorm-event-sourcing[^\n]*\((?:pre|post)?(?:install|prepare)/);
});

test('packing leaves the repository package.json as it was, scripts and all', () => {
  expect(readFileSync(path.join(packedFrom, 'package.json'), 'utf8')).toBe(manifestBeforePack);
  expect(readFileSync(path.join(root, 'package.json'), 'utf8')).toBe(manifestBeforePack);
  const manifest = JSON.parse(manifestBeforePack);
  // prepare (npm install in the repository) and prepack (npm pack, npm publish: prepare no longer
  // runs once the scripts are stripped) both build dist/, so the tarball never ships a stale one.
  expect(manifest.scripts).toMatchObject({ build: expect.any(String), prepare: 'npm run build', prepack: expect.stringMatching(/^npm run build && /) });
  expect(existsSync(path.join(packedFrom, '.package.json.before-pack'))).toBe(false);
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
abstract class SubscriptionEvent extends AggregateEvent<Subscription, 'subscription'> {}

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
abstract class AccountEvent extends AggregateEvent<Account, 'account'> {}

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

test('the hardening holds from the installed package: bad input, forged jobs, a lost connection', async () => {
  writeFileSync(
    path.join(app, 'hardening-app.ts'),
    `import 'reflect-metadata';
import { Queue } from 'bullmq';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import {
  Aggregate, AggregateEvent, AggregateRequiredError, AggregateVersion, ConnectionLostError, Data, Dispatcher, EventSourcing,
  EventsOf, EventType, HasEvents, InvalidEventDataError, UsageError, type ReactorContext,
} from 'typeorm-event-sourcing';
import { waitForReactors } from 'typeorm-event-sourcing/testing';

@Aggregate()
@Entity()
class Ledger {
  @PrimaryGeneratedColumn() id!: number;
  @Column({ type: 'int', default: 0 }) balance!: number;
  @AggregateVersion() version!: number;
  @HasEvents(() => LedgerEvent) events!: LedgerEvent[];
}

@EventsOf(() => Ledger)
abstract class LedgerEvent extends AggregateEvent<Ledger, 'ledger'> {}

@EventType('Ledger.Opened', { creates: true })
class LedgerOpened extends LedgerEvent {
  apply(ledger: Ledger) { return ledger; }
}

@EventType('Ledger.Credited')
class LedgerCredited extends LedgerEvent {
  @Data() amount!: number;
  apply(ledger: Ledger) { ledger.balance += this.amount; return ledger; }
}

const runs: number[] = [];
let killMe = false;

async function Audit(event: LedgerCredited) { runs.push(event.amount); }
async function Terminate(event: LedgerCredited, ctx: ReactorContext) {
  if (!killMe) return;
  killMe = false;
  // Another session ends this transaction's connection, as a failover would.
  const [{ pid }] = await ctx.manager.query('SELECT pg_backend_pid() AS pid');
  await ctx.manager.connection.query('SELECT pg_terminate_backend($1)', [pid]);
  await ctx.manager.query('SELECT 1');
}

async function errorOf(work: () => Promise<unknown>): Promise<string> {
  try { await work(); return 'resolved'; } catch (error) { return \`\${(error as Error).name}: \${(error as Error).message}\`; }
}

async function main() {
  const dataSource = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, synchronize: true, entities: [Ledger, LedgerEvent, LedgerOpened, LedgerCredited] });
  await dataSource.initialize();
  const dispatcher = new Dispatcher().on(LedgerCredited, { async: Audit, trigger: Terminate });
  const es = await EventSourcing.attach(dataSource, { dispatcher, queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME } });
  const worker = es.worker();
  const opened = await dataSource.manager.save(LedgerOpened.build({}));
  const ledger = await dataSource.manager.findOneByOrFail(Ledger, { id: opened.aggregateId });

  const orphan = await errorOf(() => dataSource.manager.save(LedgerCredited.build({ amount: 5 })));
  const missing = await errorOf(async () => LedgerCredited.build({} as never));
  const nestedDate = await errorOf(() => es.append(LedgerCredited.build({ ledger, amount: 1, metadata: { at: { when: new Date() } } })));
  const stringId = await errorOf(() => es.history(Ledger, '1'));
  const badVersion = await errorOf(() => es.append(LedgerCredited.build({ ledger, amount: 1 }), { expectedVersion: '1' as never }));

  const credit = LedgerCredited.build({ ledger, amount: 10 });
  await es.append(credit);
  await waitForReactors(es);
  // Someone with write access to Redis copies the real job under a new id, and makes one up.
  const queue = new Queue(es.queue.name, { connection: { host: new URL(process.env.REDIS_URL!).hostname, port: Number(new URL(process.env.REDIS_URL!).port) } });
  const [real] = await queue.getJobs(['completed']);
  await queue.add('Audit', real.data, { jobId: real.id + '-again' });
  await queue.add('Audit', { ...real.data, signature: '0'.repeat(64) }, { jobId: real.id!.replace(/[^.]+$/, '00000000-0000-0000-0000-000000000000') });
  await waitForReactors(es, { allowFailures: true }); // the worker refuses both forged jobs
  const failed = (await queue.getJobs(['failed'])).map((job) => job.failedReason.replace(/job \\S+ /, 'job <id> ')).sort();
  await queue.close();

  killMe = true;
  const before = { balance: ledger.balance, version: ledger.version };
  const lost = LedgerCredited.build({ ledger, amount: 100 });
  let lostError: unknown;
  try { await es.append(lost); } catch (error) { lostError = error; }
  const afterLoss = { balance: ledger.balance, version: ledger.version, eventId: lost.id ?? null };
  const retried = await es.append(LedgerCredited.build({ ledger, amount: 100 }));
  await waitForReactors(es);

  console.log(JSON.stringify({
    orphan: orphan.startsWith(AggregateRequiredError.name), missing, nestedDate, stringId, badVersion,
    failed, runs,
    lost: lostError instanceof ConnectionLostError && lostError.retryable, before, afterLoss, retriedVersion: retried.version,
    usage: [stringId, badVersion].every((message) => message.startsWith(UsageError.name)),
    invalid: [missing, nestedDate].every((message) => message.startsWith(InvalidEventDataError.name)),
    balance: (await dataSource.manager.findOneByOrFail(Ledger, { id: ledger.id })).balance,
    verified: await es.verify(Ledger),
  }));
  await worker.close();
  await es.close();
  await dataSource.destroy();
}
main().catch((error) => { console.error(error); process.exit(1); });
`,
  );
  writeFileSync(path.join(app, 'tsconfig.hardening.json'), JSON.stringify({ extends: './tsconfig.json', include: ['hardening-app.ts'] }));
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.hardening.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const run = spawnSync(process.execPath, [path.join(app, 'out', 'hardening-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('pack_hardening'), QUEUE_NAME: `pack-hardening-${process.pid}-${Date.now()}` },
  });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    orphan: true,
    missing: 'InvalidEventDataError: Ledger.Credited: amount is required (declare @Data({ optional: true }) for an attribute that may be left out)',
    nestedDate:
      'InvalidEventDataError: Ledger.Credited: metadata.at.when is a Date, which would read back as a string: store date.toISOString(), or make it a top-level @Data({ type: () => Date })',
    stringId: "UsageError: history(Ledger): id must be an integer (the type of Ledger.id), got '1'",
    badVersion: "UsageError: es.append(Ledger.Credited): expectedVersion must be a non-negative integer, got '1' (string)",
    failed: [
      'job <id> is not signed by this database: its data or id was changed, or it was added by someone else',
      'job <id> is not signed by this database: its data or id was changed, or it was added by someone else',
    ],
    runs: [10, 100],
    lost: true,
    before: { balance: 10, version: 2 },
    afterLoss: { balance: 10, version: 2, eventId: null },
    retriedVersion: 3,
    usage: true,
    invalid: true,
    balance: 110,
    verified: [],
  });
}, 120_000);

test('mistakes a user makes with build and toHaveEmitted are compile errors, exactly these', () => {
  for (const file of ['model.ts', 'wrong-types.ts']) writeFileSync(path.join(app, file), readFileSync(path.join(fixtures, file)));
  writeFileSync(path.join(app, 'tsconfig.wrong.json'), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noEmit: true }, include: ['wrong-types.ts'] }));
  const compiled = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.wrong.json', '--pretty', 'false'], { cwd: app, encoding: 'utf8' });
  // The first line of each error (the rest elaborates); one error per line of the fixture.
  const errors = (compiled.stdout + compiled.stderr).split('\n').filter((line) => /^\S.*error TS\d+/.test(line));
  expect(errors).toEqual([
    "wrong-types.ts(11,31): error TS2561: Object literal may only specify known properties, but 'subscriptoin' does not exist in type 'EventAttributes<SubscriptionActivated>'. Did you mean to write 'subscription'?",
    "wrong-types.ts(12,29): error TS2345: Argument of type '{ subscription: Subscription; }' is not assignable to parameter of type 'EventAttributes<SubscriptionActivated>'.",
    "wrong-types.ts(13,31): error TS2739: Type 'Account' is missing the following properties from type 'Subscription': status, stripeKey, events",
    "wrong-types.ts(14,31): error TS2353: Object literal may only specify known properties, and 'aggregate' does not exist in type 'EventAttributes<SubscriptionActivated>'.",
    "wrong-types.ts(15,53): error TS2561: Object literal may only specify known properties, but 'stripeKy' does not exist in type 'Partial<Pick<SubscriptionActivated, \"stripeKey\">>'. Did you mean to write 'stripeKey'?",
  ]);
  expect(compiled.stdout).toContain("Property 'stripeKey' is missing in type '{ subscription: Subscription; }' but required in type 'Pick<SubscriptionActivated, \"stripeKey\">'.");
  expect(compiled.status).toBe(2);
}, 60_000);

test('a jest file importing expect from @jest/globals uses toHaveEmitted and a database of its own', async () => {
  writeFileSync(path.join(app, 'model.ts'), readFileSync(path.join(fixtures, 'model.ts')));
  writeFileSync(path.join(app, 'subscription.test.ts'), readFileSync(path.join(fixtures, 'subscription.jest.ts')));
  writeFileSync(path.join(app, 'global-expect.ts'), readFileSync(path.join(fixtures, 'global-expect.ts')));
  // The tsconfig and jest config of docs/getting-started.md.
  writeFileSync(
    path.join(app, 'tsconfig.jest.json'),
    JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noEmit: true, types: ['node', 'jest'] }, include: ['subscription.test.ts', 'global-expect.ts'] }),
  );
  writeFileSync(
    path.join(app, 'jest.config.js'),
    `module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }] },
  testMatch: ['**/*.test.ts'],
  setupFiles: ['reflect-metadata'],
};
`,
  );
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.jest.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const name = `es_test_pack_jest_${process.pid}`;
  const run = spawnSync(process.execPath, [path.join(app, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--json', '--outputFile', path.join(work, 'jest.json')], {
    cwd: app,
    encoding: 'utf8',
    env: { ...process.env, TEST_DATABASE_NAME: name },
  });
  const result = JSON.parse(readFileSync(path.join(work, 'jest.json'), 'utf8'));
  expect({ status: run.status, passed: result.numPassedTests, failed: result.numFailedTests }).toEqual({ status: 0, passed: 3, failed: 0 });
  // database.drop() in afterAll removed it.
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    expect((await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount).toBe(0);
  } finally {
    await client.end();
  }
}, 120_000);

test('a CRUD table moves onto events with the installed package: baseline, verify, the guard, MissingBaselineError', async () => {
  writeFileSync(path.join(app, 'migration-app.ts'), readFileSync(path.join(fixtures, 'migration-app.ts')));
  writeFileSync(path.join(app, 'tsconfig.migration.json'), JSON.stringify({ extends: './tsconfig.json', include: ['migration-app.ts'] }));
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.migration.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const run = spawnSync(process.execPath, [path.join(app, 'out', 'migration-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('pack_migration') },
  });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    waiting: ['noEvents'],
    count: 25,
    refused:
      `BaselineMismatchError: Plan 2: its baseline Plan.Imported does not reproduce the row: retiredAt is "..." in the row but "..." after replay; JavaScript cannot hold these values exactly (PostgreSQL shows them as text here): round them in the table first (date_trunc('milliseconds', ...) for timestamps), or exclude the column`,
    result: { processed: 25, baselined: 25 },
    unchanged: true,
    verified: [],
    direct: true,
    raw: 'QueryFailedError: Plan: UPDATE of plan changes sourced columns without an event (directWrites: reject); write an event instead',
    repricedVersion: 2,
    missing: true,
    again: { processed: 0, baselined: 0 },
  });
}, 120_000);

test('the fast path from the installed package: one statement, stale and edited instances, 16 writers, a migration', async () => {
  writeFileSync(path.join(app, 'fast-path-app.ts'), readFileSync(path.join(fixtures, 'fast-path-app.ts')));
  writeFileSync(path.join(app, 'tsconfig.fast.json'), JSON.stringify({ extends: './tsconfig.json', include: ['fast-path-app.ts'] }));
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.fast.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const run = spawnSync(process.execPath, [path.join(app, 'out', 'fast-path-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('pack_fast_path') },
  });
  expect(run.stderr).toBe('');
  const drop = "'; DROP TABLE account; --";
  expect(JSON.parse(run.stdout)).toEqual({
    create: ['WITH "a"'],
    append: ['WITH "a"'],
    instance: { balance: '10.50', version: 2, tags: { [drop]: drop } },
    edit: { instance: `O'Brien "</script>" 🦀`, row: `O'Brien "</script>" 🦀` },
    stale: 'Account 2: expected version 3, but it is at version 4',
    writers: { written: 16, contiguous: true, events: 20 },
    noted: ['START TRANSACTION', 'SELECT "aggregate"."id"', 'UPDATE "account"', 'INSERT INTO', 'COMMIT'],
    owner: `O'Brien "</script>" 🦀 (vip)`,
    // The prepared statement's plan went stale (0A000) and was prepared again under a new name.
    migrated: { version: 23, errors: ['0A000'] },
    // What an apply reading a column events do not decide cannot give back: replay sees no note.
    verified: [{ id: 2, column: 'owner', reason: 'drift', stored: `O'Brien "</script>" 🦀 (vip)`, replayed: `O'Brien "</script>" 🦀 (no note)` }],
  });
}, 120_000);

test('an upgrade from the installed package: release 2 reads release 1\'s events upcast and renamed, projects, rebuilds and folds them, and reports its health', async () => {
  for (const file of ['evolution-release1.ts', 'evolution-release2.ts']) writeFileSync(path.join(app, file), readFileSync(path.join(fixtures, file)));
  writeFileSync(path.join(app, 'tsconfig.evolution.json'), JSON.stringify({ extends: './tsconfig.json', include: ['evolution-release1.ts', 'evolution-release2.ts'] }));
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.evolution.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const env = { ...process.env, DATABASE_URL: await freshDatabase('pack_evolution') };
  const release1 = spawnSync(process.execPath, [path.join(app, 'out', 'evolution-release1.js')], { encoding: 'utf8', env });
  expect(release1.stderr).toBe('');
  expect(JSON.parse(release1.stdout)).toEqual({ events: 6 });
  const release2 = spawnSync(process.execPath, [path.join(app, 'out', 'evolution-release2.js')], { encoding: 'utf8', env });
  expect(release2.stderr).toBe('');
  const hostile = `'; DROP TABLE subscription; -- "</script>" 🦀`;
  expect(JSON.parse(release2.stdout)).toEqual({
    history: [
      ['SubscriptionCreated', 'Subscription.Created', 1, null],
      ['SubscriptionActivated', 'Subscription.Activated', 1, 'basic'],
    ],
    verify: [],
    row: { status: 'active', plan: 'pro', version: 3 },
    stored: [{ type: 'Subscription.Activated', schema_version: 2 }],
    retired: 'RetiredEventTypeError: Subscription.Paused (SubscriptionPaused) is retired: its old events still load, but no new ones are written',
    upcastHelper: 'basic',
    caughtUp: { processed: 4 },
    plans: [
      { plan: 'basic', count: 1 },
      { plan: 'pro', count: 1 },
    ],
    rebuilt: { processed: 3, mode: 'swap' },
    recounted: [
      { plan: 'basic', count: 2 },
      { plan: 'pro', count: 1 },
    ],
    schemaDiff: 0,
    keys: [`basic:${hostile}`, 'basic:sub_2', 'pro:sub_pro'],
    future: expect.stringMatching(/^EventSchemaVersionError: Subscription\.Activated event 8 is stored with schema version 3, but this code knows versions up to 2/),
    futureIsNamed: true,
    projectionError: true,
    lastError: expect.stringContaining('schema version 3'),
    health: { status: 'degraded', database: 'ok', projections: [['subscriptions-by-plan', 'degraded']] },
    retiredName: 'RetiredEventTypeError',
  });
}, 120_000);

/**
 * A TypeScript app of its own in the work folder, with the tarball, TypeORM, pg and the given
 * packages (at the repository's versions) installed, and `fixture` (with the shared model)
 * compiled to out/. For integrations whose peers the main app must not have.
 */
function separateApp(name: string, packages: readonly string[], fixture: string): string {
  const dir = path.join(work, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `pack-${name}`, private: true }));
  const versionOf = (pkg: string) => `${pkg}@${JSON.parse(readFileSync(path.join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version}`;
  const install = spawnSync(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, 'typeorm@1.1.1', 'pg@8.23.1', 'reflect-metadata@0.2.2', '@types/node@20', ...['typescript', ...packages].map(versionOf)],
    { cwd: dir, encoding: 'utf8' },
  );
  if (install.status !== 0) throw new Error(`npm install in ${name} failed:\n${install.stdout}${install.stderr}`);
  for (const file of [fixture, 'model.ts']) writeFileSync(path.join(dir, file), readFileSync(path.join(fixtures, file)));
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'commonjs', strict: true, experimentalDecorators: true, emitDecoratorMetadata: true,
        rootDir: '.', outDir: 'out', types: ['node'], skipLibCheck: false,
      },
      include: [fixture],
    }),
  );
  const compiled = spawnSync(process.execPath, [path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(dir, 'tsconfig.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  return dir;
}

test('NestJS from the installed package: a Nest application boots on its module, runs an injected reactor on hostile data, and closes', async () => {
  const nestApp = separateApp('nest-app', ['@nestjs/common', '@nestjs/core', '@nestjs/typeorm', 'rxjs'], 'nest-app.ts');
  const run = spawnSync(process.execPath, [path.join(nestApp, 'out', 'nest-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('pack_nest'), QUEUE_NAME: `pack-nest-${process.pid}-${Date.now()}` },
  });
  expect(run.stderr).toBe('');
  const hostile = `'; DROP TABLE subscription; -- "</script>" 🦀`;
  expect(JSON.parse(run.stdout)).toEqual({ receipts: [`${hostile} (async)`], row: { status: 'active', stripeKey: hostile, version: 2 }, closed: true });
}, 180_000);

test('the event browser from the installed package: pages over hostile data, a failed job retried with its form token, 404 and 400', async () => {
  for (const file of ['browser-app.ts', 'model.ts']) writeFileSync(path.join(app, file), readFileSync(path.join(fixtures, file)));
  writeFileSync(path.join(app, 'tsconfig.browser.json'), JSON.stringify({ extends: './tsconfig.json', include: ['browser-app.ts'] }));
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.browser.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const run = spawnSync(process.execPath, [path.join(app, 'out', 'browser-app.js')], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: await freshDatabase('pack_browser'), QUEUE_NAME: `pack-browser-${process.pid}-${Date.now()}` },
  });
  expect(run.stderr).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    statuses: [200, 200, 200, 200],
    scriptless: true,
    escaped: true,
    aggregateShows: true,
    eventShows: true,
    feedRows: 1,
    retried: 303,
    forged: 403,
    jobAfter: ['Charge'],
    notFound: 404,
    badId: 400,
    badDate: 400,
    rows: 1,
  });
}, 120_000);

test('OpenTelemetry from the installed package: a request traced in one process continues in the worker process, hostile trace context included', async () => {
  // An app of its own: the main app must not have @opentelemetry/api (the next test checks the
  // entry point fails without its peer).
  const otelApp = separateApp('otel-app', ['@opentelemetry/api', '@opentelemetry/sdk-trace-base', '@opentelemetry/context-async-hooks'], 'otel-app.ts');
  const env = { ...process.env, DATABASE_URL: await freshDatabase('pack_otel'), QUEUE_NAME: `pack-otel-${process.pid}-${Date.now()}` };
  const writer = spawnSync(process.execPath, [path.join(otelApp, 'out', 'otel-app.js'), 'write'], { encoding: 'utf8', env });
  expect(writer.stderr).toBe('');
  const worker = spawnSync(process.execPath, [path.join(otelApp, 'out', 'otel-app.js'), 'work'], { encoding: 'utf8', env });
  expect(worker.stderr).toBe('');
  type Span = { name: string; traceId: string; spanId: string; parent: string | null; eventId: number | null };
  const written: { spans: Span[]; metadata: { id: number; metadata: Record<string, string> }[]; jobData: string[] } = JSON.parse(writer.stdout);
  const worked: { spans: Span[]; welcomes: number } = JSON.parse(worker.stdout);
  const request = written.spans.find((span) => span.name === 'POST /subscriptions/activate')!;
  const commands = written.spans.filter((span) => span.name === 'es.command ActivateSubscription');
  expect(commands.map((span) => span.parent)).toEqual([request.spanId, request.spanId]);
  const appendOf = (eventId: number) => written.spans.find((span) => span.name === 'es.append' && span.eventId === eventId)!;
  for (const row of written.metadata) expect(commands.map((command) => command.spanId)).toContain(appendOf(row.id).parent);
  const hostile = `'; DROP TABLE subscription; -- "</script>" 🦀`;
  // Each event's metadata holds the writer's trace context, not the one the client sent.
  expect(written.metadata.map((row) => row.metadata)).toEqual(
    written.metadata.map((row) => ({ note: hostile, traceparent: `00-${request.traceId}-${appendOf(row.id).spanId}-01` })),
  );
  expect(written.jobData).toEqual([`00-${hostile}`, written.metadata[0].metadata.traceparent].sort());
  // In the worker process: each job's span is a child of the span that wrote its event, in the
  // request's trace; the garbled context in the second job's data is ignored for the event's own.
  const jobs = worked.spans.filter((span) => span.name === 'es.reactor Welcome');
  expect(jobs.map((span) => ({ eventId: span.eventId, traceId: span.traceId, parent: span.parent })).sort((a, b) => a.eventId! - b.eventId!)).toEqual(
    written.metadata.map((row) => ({ eventId: row.id, traceId: request.traceId, parent: appendOf(row.id).spanId })),
  );
  expect(worked.welcomes).toBe(2);
}, 180_000);

test('the exports map exposes the entry point and package.json, not internal files', () => {
  const probe = (specifier: string) =>
    spawnSync(process.execPath, ['-e', `require(${JSON.stringify(specifier)})`], { cwd: app, encoding: 'utf8' });
  expect(probe('typeorm-event-sourcing').status).toBe(0);
  expect(probe('typeorm-event-sourcing/package.json').status).toBe(0);
  expect(probe('typeorm-event-sourcing/testing').status).toBe(0);
  // The bull-board entry needs its optional peer, which this app did not install: Node says so.
  const bullBoard = probe('typeorm-event-sourcing/bull-board');
  expect(bullBoard.status).not.toBe(0);
  expect(bullBoard.stderr).toContain("Cannot find module '@bull-board/api/bullMQAdapter'");
  const openTelemetry = probe('typeorm-event-sourcing/opentelemetry');
  expect(openTelemetry.status).not.toBe(0);
  expect(openTelemetry.stderr).toContain("Cannot find module '@opentelemetry/api'");
  const nest = probe('typeorm-event-sourcing/nestjs');
  expect(nest.status).not.toBe(0);
  expect(nest.stderr).toContain("Cannot find module '@nestjs/common'");
  // The event browser has no optional peer: it loads in an app that installed none.
  const browser = spawnSync(process.execPath, ['-e', `console.log(typeof require('typeorm-event-sourcing/browser').createEventBrowser)`], { cwd: app, encoding: 'utf8' });
  expect(browser.stderr).toBe('');
  expect(browser.stdout).toBe('function\n');
  const internal = probe('typeorm-event-sourcing/dist/events/write-path');
  expect(internal.status).not.toBe(0);
  expect(internal.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  expect(JSON.parse(readFileSync(path.join(app, 'node_modules', 'typeorm-event-sourcing', 'package.json'), 'utf8')).types).toBe('dist/index.d.ts');
});

test('the main entry point loads none of the CLI, testing, browser or integration modules', () => {
  const loaded = spawnSync(
    process.execPath,
    ['-e', `require('reflect-metadata'); require('typeorm-event-sourcing'); console.log(JSON.stringify(Object.keys(require.cache)))`],
    { cwd: app, encoding: 'utf8' },
  );
  expect(loaded.stderr).toBe('');
  const modules: string[] = JSON.parse(loaded.stdout);
  expect(modules.filter((file) => /node_modules\/(commander|cli-progress|jest|expect|@jest|@bull-board|@opentelemetry|@nestjs)\/|typeorm-event-sourcing\/dist\/(cli\/program|testing|bull-board|opentelemetry|nestjs|browser|replay\/state-trail|observability\/bull-board|observability\/open-telemetry)/.test(file))).toEqual([]);
  expect(modules.some((file) => file.includes('typeorm-event-sourcing/dist/index.js'))).toBe(true);
});

test('the typeorm-es bin of the installed package runs: --help without a DataSource, a command on one', async () => {
  const bin = path.join(app, 'node_modules', '.bin', 'typeorm-es');
  const help = spawnSync(bin, ['--help'], { cwd: app, encoding: 'utf8' });
  expect(help.status).toBe(0);
  expect(help.stdout).toMatch(/^Usage: typeorm-es/m);
  for (const command of ['history', 'state', 'verify', 'rebuild', 'baseline', 'trace', 'stats', 'schema:sql', 'worker', 'relay']) {
    expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  }
  // The migration app's DataSource, exported from a module as the CLI expects.
  writeFileSync(
    path.join(app, 'cli-data-source.ts'),
    readFileSync(path.join(fixtures, 'migration-app.ts'), 'utf8').replace(/async function errorOf[\s\S]*$/, '') +
      `export const dataSource = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL, entities: [Plan, PlanEvent, PlanImported, PlanRepriced, Coupon, CouponEvent, CouponRenamed] });\n`,
  );
  writeFileSync(path.join(app, 'tsconfig.cli.json'), JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noUnusedLocals: false }, include: ['cli-data-source.ts'] }));
  const compiled = spawnSync(process.execPath, [tsc, '-p', path.join(app, 'tsconfig.cli.json')], { encoding: 'utf8' });
  expect(compiled.stdout + compiled.stderr).toBe('');
  const url = await freshDatabase('pack_cli');
  const env = { ...process.env, DATABASE_URL: url };
  // The schema as synchronize makes it, and three rows from before events.
  const setup = spawnSync(
    process.execPath,
    [
      '-e',
      `const { EventSourcing } = require('typeorm-event-sourcing');
       const { dataSource } = require('./out/cli-data-source.js');
       (async () => {
         dataSource.setOptions({ synchronize: true });
         await dataSource.initialize();
         const es = await EventSourcing.attach(dataSource);
         await dataSource.query("INSERT INTO plan (name, price) SELECT 'p' || n, n FROM generate_series(1, 3) n");
         await es.close();
         await dataSource.destroy();
       })().catch((error) => { console.error(error); process.exit(1); });`,
    ],
    { cwd: app, encoding: 'utf8', env },
  );
  expect(setup.stderr).toBe('');
  const cli = (...args: string[]) => spawnSync(bin, ['-d', 'out/cli-data-source.js', ...args], { cwd: app, encoding: 'utf8', env });
  const waiting = cli('verify', 'Plan', '--json');
  expect(waiting.status).toBe(1);
  expect(JSON.stringify(JSON.parse(waiting.stdout))).toContain('noEvents');
  const baseline = cli('baseline', 'Plan', '--json');
  expect(baseline.status).toBe(0);
  expect(JSON.parse(baseline.stdout)).toMatchObject({ processed: 3, baselined: 3 });
  expect(cli('verify', 'Plan').status).toBe(0);
  const history = cli('history', 'Plan', '2', '--json');
  expect(history.status).toBe(0);
  expect(JSON.stringify(JSON.parse(history.stdout))).toContain('Plan.Imported');
  const unknown = cli('verify', 'Nope');
  expect(unknown.status).toBe(2);
  expect(unknown.stdout).toBe('');
  expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
}, 120_000);
