#!/usr/bin/env bash
# Many small files to the servers operators connect to: 500 files of
# 16 KiB from a local folder to OpenSSH's sshd (SFTP, key login) and to
# vsftpd (FTP, a local user), syncdeck against `rclone copy` (defaults
# for both) on the same servers, in one invocation. Each round empties the
# destination, then times each tool's first copy, the order alternating
# between rounds; each figure is the median of $ROUNDS rounds, reported as
# a ratio (syncdeck time / rclone time: below 1 means syncdeck is faster).
# Files live in /dev/shm, servers listen on loopback only.
#
#   benches/servers.sh     # as root: needs rclone, openssh-server, vsftpd
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-5}"
for program in rclone /usr/sbin/sshd /usr/sbin/vsftpd ssh-keygen; do
    command -v "$program" >/dev/null || { echo "$program is needed (tests/run.sh installs it)" >&2; exit 2; }
done
cargo build --release --quiet
SYNCDECK="$(pwd)/${CARGO_TARGET_DIR:-target}/release/syncdeck"
[[ "${CARGO_TARGET_DIR:-}" = /* ]] && SYNCDECK="$CARGO_TARGET_DIR/release/syncdeck"
WORK="$(mktemp -d /dev/shm/syncdeck-bench-servers.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

echo "making 500 files of 16 KiB in $WORK/in" >&2
python3 - "$WORK/in" <<'PY'
import os, sys
folder = sys.argv[1]
os.makedirs(folder)
for index in range(500):
    with open(os.path.join(folder, f"f{index:03d}.dat"), "wb") as f:
        f.write(os.urandom(16 * 1024))
PY

# OpenSSH: its own host key, config and port; key-only login as this user.
ssh-keygen -q -t ed25519 -N "" -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/client_key"
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
mkdir -p /run/sshd
SSH_PORT=$(free_port)
cat > "$WORK/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $WORK/host_key
PidFile none
AuthorizedKeysFile $WORK/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
/usr/sbin/sshd -D -f "$WORK/sshd_config" -E "$WORK/sshd.log" &
PIDS+=($!)
echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$WORK/host_key.pub")" > "$WORK/known_hosts"

# vsftpd: the tests' local user, landing in $WORK/ftp, passive on loopback.
FTP_USER=syncdeck-ftp
FTP_PASSWORD=vsftpd-bench-pass
id -u "$FTP_USER" >/dev/null 2>&1 || useradd -M -d /tmp -s /bin/bash "$FTP_USER"
echo "$FTP_USER:$FTP_PASSWORD" | chpasswd
mkdir -p "$WORK/ftp" /var/run/vsftpd/empty
chown "$FTP_USER" "$WORK/ftp"
FTP_PORT=$(free_port)
PASSIVE=$(free_port)
cat > "$WORK/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
local_root=$WORK/ftp
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$PASSIVE
pasv_max_port=$((PASSIVE + 40))
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
pam_service_name=vsftpd
userlist_enable=NO
xferlog_enable=NO
syslog_enable=NO
max_per_ip=0
max_clients=0
EOF
/usr/sbin/vsftpd "$WORK/vsftpd.conf" &
PIDS+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$FTP_PORT") 2>/dev/null && break
    sleep 0.1
done

mkdir -p "$WORK/sftp"
cat > "$WORK/syncdeck.toml" <<TOML
[engine]
state = "sqlite:$WORK/state.db"
log_dir = "$WORK/logs"

[[tasks]]
id = "sftp"
type = "sync"
[tasks.properties]
source_path = "$WORK/in/"
destination_path = "sftp://127.0.0.1:$SSH_PORT$WORK/sftp/out-syncdeck/"
[tasks.properties.sync_config]
destination_config = { username = "$(id -un)", private_key_file = "$WORK/client_key", known_hosts = "$WORK/known_hosts" }

[[tasks]]
id = "ftp"
type = "sync"
[tasks.properties]
source_path = "$WORK/in/"
destination_path = "ftp://127.0.0.1:$FTP_PORT/out-syncdeck/"
[tasks.properties.sync_config]
destination_config = { username = "$FTP_USER", password = "\${credential:ftp_password}" }
TOML
export SYNCDECK_CREDENTIAL_FTP_PASSWORD="$FTP_PASSWORD"
RCLONE_SFTP=":sftp,host=127.0.0.1,port=$SSH_PORT,user=$(id -un),key_file=$WORK/client_key,known_hosts_file=$WORK/known_hosts:$WORK/sftp/out-rclone"
RCLONE_FTP=":ftp,host=127.0.0.1,port=$FTP_PORT,user=$FTP_USER,pass=$(rclone obscure "$FTP_PASSWORD"):out-rclone"

seconds() { # command… ; prints elapsed seconds, or FAILED
    local start end
    start=$(date +%s.%N)
    if ! "$@" >"$WORK/last.log" 2>&1; then
        echo "benchmark command failed: $*" >&2
        tail -n 5 "$WORK/last.log" >&2
        echo "FAILED"
        return
    fi
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}
median() { # fails on a FAILED timing, which stops the script
    python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.3f}')" "$@"
}
count() { find "$1" -type f | wc -l; }

declare -A TIMES
run_one() { # server tool
    local server=$1 tool=$2 out
    if [ "$server" = sftp ]; then out="$WORK/sftp/out-${tool%-nohash}"; else out="$WORK/ftp/out-$tool"; fi
    rm -rf "$out"
    sync
    local took
    if [ "$tool" = syncdeck ]; then
        took=$(seconds "$SYNCDECK" -c "$WORK/syncdeck.toml" run "$server")
    elif [ "$tool" = rclone-nohash ]; then
        took=$(seconds rclone copy --sftp-disable-hashcheck "$WORK/in" "$RCLONE_SFTP")
    elif [ "$server" = sftp ]; then
        took=$(seconds rclone copy "$WORK/in" "$RCLONE_SFTP")
    else
        took=$(seconds rclone copy "$WORK/in" "$RCLONE_FTP")
    fi
    local landed
    landed=$(count "$out" 2>/dev/null || echo 0)
    if [ "$landed" != 500 ]; then
        echo "$tool to $server left $landed of 500 files" >&2
        took=FAILED
    fi
    TIMES[$server-$tool]="${TIMES[$server-$tool]:-} $took"
}

for round in $(seq "$ROUNDS"); do
    for server in sftp ftp; do
        if [ $((round % 2)) = 1 ]; then order="syncdeck rclone"; else order="rclone syncdeck"; fi
        # rclone's SFTP backend checks each upload's checksum by running
        # md5sum/sha1sum on the server over SSH; timed without it too.
        [ "$server" = sftp ] && order="$order rclone-nohash"
        for tool in $order; do run_one "$server" "$tool"; done
    done
    echo "round $round done" >&2
done

echo "| case | syncdeck (median s) | rclone copy (median s) | ratio |"
echo "|---|---|---|---|"
for server in sftp ftp; do
    # shellcheck disable=SC2086
    mine=$(median ${TIMES[$server-syncdeck]})
    # shellcheck disable=SC2086
    theirs=$(median ${TIMES[$server-rclone]})
    ratio=$(python3 -c "print(f'{$mine / $theirs:.2f}')")
    label=$([ "$server" = sftp ] && echo "local → SFTP (OpenSSH sshd), 500 × 16 KiB" || echo "local → FTP (vsftpd), 500 × 16 KiB")
    echo "| $label | $mine | $theirs | ${ratio}x |"
done
# shellcheck disable=SC2086
mine=$(median ${TIMES[sftp-syncdeck]})
# shellcheck disable=SC2086
theirs=$(median ${TIMES[sftp-rclone-nohash]})
ratio=$(python3 -c "print(f'{$mine / $theirs:.2f}')")
echo "| local → SFTP, against \`rclone copy --sftp-disable-hashcheck\` | $mine | $theirs | ${ratio}x |"
