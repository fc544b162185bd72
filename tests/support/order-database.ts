import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { OrderEvent } from '../processes/model';

/** Runs `work` on a fresh connection to `serverUrl`, closed afterwards. */
export async function onServer<T>(serverUrl: string | undefined, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** What the databases of the reliability and outage tests both answer: the orders' events and the outbox. */
export abstract class OrderDatabase {
  protected constructor(readonly dataSource: DataSource, readonly url: string) {}

  get eventsTable(): string {
    return this.dataSource.getMetadata(OrderEvent).tableName;
  }

  async eventIds(): Promise<number[]> {
    const rows: Array<{ id: number }> = await this.dataSource.query(`SELECT id::int AS id FROM ${this.eventsTable} ORDER BY id`);
    return rows.map((row) => row.id);
  }

  async outboxCount(): Promise<number> {
    const [{ count }] = await this.dataSource.query(`SELECT count(*)::int AS count FROM es_outbox`);
    return count;
  }

  /** Drops this database on `serverUrl` (the connection must be closed). */
  protected async drop(serverUrl: string | undefined): Promise<void> {
    const database = new URL(this.url).pathname.slice(1);
    await onServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
  }
}
