import type { MigrationInterface, QueryRunner } from 'typeorm';

/** As `typeorm migration:generate` writes it for examples/subscriptions/model.ts. */
export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE TABLE "subscription" ("id" SERIAL NOT NULL, "userId" integer NOT NULL, "rewardId" integer, "status" character varying NOT NULL DEFAULT 'pending', "stripeKey" character varying, "activatedAt" TIMESTAMP WITH TIME ZONE, "version" integer NOT NULL DEFAULT '0', CONSTRAINT "PK_8c3e00ebd02103caa1174cd5d9d" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE TABLE "subscription_events" ("id" BIGSERIAL NOT NULL, "version" integer NOT NULL, "schema_version" integer NOT NULL DEFAULT '1', "data" jsonb NOT NULL, "metadata" jsonb NOT NULL, "created_at" TIMESTAMP(3) WITH TIME ZONE NOT NULL, "position" bigint NOT NULL, "tx_id" bigint NOT NULL DEFAULT txid_current(), "subscription_id" integer NOT NULL, "type" character varying(255) NOT NULL, CONSTRAINT "PK_7eb5647aa3071cffad0124bceee" PRIMARY KEY ("id"))`);
    await queryRunner.query(`CREATE UNIQUE INDEX "IDX_12f1eb2127d34d60337e583207" ON "subscription_events"  ("subscription_id", "version")`);
    await queryRunner.query(`CREATE INDEX "IDX_7eb1e6d8464f71c6c7e1b99ad0" ON "subscription_events"  ("type")`);
    await queryRunner.query(`ALTER TABLE "subscription_events" ADD CONSTRAINT "FK_485cf051a532ff3a47059d440da" FOREIGN KEY ("subscription_id") REFERENCES "subscription"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "subscription_events" DROP CONSTRAINT "FK_485cf051a532ff3a47059d440da"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_7eb1e6d8464f71c6c7e1b99ad0"`);
    await queryRunner.query(`DROP INDEX "public"."IDX_12f1eb2127d34d60337e583207"`);
    await queryRunner.query(`DROP TABLE "subscription_events"`);
    await queryRunner.query(`DROP TABLE "subscription"`);
  }
}
