-- Instances per virtual account, maintained with every registration, removal and move,
-- so paged listings report their total without counting a million rows.
CREATE TABLE va_instance_counts (
    va_id     INTEGER PRIMARY KEY REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    instances INTEGER NOT NULL CHECK (instances >= 0)
);

INSERT INTO va_instance_counts (va_id, instances)
    SELECT va_id, COUNT(*) FROM product_instances GROUP BY va_id;
