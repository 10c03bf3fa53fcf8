-- Issue 10: case membership, human review of predictions, two-admin promotion requests.

-- CreateEnum
CREATE TYPE "ReviewVerdict" AS ENUM ('CONFIRMED', 'REJECTED', 'NEEDS_EXPERT');

-- CreateEnum
CREATE TYPE "PromotionStatus" AS ENUM ('PENDING', 'APPROVED', 'REJECTED');

-- CreateTable
CREATE TABLE "CaseMember" (
    "caseId" UUID NOT NULL,
    "apiKeyId" UUID NOT NULL,
    "addedById" UUID,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CaseMember_pkey" PRIMARY KEY ("caseId","apiKeyId")
);

-- CreateTable
CREATE TABLE "PredictionReview" (
    "id" UUID NOT NULL,
    "predictionId" UUID NOT NULL,
    "verdict" "ReviewVerdict" NOT NULL,
    "reason" TEXT NOT NULL,
    "reviewerId" UUID NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PredictionReview_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PromotionRequest" (
    "id" UUID NOT NULL,
    "modelVersionId" UUID NOT NULL,
    "status" "PromotionStatus" NOT NULL DEFAULT 'PENDING',
    "reason" TEXT NOT NULL,
    "requestedById" UUID NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "decidedById" UUID,
    "decisionReason" TEXT,
    "overrideReason" TEXT,
    "comparison" JSONB,
    "decidedAt" TIMESTAMPTZ(3),

    CONSTRAINT "PromotionRequest_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "CaseMember_apiKeyId_idx" ON "CaseMember"("apiKeyId");

-- CreateIndex
CREATE INDEX "PredictionReview_predictionId_createdAt_idx" ON "PredictionReview"("predictionId", "createdAt");

-- CreateIndex
CREATE INDEX "PromotionRequest_status_createdAt_idx" ON "PromotionRequest"("status", "createdAt");

-- CreateIndex
CREATE INDEX "PromotionRequest_modelVersionId_idx" ON "PromotionRequest"("modelVersionId");

-- AddForeignKey
ALTER TABLE "CaseMember" ADD CONSTRAINT "CaseMember_caseId_fkey" FOREIGN KEY ("caseId") REFERENCES "Case"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CaseMember" ADD CONSTRAINT "CaseMember_apiKeyId_fkey" FOREIGN KEY ("apiKeyId") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "CaseMember" ADD CONSTRAINT "CaseMember_addedById_fkey" FOREIGN KEY ("addedById") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PredictionReview" ADD CONSTRAINT "PredictionReview_predictionId_fkey" FOREIGN KEY ("predictionId") REFERENCES "Prediction"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PredictionReview" ADD CONSTRAINT "PredictionReview_reviewerId_fkey" FOREIGN KEY ("reviewerId") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PromotionRequest" ADD CONSTRAINT "PromotionRequest_modelVersionId_fkey" FOREIGN KEY ("modelVersionId") REFERENCES "ModelVersion"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PromotionRequest" ADD CONSTRAINT "PromotionRequest_requestedById_fkey" FOREIGN KEY ("requestedById") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PromotionRequest" ADD CONSTRAINT "PromotionRequest_decidedById_fkey" FOREIGN KEY ("decidedById") REFERENCES "ApiKey"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- Every existing case keeps its creator as its first member (deny by default for everyone else).
INSERT INTO "CaseMember" ("caseId", "apiKeyId", "addedById", "createdAt")
SELECT "id", "createdById", "createdById", "createdAt" FROM "Case";

-- Constraints Prisma's schema language cannot express (kept by hand; tested in test/integration).

-- Reviews are part of the record: a later review supersedes an earlier one, never edits it.
CREATE TRIGGER "PredictionReview_append_only" BEFORE UPDATE OR DELETE ON "PredictionReview"
  FOR EACH ROW EXECUTE FUNCTION "refuse_change"();
CREATE TRIGGER "PredictionReview_no_truncate" BEFORE TRUNCATE ON "PredictionReview"
  FOR EACH STATEMENT EXECUTE FUNCTION "refuse_change"();

-- Two admins for a promotion: the key that decides is never the key that asked.
ALTER TABLE "PromotionRequest" ADD CONSTRAINT "PromotionRequest_second_admin_check"
  CHECK ("decidedById" IS NULL OR "decidedById" <> "requestedById");
-- A decided request carries who, why and when.
ALTER TABLE "PromotionRequest" ADD CONSTRAINT "PromotionRequest_decision_check"
  CHECK (("status" = 'PENDING') = ("decidedById" IS NULL AND "decisionReason" IS NULL AND "decidedAt" IS NULL));
-- At most one open request per model version.
CREATE UNIQUE INDEX "PromotionRequest_one_pending_key" ON "PromotionRequest"("modelVersionId") WHERE "status" = 'PENDING';
