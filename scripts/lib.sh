# scripts/lib.sh - shared by the set-up and test scripts: installs missing
# Debian packages (as root, or through sudo).
set -euo pipefail

bb_root() { cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd; }

bb_need() {
    local missing=()
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "bandbill: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What building bandbill needs.
BB_BUILD_DEPS=(build-essential cmake pkg-config liblua5.4-dev libsqlite3-dev libevent-dev libyajl-dev
               libssl-dev libinih-dev libcsv-dev libcurl4-openssl-dev ca-certificates)
