-- CreateEnum
CREATE TYPE "StageChangeKind" AS ENUM ('REGISTER', 'PROMOTE', 'REPLACE', 'ROLLBACK', 'RESTORE', 'ARCHIVE');

-- AlterTable: existing rows get the kind their stages imply (rollbacks before this column existed
-- were recorded with reasons starting "rolled back:" / "rollback from version").
ALTER TABLE "ModelStageChange" ADD COLUMN "kind" "StageChangeKind";
UPDATE "ModelStageChange" SET "kind" = CASE
  WHEN "fromStage" IS NULL THEN 'REGISTER'
  WHEN "toStage" = 'PRODUCTION' AND "reason" LIKE 'rollback from version%' THEN 'RESTORE'
  WHEN "toStage" = 'PRODUCTION' THEN 'PROMOTE'
  WHEN "fromStage" = 'PRODUCTION' AND "reason" LIKE 'rolled back:%' THEN 'ROLLBACK'
  WHEN "fromStage" = 'PRODUCTION' THEN 'REPLACE'
  ELSE 'ARCHIVE'
END::"StageChangeKind";
ALTER TABLE "ModelStageChange" ALTER COLUMN "kind" SET NOT NULL;
