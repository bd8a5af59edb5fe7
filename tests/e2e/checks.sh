# The checks of the e2e scripts, sourced by them: each check prints `ok - WHAT` or
# `not ok - WHAT` with the output of the last `run`; the script ends with `N passed, M failed`.
# Needs $work (a folder for outputs) and $CMD_TIMEOUT (seconds, for every command).
# shellcheck shell=bash disable=SC2154,SC2120 # $work, $self and the rest come from the script.

passed=0
failed=0
last_output=()
ok() {
    passed=$((passed + 1))
    echo "ok - $1"
}
not_ok() {
    failed=$((failed + 1))
    echo "not ok - $1"
    shift
    local line
    for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
}
# check WHAT CONDITION...: runs the condition (a command), counts and prints the result. On
# failure, shows the output of the last `run`.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what" "${last_output[@]}"; fi
}
# run NAME CMD...: runs CMD with a timeout and no stdin; keeps rc, stdout ($out) and stderr
# ($err). With INPUT set (INPUT=... run ...), that text is its stdin instead. In the background
# and waited for: a TERM (the run's time is up) is handled at once.
run() {
    local name=$1
    shift
    out=$work/out/$name.stdout
    err=$work/out/$name.stderr
    mkdir -p "$work/out"
    set +e
    if [ -n "${INPUT+set}" ]; then
        printf '%s\n' "$INPUT" | timeout "$CMD_TIMEOUT" "$@" >"$out" 2>"$err" &
    else
        timeout "$CMD_TIMEOUT" "$@" >"$out" 2>"$err" </dev/null &
    fi
    wait $!
    rc=$?
    set -e
    last_output=("\$ $*" "exit code $rc" "stdout: $(head -c 3000 "$out")" "stderr: $(head -c 3000 "$err")")
}
succeeded() { [ "$rc" -eq 0 ]; }
refused() { [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; }
stdout_has() { grep -qF -- "$1" "$out"; }
stderr_has() { grep -qiF -- "$1" "$err"; }
# wait_until SECONDS CMD...: polls CMD every 0.1 s; false when time runs out.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# fatal WHAT [LINES...]: a failed check after which nothing else can run.
fatal() {
    not_ok "$1" "${@:2}"
    echo "$passed passed, $failed failed"
    exit 1
}
