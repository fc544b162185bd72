import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Written by `typeorm migration:generate` after upgrading to the release with projections: the
 * index on (tx_id, position) that every events table now declares, the order projections read in.
 */
export class ProjectionOrderIndex1764000000002 implements MigrationInterface {
  name = 'ProjectionOrderIndex1764000000002';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX "IDX_ec2bacc76226c3dc0d7c91b611" ON "subscription_events"  ("tx_id", "position")`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."IDX_ec2bacc76226c3dc0d7c91b611"`);
  }
}
