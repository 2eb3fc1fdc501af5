# Sourced by the ci/ scripts: `apt_install cmd:package ...` installs the package of each
# command that is missing, running `apt-get update` at most once per CI run.
apt_install() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
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
}
