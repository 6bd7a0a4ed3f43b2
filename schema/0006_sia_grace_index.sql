-- Instances in an open SIA out-of-compliance spell, ordered by when their grace period
-- ends (less the grace length), so the alert for grace ending soon reads only those.
CREATE INDEX product_instances_sia_grace
    ON product_instances (va_id, sia_ooc_since - sia_grace_used_seconds)
    WHERE sia_ooc_since IS NOT NULL;
