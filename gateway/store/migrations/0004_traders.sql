-- The trader registry: identifications of traders and whether they are authorised economic
-- operators (AEO), for routing rules on trusted traders.  Replaced whole by
-- `gateway traders import FILE.csv`.
CREATE TABLE traders (
    id         text PRIMARY KEY,
    name       text        NOT NULL DEFAULT '',
    aeo        boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
