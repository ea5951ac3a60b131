#!/usr/bin/env bash
# Creates .venv (Python 3.13) with everything the node, the aggregator and the tests need,
# and the system packages (mosquitto) the local aggregator runs. Idempotent and quick when
# nothing changed, so both README commands can call it.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for candidate in "${PYTHON:-}" "$(command -v pyenv >/dev/null 2>&1 && echo "$(pyenv root)/versions/3.13.0/bin/python")" \
                   "$(command -v python3.13 || true)"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.13 not found; set PYTHON=/path/to/python3.13" >&2
  return 1
}

install_system_packages() {
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  command -v socat >/dev/null 2>&1 || missing+=(socat)  # serial (pty) links in the Modbus tests
  command -v cbc >/dev/null 2>&1 || missing+=(coinor-cbc)  # the PuLP + CBC reference in benchmarks/
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # browser tests of the dashboards
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The package enables a system-wide broker; ours is started per data directory.
    (systemctl disable --now mosquitto || service mosquitto stop) >/dev/null 2>&1 || true
  else
    echo "warning: please install: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
  fi
}

install_python_packages() {
  local stamp=.venv/.installed
  if [ ! -x .venv/bin/python ]; then
    "$(find_python)" -m venv .venv
  fi
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    return 0
  fi
  .venv/bin/python -m pip install -q --upgrade pip uv
  .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -e '.[test]'
  touch "$stamp"
}

# The AWS SAM CLI and cfn-lint pin its own Flask, boto3 and friends: it gets a venv of its own so it
# never fights Home Assistant's pins.
install_sam_cli() {
  local stamp=.venv-sam/.installed
  [ -f "$stamp" ] && [ "$stamp" -nt scripts/setup.sh ] && return 0
  [ -x .venv-sam/bin/python ] || "$(find_python)" -m venv .venv-sam
  .venv/bin/uv pip install -q --python .venv-sam/bin/python "aws-sam-cli==1.170.0" "cfn-lint==1.58.0"
  touch "$stamp"
}

install_system_packages
install_python_packages
install_sam_cli
