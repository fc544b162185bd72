// #region imports
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
// #endregion imports

// #region main
/** The API process: HTTP endpoints for the commands, no worker. */
async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  // SIGTERM closes the module (workers, relay, queue) before TypeORM destroys the DataSource.
  // useProcessExit: exit 0 once everything closed (1 if closing failed), instead of Nest's
  // default of raising the signal again, which ends the process by SIGTERM however it went.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  console.log(`listening on ${await app.getUrl()}`);
}
// #endregion main

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
