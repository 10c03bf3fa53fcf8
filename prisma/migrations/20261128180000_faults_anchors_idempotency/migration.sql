-- Issue 13: the audit chain's head checkpointed outside the audit table, idempotent writes, and
-- the attempt that recorded each training epoch.

-- CreateTable: signed checkpoints of the audit chain's head (append-only, like the chain itself).
CREATE TABLE "AuditAnchor" (
    "id" UUID NOT NULL,
    "seq" BIGINT NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "reason" TEXT NOT NULL,
    "keyId" TEXT NOT NULL,
    "signature" TEXT NOT NULL,
    "objectKey" TEXT,
    "createdAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "AuditAnchor_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "AuditAnchor_seq_idx" ON "AuditAnchor"("seq");

CREATE TRIGGER "AuditAnchor_append_only" BEFORE UPDATE OR DELETE ON "AuditAnchor"
  FOR EACH ROW EXECUTE FUNCTION "refuse_change"();
CREATE TRIGGER "AuditAnchor_no_truncate" BEFORE TRUNCATE ON "AuditAnchor"
  FOR EACH STATEMENT EXECUTE FUNCTION "refuse_change"();

-- CreateTable: the first result of each (API key, Idempotency-Key), written in the same
-- transaction as the change it describes.
CREATE TABLE "IdempotencyKey" (
    "apiKeyId" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "operation" TEXT NOT NULL,
    "requestHash" CHAR(64) NOT NULL,
    "result" JSONB NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "IdempotencyKey_pkey" PRIMARY KEY ("apiKeyId","key")
);

-- CreateIndex
CREATE INDEX "IdempotencyKey_createdAt_idx" ON "IdempotencyKey"("createdAt");

-- AlterTable
ALTER TABLE "TrainingEpoch" ADD COLUMN "attempt" INTEGER NOT NULL DEFAULT 1;
