-- A fencing token for the sending queue: every claim takes the next value, and every renewal
-- and outcome write names the claim it belongs to, so a worker whose lease ran out and was
-- taken over can neither extend it nor record over the new holder.
ALTER TABLE send_jobs ADD COLUMN claim BIGINT NOT NULL DEFAULT 0;
