# bench_lib.sh - the checks the `facenet bench` tests share; sourced, not run
# (CTest registers test_*.sh only). Each failed check counts in $fails, and
# `finish` prints the total and sets the exit status.
fails=0
check() { # what, command's output, pattern
    if printf '%s\n' "$2" | grep -qE -- "$3"; then
        echo "ok: $1"
    else
        echo "FAIL: $1: no line matches '$3' in:"
        printf '%s\n' "$2"
        fails=$((fails + 1))
    fi
}
status() { # what, expected status, command...
    local what=$1 want=$2
    shift 2
    "$@" > /dev/null 2>&1
    local got=$?
    if [ "$got" -eq "$want" ]; then echo "ok: $what exits $want"; else
        echo "FAIL: $what exits $got, not $want"
        fails=$((fails + 1))
    fi
}
finish() {
    [ $fails -eq 0 ] && echo "all passed" || echo "$fails failed"
    [ $fails -eq 0 ]
}
