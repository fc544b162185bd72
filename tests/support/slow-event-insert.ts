import type { DataSource } from 'typeorm';

/**
 * A trigger that makes inserting an event whose `note` is `'slow'` take 3 s, so that a test can
 * break the connection while a write runs. `name` keeps the function apart per test database.
 */
export async function slowEventInserts(dataSource: DataSource, name: string): Promise<void> {
  await dataSource.query(`
    CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.data->>'note' = 'slow' THEN PERFORM pg_sleep(3); END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER ${name} BEFORE INSERT ON subscription_events FOR EACH ROW EXECUTE FUNCTION ${name}();
  `);
}
