#!/bin/sh
# Entry point of a RabbitMQ node (compose.yaml): the Erlang cookie and the gateway's broker user
# come from secrets, then the image's own entrypoint runs.  The cookie must be the same on the
# three nodes (they refuse each other otherwise) and readable by its owner only; it is written
# to the node's home (its data volume) at every start, whether the image starts as root or as
# the rabbitmq user.
set -eu
umask 077
cookie=/var/lib/rabbitmq/.erlang.cookie
rm -f "$cookie"
cp /run/secrets/erlang-cookie "$cookie"
chmod 0400 "$cookie"
if [ "$(id -u)" = 0 ]; then
    chown rabbitmq:rabbitmq "$cookie"
fi
# The gateway's user, an administrator (`gateway agencies provision` makes the agencies' users
# with it).  RabbitMQ reads these itself, and only when a node starts with an empty database:
# the cluster keeps its users after that.
RABBITMQ_DEFAULT_USER=gateway
RABBITMQ_DEFAULT_PASS="$(cat /run/secrets/rabbitmq-password)"
export RABBITMQ_DEFAULT_USER RABBITMQ_DEFAULT_PASS
exec docker-entrypoint.sh "$@"
