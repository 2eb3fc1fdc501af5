# Sourced by the ci/ scripts: `apt_install package ...` installs each Debian package that is
# not installed, running `apt-get update` at most once per CI run.
#
# Packages are checked by package (dpkg), not by a command on PATH: a command can be there
# while a library its package only recommends is not (gcc-aarch64-linux-gnu without
# libc6-dev-arm64-cross links nothing). Installs use --no-install-recommends, so every
# package a step needs is named by that step.
apt_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

apt_install() {
    local missing=() pkg
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "ci: no dpkg on this machine; make sure these are installed: $*" >&2
        return 0
    fi
    for pkg in "$@"; do
        apt_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "ci: need ${missing[*]} but am not root and have no sudo" >&2; return 1; }
        as_root=(sudo)
    fi
    if [ -z "${SHRAPNEL_APT_UPDATED:-}" ]; then
        "${as_root[@]}" apt-get update -q
        export SHRAPNEL_APT_UPDATED=1
    fi
    echo "ci: installing ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    for pkg in "${missing[@]}"; do
        apt_installed "$pkg" || { echo "ci: apt-get did not install $pkg" >&2; return 1; }
    done
}
