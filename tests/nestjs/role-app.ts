// One module definition for an API process and a worker process (ROLE=api|worker), run as child
// processes by nestjs-shutdown.test.ts and nestjs-api-worker.test.ts. The reactor takes SLOW_MS
// per job and records each finished run in reactor_runs through the injected DataSource, so a
// DataSource destroyed before the worker drained would show as a driver error on stderr.
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { getDataSourceToken, InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import type { EventSourcing } from '../../src';
import { EVENT_SOURCING, EventSourcingModule, Reactor } from '../../src/nestjs';
import { SubscriptionCreated, Subscription } from './model';

const role = process.env.ROLE === 'worker' ? 'worker' : 'api';
const slowMs = Number(process.env.SLOW_MS ?? 0);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

@Reactor(SubscriptionCreated, { async: true, attempts: 3, backoff: 10 })
@Injectable()
class SlowWelcome {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}
  async call(event: SubscriptionCreated): Promise<void> {
    await sleep(slowMs);
    await this.dataSource.query('INSERT INTO reactor_runs (event_id, pid, role) VALUES ($1, $2, $3)', [event.id, process.pid, role]);
  }
}

@Module({
  imports: [
    // SYNC=1 for the first process only: two synchronizing at once would race on CREATE TABLE.
    TypeOrmModule.forRoot({ type: 'postgres', url: process.env.DATABASE_URL, autoLoadEntities: true, synchronize: process.env.SYNC === '1' }),
    EventSourcingModule.forRoot({
      queue: { connection: process.env.REDIS_URL, name: process.env.QUEUE_NAME },
      worker: { enabled: role === 'worker', concurrency: 2 },
      onError: (error) => console.error('onError', error),
    }),
    EventSourcingModule.forFeature([Subscription]),
  ],
  providers: [SlowWelcome],
})
class RoleModule {}

const say = (message: Record<string, unknown>) => console.log(JSON.stringify(message));

async function api(): Promise<void> {
  const app = await NestFactory.createApplicationContext(RoleModule, { logger: ['error', 'warn'] });
  const es = app.get<EventSourcing>(EVENT_SOURCING);
  const dataSource = app.get<DataSource>(getDataSourceToken());
  const count = Number(process.env.EVENTS ?? 1);
  for (let i = 0; i < count; i++) await es.append(SubscriptionCreated.build({}));
  say({ written: count });
  // Alive while the worker runs the jobs: the API process must not take any of them.
  if (process.env.WAIT_FOR_RUNS) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [{ done }] = await dataSource.query('SELECT count(DISTINCT event_id)::int AS done FROM reactor_runs');
      if (done >= count || Date.now() > deadline) break;
      await sleep(50);
    }
  }
  const [{ mine }] = await dataSource.query('SELECT count(*)::int AS mine FROM reactor_runs WHERE pid = $1', [process.pid]);
  await app.close();
  say({ ownRuns: mine, closed: true });
}

async function worker(): Promise<void> {
  const app = await NestFactory.createApplicationContext(RoleModule, { logger: ['error', 'warn'] });
  // useProcessExit: exit 0 once the hooks ran, instead of re-raising the signal.
  app.enableShutdownHooks(['SIGTERM'], { useProcessExit: true });
  process.on('exit', (code) => say({ exit: code }));
  say({ ready: process.pid });
}

(role === 'worker' ? worker() : api()).catch((error) => {
  console.error(error);
  process.exit(1);
});
