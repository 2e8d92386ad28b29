# Sourced by the build scripts. apt_need WHO PACKAGE...: installs those of the Debian
# packages that are missing (Debian 12, as root) and says which; nothing when all are
# there.
apt_need() {
    local who=$1 p
    shift
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    printf '%s: installing %s\n' "$who" "${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
