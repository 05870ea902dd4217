#!/usr/bin/env bash
# The test command: installs what the tests need when missing (Debian or
# Ubuntu; installing needs root), starts PostgreSQL, runs cargo test.
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
# The schema test validates config.example.toml against `syncdeck schema`.
if ! python3 -c "import jsonschema" >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check jsonschema
fi

# PostgreSQL for the table sync tests: the local server on 5432 if it is
# up; else start the machine's cluster; else install PostgreSQL; else run a
# private cluster on another port and point the tests at it.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${SYNCDECK_TEST_POSTGRES:-}" ] && ! port_open 5432; then
    start_cluster() {
        command -v pg_ctlcluster >/dev/null 2>&1 || return 1
        for version in $(ls /etc/postgresql 2>/dev/null); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
        done
        for _ in $(seq 50); do port_open 5432 && return 0; sleep 0.2; done
        return 1
    }
    if ! start_cluster; then
        if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
            apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
        fi
        if ! start_cluster; then
            bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
            dir=/tmp/syncdeck-ci-postgres
            rm -rf "$dir" && mkdir -p "$dir" && chown postgres "$dir"
            runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null
            runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
                -o "-p 55432 -c listen_addresses=127.0.0.1 -k $dir" start >/dev/null
            export SYNCDECK_TEST_POSTGRES="postgres://postgres@127.0.0.1:55432"
        fi
    fi
fi

# One table sync test crashes and restarts a server of its own: it needs
# PostgreSQL's server programs (initdb, pg_ctl) even when a server is up.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi

# Build cache outside the clone, so repeated CI runs on one machine are fast;
# a cold cache works too.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/syncdeck/target}"

cargo test "$@"
