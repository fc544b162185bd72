import type { Driver } from 'typeorm';

/** An entity's table as SQL: quoted by the driver, and qualified by its schema when it has one. */
export function tableSql(driver: Driver, metadata: { schema?: string; tableName: string }): string {
  return (metadata.schema ? `${driver.escape(metadata.schema)}.` : '') + driver.escape(metadata.tableName);
}
