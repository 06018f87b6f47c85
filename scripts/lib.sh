# Shared setup steps for scripts/run and scripts/test (sourced, not run).
# Each step installs or starts what is missing, or says clearly what it cannot do.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="$ROOT/.run"
VENV="$ROOT/.venv"
mkdir -p "$RUN_DIR"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31mvmprov: %s\033[0m\n' "$*" >&2; exit 1; }

# apt_install PACKAGE... : install Debian packages when we can (root with apt-get), else explain.
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    die "missing: $* (no apt-get here; install them with your package manager)"
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "missing: $* (run as root or install them: apt-get install $*)"
    sudo="sudo"
  fi
  say "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "$@" >"$RUN_DIR/apt.log" 2>&1 \
    || { $sudo apt-get update -q >>"$RUN_DIR/apt.log" 2>&1 && $sudo apt-get install -y -q "$@" >>"$RUN_DIR/apt.log" 2>&1; } \
    || die "could not install $* (see $RUN_DIR/apt.log)"
}

# vmprov runs on Python 3.11 to 3.13 (pyproject.toml's requires-python; the lock is tested on each).
python_supported() {  # python_supported PYTHON: true when it runs and is 3.11–3.13
  "$1" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' >/dev/null 2>&1
}

python_version() {  # python_version PYTHON: prints e.g. 3.13
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

find_python() {  # prints $PYTHON, else the first supported of python3.13, python3.12, python3.11, python3
  local candidate
  for candidate in ${PYTHON:-python3.13 python3.12 python3.11 python3}; do
    if command -v "$candidate" >/dev/null 2>&1 && python_supported "$candidate"; then
      echo "$candidate"; return
    fi
  done
}

venv_fits() {  # true when .venv works with a supported Python and, if PYTHON is set, with PYTHON's version
  [ -x "$VENV/bin/pip" ] && python_supported "$VENV/bin/python" || return 1
  [ -z "${PYTHON:-}" ] || [ "$(python_version "$VENV/bin/python")" = "$(python_version "$PYTHON")" ]
}

# The dependencies are installed from the lock: the stamp holds a digest of pyproject.toml and the lock, so any
# change to either (an edit, a pull, a branch switch) installs again.
CONSTRAINTS="$ROOT/requirements/constraints.txt"
install_digest() {
  cat "$ROOT/pyproject.toml" "$CONSTRAINTS" | sha256sum | cut -d' ' -f1
}

ensure_python() {
  command -v git >/dev/null 2>&1 || apt_install git
  if [ -n "${PYTHON:-}" ] && ! python_supported "$PYTHON"; then
    die "PYTHON=$PYTHON is not a Python 3.11–3.13 ($("$PYTHON" --version 2>/dev/null || echo 'it does not run'))"
  fi
  if ! venv_fits; then
    local python
    python=$(find_python)
    if [ -z "$python" ]; then
      # Debian 12 ships 3.11 as python3; elsewhere the python3.11 packages may exist.
      apt_install python3.11 python3.11-venv
      python=$(find_python)
    fi
    [ -n "$python" ] || die "Python 3.11–3.13 is required (found: $(python3 --version 2>&1 || echo none)); set PYTHON=/path/to/python3.x"
    say "creating the virtualenv in .venv with Python $(python_version "$python")"
    rm -rf "$VENV"
    if ! "$python" -m venv "$VENV" >/dev/null 2>&1; then
      # Debian's python3 has no ensurepip without its venv package.
      rm -rf "$VENV"
      apt_install python3-venv "python$(python_version "$python")-venv" || true
      "$python" -m venv "$VENV" || { rm -rf "$VENV"; die "could not create a virtualenv with $python"; }
    fi
  fi
  local stamp="$VENV/.vmprov-installed"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$(install_digest)" ]; then
    say "installing Python dependencies from requirements/constraints.txt (log: .run/pip.log)"
    if ! "$VENV/bin/pip" install --disable-pip-version-check -c "$CONSTRAINTS" -e "$ROOT[test]" >"$RUN_DIR/pip.log" 2>&1; then
      tail -n 20 "$RUN_DIR/pip.log" >&2
      die "Python dependencies did not install (see .run/pip.log)"
    fi
    "$VENV/bin/python" -c "import django, django_redis, django_q, pyVmomi, jinja2" \
      || die "Python dependencies did not import (see .run/pip.log)"
    install_digest >"$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

port_free() {  # port_free PORT: true when nothing listens on 127.0.0.1:PORT
  ! "$VENV/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=1)" "$1" 2>/dev/null
}

require_free_port() {  # require_free_port PORT WHAT
  port_free "$1" || die "port $1 is in use, so $2 cannot start there (stop what listens on it, or see README)"
}

ensure_redis_server_binary() {
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
}

redis_answers() {  # redis_answers HOST PORT
  "$VENV/bin/python" - "$1" "$2" <<'PY' 2>/dev/null
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PY
}

# ensure_redis: use REDIS_URL when it answers, else 127.0.0.1:6379, else start one of our own
# (then STARTED_REDIS_PIDFILE names its pid file).
STARTED_REDIS_PIDFILE=""
ensure_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    local host port
    host=$("$VENV/bin/python" -c "from urllib.parse import urlsplit as u; import sys; print(u(sys.argv[1]).hostname or '127.0.0.1')" "$REDIS_URL")
    port=$("$VENV/bin/python" -c "from urllib.parse import urlsplit as u; import sys; print(u(sys.argv[1]).port or 6379)" "$REDIS_URL")
    redis_answers "$host" "$port" || die "REDIS_URL is set but Redis does not answer at $host:$port"
    return
  fi
  if redis_answers 127.0.0.1 6379; then
    export REDIS_URL="redis://127.0.0.1:6379/0"
    return
  fi
  ensure_redis_server_binary
  if redis_answers 127.0.0.1 6379; then
    # Installing Debian's redis-server starts its own service.
    export REDIS_URL="redis://127.0.0.1:6379/0"
    return
  fi
  say "starting redis-server on 127.0.0.1:6379 (log: .run/redis.log)"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "$RUN_DIR" --logfile "$RUN_DIR/redis.log" --pidfile "$RUN_DIR/redis.pid" \
    --maxmemory-policy noeviction >/dev/null
  for _ in $(seq 50); do redis_answers 127.0.0.1 6379 && break; sleep 0.1; done
  redis_answers 127.0.0.1 6379 || die "redis-server did not start (see .run/redis.log)"
  export REDIS_URL="redis://127.0.0.1:6379/0"
  STARTED_REDIS_PIDFILE="$RUN_DIR/redis.pid"  # ours to stop
}

# vcsim is built from Debian's govmomi sources by the project's own devtools/vcsim/main.go.
ensure_vcsim_build_tools() {
  command -v go >/dev/null 2>&1 || apt_install golang-go
  [ -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ] || apt_install golang-github-vmware-govmomi-dev
}

build_vcsim() {
  ensure_vcsim_build_tools
  (cd "$ROOT" && "$VENV/bin/python" -m devtools.vcsim build)
}

pg_answers() {  # pg_answers URL
  "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import sys
import psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception:
    sys.exit(1)
PY
}

# ensure_postgres: sets PG_TEST_URL to a PostgreSQL the tests may create a test database on.
ensure_postgres() {
  local trust="postgres://postgres@127.0.0.1:5432/postgres"
  local own="postgres://vmprov:vmprov@127.0.0.1:5432/postgres"
  if [ -n "${TEST_DATABASE_URL:-}" ]; then
    pg_answers "$TEST_DATABASE_URL" || die "TEST_DATABASE_URL is set but PostgreSQL does not answer there"
    PG_TEST_URL="$TEST_DATABASE_URL"; return
  fi
  for url in "$trust" "$own"; do
    if pg_answers "$url"; then PG_TEST_URL="$url"; return; fi
  done
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
  for _ in $(seq 30); do pg_answers "$trust" && { PG_TEST_URL="$trust"; return; }; pg_isready -q -h 127.0.0.1 && break; sleep 0.5; done
  # A fresh Debian cluster asks for passwords over TCP: give the tests a role of their own.
  if command -v runuser >/dev/null 2>&1; then
    runuser -u postgres -- psql -q -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vmprov') THEN CREATE ROLE vmprov LOGIN CREATEDB PASSWORD 'vmprov'; END IF; END\$\$;" >/dev/null 2>&1 || true
  fi
  pg_answers "$own" && { PG_TEST_URL="$own"; return; }
  die "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started (set TEST_DATABASE_URL to one the tests may use)"
}
