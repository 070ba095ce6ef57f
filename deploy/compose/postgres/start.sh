#!/bin/bash
# Entry point of both PostgreSQL containers (compose.yaml), as root, before the official image's
# entrypoint.  Primary: makes the WAL archive folder its own.  Standby: on its first start (empty
# data folder) clones the primary with pg_basebackup over the replication slot and writes the
# standby configuration (-R: standby.signal, primary_conninfo, primary_slot_name); afterwards
# it starts as a hot standby streaming from the primary.  The replication password is kept in
# ~postgres/.pgpass, written anew at every start from the secret.
set -euo pipefail
install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/wal-archive 2>/dev/null || true
if [ "${POSTGRES_ROLE:-primary}" = standby ]; then
    primary="${POSTGRES_PRIMARY_HOST:?POSTGRES_PRIMARY_HOST names the primary}"
    umask 077
    printf '%s:5432:replication:replicator:%s\n' "$primary" \
        "$(cat /run/secrets/replication-password)" > /var/lib/postgresql/.pgpass
    chown postgres:postgres /var/lib/postgresql/.pgpass
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        install -d -o postgres -g postgres -m 0700 "$PGDATA"
        until gosu postgres pg_isready -q -h "$primary"; do sleep 2; done
        gosu postgres pg_basebackup -h "$primary" -U replicator -D "$PGDATA" \
            -X stream -S standby1 -R --checkpoint=fast --progress
    fi
fi
exec docker-entrypoint.sh postgres "$@"
