#!/bin/sh
# Entry point of a RabbitMQ node (compose.yaml): the Erlang cookie and the gateway's broker user
# come from secrets, then the image's own entrypoint runs.  The cookie must be the same on the
# three nodes (they refuse each other otherwise) and readable by its owner only.
set -eu
umask 077
for home in /var/lib/rabbitmq /root; do
    install -m 0400 /run/secrets/erlang-cookie "$home/.erlang.cookie"
done
chown rabbitmq:rabbitmq /var/lib/rabbitmq/.erlang.cookie
# The gateway's user (administrator: `gateway agencies provision` makes the agencies' users with
# it).  Used only when a node starts with an empty database: the cluster keeps users after that.
password="$(cat /run/secrets/rabbitmq-password)"
printf 'default_user = gateway\ndefault_pass = %s\ndefault_user_tags.administrator = true\n' \
    "$password" > /etc/rabbitmq/conf.d/20-default-user.conf
chown rabbitmq:rabbitmq /etc/rabbitmq/conf.d/20-default-user.conf
exec docker-entrypoint.sh "$@"
