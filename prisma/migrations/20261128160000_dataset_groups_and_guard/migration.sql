-- Person-aware splits: a dataset item may name its group (the person, or a proxy such as a run of
-- consecutive file numbers); frozen versions keep it, so every split keeps a group on one side.
ALTER TABLE "DatasetItem" ADD COLUMN "groupKey" TEXT;
ALTER TABLE "DatasetVersionItem" ADD COLUMN "groupKey" TEXT;

-- Out-of-distribution guard: a prediction may be refused as NOT_AN_EYE; the guard's score and
-- threshold are kept with every prediction made by a model that has a guard.
ALTER TYPE "Decision" ADD VALUE 'NOT_AN_EYE';
ALTER TABLE "Prediction" ADD COLUMN "guardScore" DOUBLE PRECISION;
ALTER TABLE "Prediction" ADD COLUMN "guardThreshold" DOUBLE PRECISION;
