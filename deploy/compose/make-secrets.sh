#!/bin/sh
# Make ./secrets/ for compose.yaml: random passwords, the two URLs built from them, the Erlang
# cookie and the SFTP host key (every gateway node presents it).  Files that exist are kept, so
# running it again changes nothing.  Still to be put there by hand: signing-key.pem (the
# gateway's signing key), console-users.yaml (`gateway console user add NAME --role admin
# --users secrets/console-users.yaml`) and lb-tls.pem (HAProxy's certificate + key, one PEM).
#
# The folder is the host's only protection (0700, root); the files are 0444 because compose
# bind-mounts them into containers whose users (gateway 10001, postgres 999, rabbitmq 999,
# haproxy 99) differ.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 0700 secrets

random() { head -c 32 /dev/urandom | base64 | tr -d '/+=\n' | cut -c1-32; }
make() {  # make NAME VALUE: write it unless it exists
    if [ ! -e "secrets/$1" ]; then printf '%s' "$2" > "secrets/$1"; echo "made secrets/$1"; fi
}

make postgres-password "$(random)"
make replication-password "$(random)"
make rabbitmq-password "$(random)"
make erlang-cookie "$(random)"
make database-url "postgresql://gateway:$(cat secrets/postgres-password)@postgres-primary:5432/gateway"
make amqp-url "amqp://gateway:$(cat secrets/rabbitmq-password)@rabbitmq:5672/"
if [ ! -e secrets/sftp-host-key ]; then
    ssh-keygen -q -t ed25519 -N '' -C swgateway-sftp -f secrets/sftp-host-key
    echo "made secrets/sftp-host-key; give partners its fingerprint:"
    ssh-keygen -l -f secrets/sftp-host-key.pub
fi
chmod 0444 secrets/*
for needed in signing-key.pem console-users.yaml lb-tls.pem; do
    [ -e "secrets/$needed" ] || echo "still needed: secrets/$needed"
done
