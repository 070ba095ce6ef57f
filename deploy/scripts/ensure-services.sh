#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672) are up: start the local
# ones when installed but stopped; install them from the system's packages when missing and we
# are root on Debian/Ubuntu; otherwise say exactly what to install.  Also the OpenSSH client,
# which the tests use as a real SFTP client.
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432 AMQP_HOST=127.0.0.1 AMQP_PORT=5672

say() { printf 'ensure-services: %s\n' "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
wait_port() { # host port seconds name
  for _ in $(seq "$3"); do port_open "$1" "$2" && return 0; sleep 1; done
  say "$4 did not open $1:$2 within $3 s"; return 1
}

ensure_postgres() {
  port_open $PG_HOST $PG_PORT && return 0
  if ! command -v pg_ctlcluster >/dev/null; then
    if can_install; then
      say "PostgreSQL is missing: installing the postgresql package"
      apt_install postgresql
      fresh=1
    else
      say "PostgreSQL is not installed. Install it (Debian/Ubuntu: apt-get install postgresql) and start it on $PG_HOST:$PG_PORT."
      return 1
    fi
  fi
  say "starting PostgreSQL"
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port $PG_HOST $PG_PORT 60 PostgreSQL
  if [ -n "${fresh:-}" ]; then
    # A fresh cluster authenticates TCP clients by password: give postgres the demo one.
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
}

ensure_rabbitmq() {
  port_open $AMQP_HOST $AMQP_PORT && return 0
  if ! command -v rabbitmq-server >/dev/null; then
    if can_install; then
      say "RabbitMQ is missing: installing the rabbitmq-server package"
      apt_install rabbitmq-server
    else
      say "RabbitMQ is not installed. Install it (Debian/Ubuntu: apt-get install rabbitmq-server) and start it on $AMQP_HOST:$AMQP_PORT."
      return 1
    fi
  fi
  say "starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_port $AMQP_HOST $AMQP_PORT 120 RabbitMQ
}

ensure_sftp_client() {
  command -v sftp >/dev/null && return 0
  if can_install; then apt_install openssh-client; else
    say "the OpenSSH client (sftp) is missing: apt-get install openssh-client"; return 1; fi
}

ensure_postgres
ensure_rabbitmq
ensure_sftp_client
