#!/usr/bin/env bash
# Starts PostgreSQL and Mosquitto on 127.0.0.1 when they are not already running.
# Idempotent: a running service is left alone.
set -euo pipefail
log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

PG_PORT=${SITCENTER_PG_PORT:-5432}
if port_open "$PG_PORT"; then
  log "PostgreSQL: listening on 127.0.0.1:$PG_PORT"
else
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$version" ]; then
    log "PostgreSQL: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
      || pg_ctlcluster "$version" main start
  else
    log "PostgreSQL: not installed (run scripts/bootstrap.sh)"; exit 1
  fi
  for _ in $(seq 50); do port_open "$PG_PORT" && break; sleep 0.2; done
  port_open "$PG_PORT" || { log "PostgreSQL did not come up on $PG_PORT"; exit 1; }
fi
# Trust on loopback for the local test cluster (the Debian default asks for passwords).
if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 'select 1' >/dev/null 2>&1; then
  hba=$(su postgres -c "psql -tAc 'show hba_file'" 2>/dev/null || true)
  if [ -n "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    log "PostgreSQL: allowing trust auth on 127.0.0.1 for local development"
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    su postgres -c "psql -c 'select pg_reload_conf()'" >/dev/null
  fi
fi

# The demo city's registry database.
if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_database where datname = 'sitcenter_demo'" | grep -q 1; then
  log "PostgreSQL: creating database sitcenter_demo"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'create database sitcenter_demo'
fi
# Its service login (the owner runs the migrations and grants it the service role; without a
# password: trust on loopback, as above). docs/security.md "Database roles".
if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_roles where rolname = 'sitcenter_demo_service'" | grep -q 1; then
  log "PostgreSQL: creating login sitcenter_demo_service"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'create role sitcenter_demo_service login'
fi

MQTT_PORT=${SITCENTER_MQTT_PORT:-1883}
if port_open "$MQTT_PORT"; then
  log "Mosquitto: listening on 127.0.0.1:$MQTT_PORT"
else
  conf=${TMPDIR:-/tmp}/sitcenter-mosquitto.conf
  # Persistent sessions (the sensor subscriber) may queue many QoS 1 messages while it is
  # away; no per-client in-flight cap beyond what the client asks for (receive maximum).
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\nmax_inflight_messages 0\n' "$MQTT_PORT" >"$conf"
  log "Mosquitto: starting on 127.0.0.1:$MQTT_PORT"
  mosquitto -d -c "$conf"
  for _ in $(seq 50); do port_open "$MQTT_PORT" && break; sleep 0.2; done
  port_open "$MQTT_PORT" || { log "Mosquitto did not come up on $MQTT_PORT"; exit 1; }
fi
