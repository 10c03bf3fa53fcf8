-- Issue 14: an upload's row write checks for discards of its bytes in the database instead of
-- asking the object store whether its object still exists (one S3 request fewer per new image).

-- CreateTable: each deletion of an image object that no row referenced (a failed request's clean-up
-- or the orphan sweeper), written after the deletion under the image's lock. Kept for the orphan
-- grace period, then pruned by the sweep.
CREATE TABLE "ImageDiscard" (
    "id" BIGSERIAL NOT NULL,
    "sha256" CHAR(64) NOT NULL,
    "discardedAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ImageDiscard_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ImageDiscard_sha256_idx" ON "ImageDiscard"("sha256");

-- CreateIndex
CREATE INDEX "ImageDiscard_discardedAt_idx" ON "ImageDiscard"("discardedAt");

-- Takes the image's advisory lock (held to the end of the transaction), then says whether its
-- object was discarded after the writer's mark (the newest discard id it read before its PUT).
-- VOLATILE, so the read takes a fresh snapshot and sees discards committed while this waited for
-- the lock; the calling INSERT's own snapshot predates the wait.
CREATE FUNCTION "lock_image_discarded_since"(lock_key BIGINT, image_sha256 CHAR(64), mark BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(lock_key);
  RETURN EXISTS (SELECT 1 FROM "ImageDiscard" WHERE sha256 = image_sha256 AND id > mark);
END $$;
