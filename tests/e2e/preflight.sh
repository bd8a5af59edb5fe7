# The start of the e2e scripts, sourced first: what must hold before the script can run, then the
# same script again inside private mount, network and PID namespaces (loopback only, its own
# mounts; nothing it does is visible outside, and everything it started dies with it).
# Needs $self (the script) and $RUN_TIMEOUT (seconds, for the whole run).
# shellcheck shell=bash disable=SC2154,SC2120 # $work, $self and the rest come from the script.

problems=()
# need_root WHY: the script must run as root.
need_root() { [ "$(id -u)" -eq 0 ] || problems+=("must run as root ($1)"); }
# need_tools INSTALLER CMD:PACKAGE...: commands the script runs, with the Debian package of each
# and the script that installs them all.
need_tools() {
    local installer=$1 need missing=()
    shift
    for need in "$@"; do
        PATH="$PATH:/usr/sbin:/sbin" command -v "${need%%:*}" >/dev/null 2>&1 || missing+=("${need#*:}")
    done
    [ ${#missing[@]} -eq 0 ] ||
        problems+=("missing tools: apt-get install --no-install-recommends ${missing[*]} (or run $installer)")
}
# need CONDITION... -- PROBLEM: PROBLEM unless the condition holds.
need() {
    local condition=()
    while [ "$1" != -- ]; do condition+=("$1"); shift; done
    shift
    "${condition[@]}" || problems+=("$*")
}
# enter_namespaces [VAR=VALUE...]: reports the problems and stops, or runs the script again
# inside the namespaces, with DCL_E2E_INSIDE=1 and the given variables.
enter_namespaces() {
    if [ ${#problems[@]} -gt 0 ]; then
        local problem
        for problem in "${problems[@]}"; do echo "not ok - preflight: $problem"; done
        echo "0 passed, ${#problems[@]} failed"
        exit 1
    fi
    # unshare forwards nothing: when it dies (timeout), --kill-child TERMs the inner shell, whose
    # trap cleans up; when that PID 1 exits, the kernel kills whatever is left in its namespace.
    exec timeout --kill-after=10 "$RUN_TIMEOUT" \
        unshare --mount --net --pid --fork --mount-proc --kill-child=TERM --propagation private \
        env DCL_E2E_INSIDE=1 "$@" PATH="$PATH:/usr/sbin:/sbin" bash "$self"
}
