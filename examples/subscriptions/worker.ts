// #region imports
import { demoEventSourcing } from './demo-data-source';
// #endregion imports

/** Runs the demo's async reactors until SIGINT or SIGTERM (docker compose's `worker` service). */
async function main(): Promise<void> {
  const { dataSource, es } = await demoEventSourcing();
  // #region worker
  const worker = es.worker({ concurrency: 5 }); // with an outbox relay beside it
  worker.on('completed', (job) => console.log(`done ${job.name} for ${job.data.table}/${job.data.id}`));
  worker.on('failed', (job, error) => console.log(`failed ${job?.name}: ${error.message}`));
  const shutdown = async () => {
    await es.close(); // lets running jobs finish, then closes worker, relay and queue
    await dataSource.destroy();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  // #endregion worker
  console.log('worker running; Ctrl-C to stop');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
