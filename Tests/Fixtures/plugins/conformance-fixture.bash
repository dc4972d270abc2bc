# shellcheck shell=bash
# The plugin behind the conf-* fixtures of ConformanceTests: a protocol-1 plugin with one phase,
# `test` (custom/v1), that passes every case of `ims plugins check` except the one its FAULT breaks.
# Deliberately raw (printf and jq, no SDK) so that each fixture misbehaves exactly as intended.
#
# Each fixture's bin/plugin sets ID, FAULT and (when its manifest declares the secret `token`)
# SECRET=token, then sources this file. FAULT is one of:
#   none             conformant; the stop cases are exercised and honoured
#   finishes-at-once conformant, but run sends its result right after hello (the stop cases find nothing to stop)
#   no-result        run: does its work, then exits 0 without a result
#   ignores-sigterm  run: SIGTERM is ignored (a cancel line and EOF are honoured)
#   ignores-eof      run: EOF on stdin is ignored (a cancel line and SIGTERM are honoured)
#   leaks-secret     run: writes the secret's content into a log message on stdout
#   unknown-verb-ok  an unknown verb prints the usage text but exits 0 instead of 2
#   strict-request   run and cleanup: a request with fields it does not know is refused as a bad request
#
# With NEEDS_CONFIG=1, run also needs config.greeting and a directory input `rootfs` (as a site phase
# does): without them it fails right after hello with its own error x.ims-test.no_config (category
# config), so the stop cases can only be exercised with `ims plugins check --request/--input`. With
# them it writes <rootfs>/greeting when it ends with a result.
#
# run says hello, then "works" for WORK_SECONDS (3) while watching for a stop: a cancel line,
# EOF on stdin or SIGTERM ends it with error ims.cancelled and exit 1; otherwise it ends with a result.
VERSION=1.0.0
WORK_SECONDS=3
FEATURES='["cancel.message","cleanup"]'

emit() { printf '%s\n' "$1"; }
describe() {
    emit '{"ims":1,"type":"describe","data":{"plugin":{"id":"'"$ID"'","version":"'"$VERSION"'"},"protocol":{"versions":[1],"features":'"$FEATURES"'},"phases":[{"name":"test","payloads":["custom/v1"]}]}}'
}
hello() {
    emit '{"ims":1,"type":"hello","data":{"plugin":{"id":"'"$ID"'","version":"'"$VERSION"'"},"protocol":{"version":1},"features":'"$FEATURES"'}}'
}
result() { emit '{"ims":1,"type":"result","data":{"outputs":{},"metadata":{},"facts":{}}}'; }
fail() { # CODE CATEGORY EXIT MESSAGE
    jq -cn --arg c "$1" --arg k "$2" --arg m "$4" '{ims: 1, type: "error", data: {code: $c, category: $k, message: $m}}'
    exit "$3"
}
usage() {
    echo "usage: ${0##*/} describe|run|cleanup ($1)" >&2
    [ "$FAULT" = unknown-verb-ok ] && exit 0
    exit 2
}

# Reads and checks the request line (exit 3 with the documented error when it is unusable).
read_request() {
    IFS= read -r REQUEST || [ -n "$REQUEST" ] || fail ims.protocol.bad_request protocol 3 "no request on stdin"
    jq -e '.type == "request" and (.data | has("payload") and has("workspace") and has("protocol"))' <<<"$REQUEST" >/dev/null 2>&1 ||
        fail ims.protocol.bad_request protocol 3 "the request is not a complete request"
    local version
    version=$(jq -r '.data.protocol.version' <<<"$REQUEST")
    [ "$version" = 1 ] || fail ims.protocol.unsupported_version protocol 3 "this plugin speaks protocol 1; the host asked for $version"
    if [ "$FAULT" = strict-request ] &&
        ! jq -e '(keys - ["ims", "type", "seq", "ts", "data"] | length == 0) and
                 (.data | keys - ["verb", "phase", "payload", "protocol", "job", "deadline", "workspace", "inputs",
                                   "config", "secrets", "host", "log_level"] | length == 0)' <<<"$REQUEST" >/dev/null; then
        fail ims.protocol.bad_request protocol 3 "the request has fields this plugin does not know"
    fi
}

# Works for WORK_SECONDS, stopping early (error ims.cancelled, exit 1) on a cancel line, EOF or SIGTERM.
work() {
    local line status ticks=0
    while [ -z "$stop" ] && [ "$ticks" -lt $((WORK_SECONDS * 10)) ]; do
        ticks=$((ticks + 1))
        if [ -n "$eof" ]; then
            sleep 0.1
            continue
        fi
        IFS= read -r -t 0.1 line
        status=$?
        if [ "$status" = 0 ]; then
            case $line in *'"cancel"'*) stop="cancel message" ;; esac
        elif [ "$status" -le 128 ]; then # end of file: the host is gone
            if [ "$FAULT" = ignores-eof ]; then eof=1; else stop="stdin closed"; fi
        fi
    done
    if [ -n "$stop" ]; then
        emit '{"ims":1,"type":"error","data":{"code":"ims.cancelled","category":"cancelled","message":"cancelled ('"$stop"')"}}'
        exit 1
    fi
}

run() {
    # The SIGTERM handler is in place before hello, as the SDKs do it.
    stop= eof=
    if [ "$FAULT" = ignores-sigterm ]; then trap '' TERM; else trap 'stop=SIGTERM' TERM; fi
    read_request
    # Everything that runs a child comes before hello: SIGTERM to the group must find only this shell.
    local leak=
    if [ -n "${SECRET:-}" ]; then
        local file
        file=$(jq -r --arg s "$SECRET" '.data.secrets[$s].file // empty' <<<"$REQUEST")
        [ -r "$file" ] || fail x.ims-test.no_secret config 1 "the secret '$SECRET' was not delivered"
        if [ "$FAULT" = leaks-secret ]; then
            leak=$(jq -cn --rawfile s "$file" '{ims: 1, type: "log", data: {level: "debug", msg: ("the secret is " + $s)}}')
        fi
    fi
    local greeting= rootfs= missing=
    if [ "${NEEDS_CONFIG:-}" = 1 ]; then
        greeting=$(jq -r '.data.config.greeting // empty' <<<"$REQUEST")
        rootfs=$(jq -r '.data.inputs.rootfs.path // empty' <<<"$REQUEST")
        if [ -z "$greeting" ]; then
            missing="config.greeting is required"
        elif [ ! -d "$rootfs" ]; then
            missing="the input rootfs (a directory) is required"
        fi
    fi
    hello
    [ -z "$leak" ] || emit "$leak"
    if [ -n "$missing" ]; then # builtins only: no child for a SIGTERM to the group to kill
        emit '{"ims":1,"type":"error","data":{"code":"x.ims-test.no_config","category":"config","message":"'"$missing"'"}}'
        exit 1
    fi
    if [ "$FAULT" = finishes-at-once ]; then
        trap '' TERM # a stop that comes after the result must not turn it into a crash
        result
        exit 0
    fi
    work
    [ "$FAULT" = no-result ] && exit 0
    [ -z "$rootfs" ] || printf '%s\n' "$greeting" >"$rootfs/greeting"
    result
}

[ -n "${IMS_PLUGIN:-}" ] || { echo "${0##*/}: IMS_PLUGIN is not set; this is an ims test fixture" >&2; exit 2; }
case "${1:-}" in
describe) describe ;;
run) run ;;
cleanup) read_request; hello; result ;;
*) usage "unknown verb '${1:-}'" ;;
esac
