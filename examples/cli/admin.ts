// #region imports
import type { DataSource } from 'typeorm';
import { EventSourcing, runCli, type CliIO } from 'typeorm-event-sourcing';
import { eventSourcing } from './data-source';
// #endregion imports

// #region admin
/**
 * The application's own admin entry (`node dist/admin.js verify Subscription --fix`): the
 * typeorm-es commands on the application's DataSource, dispatcher and queue, in its process.
 */
export async function admin(dataSource: DataSource, argv: string[], io: CliIO = {}): Promise<number> {
  const es = await EventSourcing.attach(dataSource, eventSourcing);
  try {
    return await runCli(es, argv, io); // the exit code: 0, 1 (verify found drift) or 2 (an error)
  } finally {
    await es.close();
  }
}
// #endregion admin
