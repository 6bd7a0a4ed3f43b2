-- The RTU hierarchy as data: one unit of `higher_tag` may cover `factor` units of
-- `lower_tag` when the lower tier falls short. Never SIA (the engine also refuses it).
CREATE TABLE license_hierarchy (
    higher_tag TEXT NOT NULL,
    lower_tag  TEXT NOT NULL,
    factor     INTEGER NOT NULL CHECK (factor > 1),
    PRIMARY KEY (higher_tag, lower_tag)
) WITHOUT ROWID;

INSERT INTO license_hierarchy (higher_tag, lower_tag, factor) VALUES
    ('ESS-AC-400G-RTU-1', 'ESS-AC-100G-RTU-1', 4),
    ('ADV-AC-400G-RTU-1', 'ADV-AC-100G-RTU-1', 4);
