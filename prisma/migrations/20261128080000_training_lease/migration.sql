-- AlterTable
ALTER TABLE "TrainingRun" ADD COLUMN     "leaseOwner" TEXT;
