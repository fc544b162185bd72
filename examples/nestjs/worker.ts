// #region imports
import { NestFactory } from '@nestjs/core';
// #endregion imports

// #region worker
/** The worker process: the same module without HTTP, its worker enabled by ROLE=worker. */
async function main(): Promise<void> {
  process.env.ROLE = 'worker';
  // Loaded after ROLE is set: AppModule reads it when its decorators run.
  const { AppModule } = await import('./app.module');
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  // SIGTERM lets running jobs finish, closes the worker and relay, then the DataSource.
  // useProcessExit: exit 0 once everything closed (1 if closing failed), instead of Nest's
  // default of raising the signal again, which ends the process by SIGTERM however it went.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  console.log('worker running');
}
// #endregion worker

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
