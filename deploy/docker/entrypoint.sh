#!/bin/sh
# The image's entrypoint: put the SFTP host key in place, then run the command.
#
# Every gateway node must present the same SFTP host key (partners pin it, and a load balancer
# sends them to any node), so in a cluster it is a secret, mounted read-only at
# $GATEWAY_HOST_KEY_SECRET.  The gateway wants its host key private to its own user (mode 0600;
# a key others can read raises alarm GW-A014 and is chmod-ed, which a read-only mount refuses),
# and Secret mounts are owned by root or readable by a group: the key is copied, 0600, to
# $GATEWAY_HOST_KEY (the path sftp.host_key names in gateway.yaml).  Without the secret the
# gateway makes a key on its first start and keeps it (one node with a persistent volume only).
set -eu

secret="${GATEWAY_HOST_KEY_SECRET:-/run/secrets/sftp-host-key}"
target="${GATEWAY_HOST_KEY:-/var/lib/gateway/keys/ssh_host_ed25519_key}"

if [ -f "$secret" ]; then
    umask 077
    mkdir -p "$(dirname "$target")"
    cp "$secret" "$target.new"
    chmod 0600 "$target.new"
    mv -f "$target.new" "$target"
fi

exec "$@"
