#!/bin/bash
# Run once by the official postgres image when the primary's data folder is first made: the
# replication user (password from the replication-password secret), the standby's slot (the
# primary keeps the WAL the standby has not received yet) and the pg_hba line that lets it in.
set -euo pipefail
password="$(cat /run/secrets/replication-password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     --set=password="$password" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SELECT pg_create_physical_replication_slot('standby1');
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
