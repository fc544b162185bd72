// #region imports
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { EventSourcingModule } from 'typeorm-event-sourcing/nestjs';
import { Subscription } from '../subscriptions/model';
// #endregion imports

// #region config
/** The application's configuration (a ConfigService from @nestjs/config works the same way). */
@Injectable()
export class AppConfig {
  readonly databaseUrl = process.env.DATABASE_URL;
  readonly redisUrl = process.env.REDIS_URL;
  readonly queueName = process.env.QUEUE_NAME ?? 'subscriptions';
  readonly role = process.env.ROLE ?? 'api';
}

@Module({ providers: [AppConfig], exports: [AppConfig] })
export class ConfigModule {}
// #endregion config

// #region for-root-async
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      imports: [ConfigModule],
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({ type: 'postgres', url: config.databaseUrl, autoLoadEntities: true, synchronize: true }),
    }),
    EventSourcingModule.forRootAsync({
      imports: [ConfigModule],
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        queue: { connection: config.redisUrl, name: config.queueName },
        worker: { enabled: config.role === 'worker' },
      }),
    }),
    EventSourcingModule.forFeature([Subscription]),
  ],
})
export class ConfiguredAppModule {}
// #endregion for-root-async

/** Run directly, boots the module and closes it: what the test does to check the options reach the library. */
async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(ConfiguredAppModule, { logger: ['error', 'warn'] });
  const { EVENT_SOURCING } = await import('typeorm-event-sourcing/nestjs');
  const es = app.get(EVENT_SOURCING);
  const health = await es.health();
  await app.close();
  console.log(JSON.stringify({ status: health.status, queue: health.queue.status }));
}

if (require.main === module) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
