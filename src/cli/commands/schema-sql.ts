import type { CommandRun } from '../command-run';

/** `schema:sql`: what the library needs besides TypeORM's tables, for a migration or psql. */
export async function schemaSql(run: CommandRun): Promise<number> {
  if (run.json) run.printJson({ statements: run.es.schema.statements() });
  else run.print(run.es.schema.sql());
  return 0;
}
