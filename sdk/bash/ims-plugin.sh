# shellcheck shell=bash
# ims-plugin.sh - bash SDK for ims plugins, protocol 1.
#
# Needs bash >= 4.3 and jq. Source it at the top of the plugin entrypoint, describe the plugin,
# define plugin_run (and optionally plugin_cleanup / plugin_describe), then call ims_main "$@":
#
#     #!/bin/bash
#     source "${IMS_PLUGIN_DIR:-$(dirname "$(readlink -f "$0")")/..}/lib/ims-plugin.sh"
#     PLUGIN_ID=org.example.hello
#     PLUGIN_VERSION=1.0.0
#     PLUGIN_FEATURES=(cancel.message cleanup)
#     PLUGIN_PHASES='[{"name":"hello","payloads":["custom/v1"]}]'
#     plugin_run() {
#         ims_log info "hello from bash"
#         ims_check_cancelled              # error ims.cancelled + exit 1 if cancelled
#         ims_result '{}'
#     }
#     ims_main "$@"
#
# What the SDK does:
#   - On `source`: `exec 3>&1 1>&2`. fd 3 is the protocol channel; stdout (fd 1) now goes to
#     stderr, so echo/printf and every tool you run write to the job log, never into the protocol.
#   - ims_main checks the verb (describe|run|cleanup) and IMS_PLUGIN, refuses a TTY on stdin
#     (usage on stderr, exit 2), reads and checks the request (exit 3 with
#     ims.protocol.bad_request or ims.protocol.unsupported_version), sends hello, starts the
#     cancel watcher and calls your function.
#   - Exactly one terminal message is guaranteed: if your function returns (or the script exits,
#     e.g. through `set -e`) without ims_result/ims_error, an EXIT trap sends an empty result
#     (status 0), ims.cancelled (when cancelled) or an internal error. The exit status always
#     follows the terminal message (result -> 0, error -> 1, protocol error -> 3).
#
# Cancellation: a background watcher reads the rest of stdin; a `cancel` line or EOF (host gone)
# sets a flag file in the workspace tmp dir, and so does SIGTERM (trap). Test it between steps
# with `ims_check_cancelled` (or `if ims_cancelled; then ...`); `ims_sleep` wakes up early on
# cancellation. Bash runs traps only
# between commands, so prefer `long_command & wait $!` over a long foreground command.
#
# SECURITY: run children you do not trust (package scriptlets, recipe hooks, chroot commands)
# with fd 3 closed, so they cannot forge protocol messages:
#     chroot "$root" /bin/sh -c "$hook" 3>&-
# Never put secrets in argv or the environment of children; read them from the secret files.
#
# Variables set by ims_read_request (all from the request, which is the source of truth):
#   IMS_REQUEST (the whole request line), IMS_REQ_VERB, IMS_REQ_PHASE, IMS_REQ_PAYLOAD,
#   IMS_REQ_VERSION, IMS_REQ_JOB_ID, IMS_REQ_DEADLINE, IMS_WS_ROOT, IMS_WS_IN, IMS_WS_OUT,
#   IMS_WS_TMP, IMS_WS_STATE, IMS_REQ_LOG_LEVEL, IMS_FEATURES (negotiated features, space
#   separated).
#
# Messages carry no "seq" (it is optional): emitting from subshells could not keep it increasing.
#
# Variables you set to describe the plugin (used by describe and hello):
#   PLUGIN_ID, PLUGIN_VERSION, PLUGIN_VENDOR (optional), PLUGIN_PROTOCOL_VERSIONS (array,
#   default (1)), PLUGIN_FEATURES (array), PLUGIN_PHASES (JSON array of {name, payloads}).

if [[ -n "${_IMS_PLUGIN_SH_LOADED:-}" ]]; then
    return 0
fi
_IMS_PLUGIN_SH_LOADED=1

exec 3>&1 1>&2

IMS_MAX_LINE_BYTES=1048576
_IMS_VERSION=1        # "ims" of emitted envelopes: the negotiated protocol version
_IMS_DIR=             # private dir in the workspace tmp: terminal marker, cancel flag
_IMS_WATCHER_PID=
_IMS_HELLO_SENT=
_IMS_OBJ={}          # default for optional JSON object arguments

# ---------------------------------------------------------------- emitting messages

# ims_emit TYPE [jq options...] DATA_FILTER
#   Writes {"ims":V,"type":TYPE,"data":<DATA_FILTER>} as one compact line on fd 3.
#   Example: ims_emit log --arg m "$msg" '{level:"info", msg:$m}'
#   Returns 1 (and writes nothing) if jq fails, the line is too long or a terminal was sent.
ims_emit() {
    local type=$1
    shift
    local filter=${!#}
    local opts=("${@:1:$#-1}")
    local line
    if ! line=$(jq -cn --arg _ims_t "$type" --argjson _ims_v "$_IMS_VERSION" "${opts[@]}" \
        "{ims: \$_ims_v, type: \$_ims_t, data: ($filter)}"); then
        echo "ims_emit: could not build the '$type' message (jq failed)" >&2
        return 1
    fi
    local LC_ALL=C # byte semantics below
    if [[ $line == *[$'\xc2\xe2']* ]]; then
        # Escape U+2028, U+2029 and U+0085 (some readers split lines on them); in valid UTF-8
        # these byte sequences only ever occur inside JSON strings.
        line=${line//$'\xe2\x80\xa8'/\\u2028}
        line=${line//$'\xe2\x80\xa9'/\\u2029}
        line=${line//$'\xc2\x85'/\\u0085}
    fi
    if ((${#line} > IMS_MAX_LINE_BYTES)); then
        echo "ims_emit: '$type' message of ${#line} bytes exceeds the 1 MiB line limit; dropped" >&2
        return 1
    fi
    if [[ -n "$_IMS_DIR" && -e "$_IMS_DIR/terminal" ]]; then
        echo "ims_emit: '$type' after the terminal message was dropped" >&2
        return 1
    fi
    if [[ -n "$_IMS_DIR" && ($type == result || $type == error) ]]; then
        printf '%s\n' "$type" >"$_IMS_DIR/terminal"
    fi
    printf '%s\n' "$line" >&3
}

# ims_log LEVEL MSG [FIELDS_JSON]     LEVEL: trace|debug|info|notice|warn|error
#   Records below the request's log_level (or IMS_LOG_LEVEL) are not sent, as the protocol
#   recommends; use `ims_emit log ...` to bypass that.
ims_log() {
    ims_log_enabled "$1" || return 0
    ims_emit log --arg l "$1" --arg m "$2" --argjson f "${3:-null}" \
        '{level: $l, msg: $m} + (if $f == null then {} else {fields: $f} end)'
}

# ims_log_enabled LEVEL: true if a record of LEVEL would be sent
ims_log_enabled() {
    local levels=" trace debug info notice warn error " min=${IMS_REQ_LOG_LEVEL:-${IMS_LOG_LEVEL:-}}
    [[ -n "$min" && $levels == *" $min "* && $levels == *" $1 "* ]] || return 0
    local below=${levels%%" $min "*}
    [[ " $below " != *" $1 "* ]]
}

# ims_progress TASK STATE [CURRENT [TOTAL [UNIT [MESSAGE]]]]   (empty arguments are left out)
#   STATE: begin|report|end; UNIT: bytes|items|steps
ims_progress() {
    ims_emit progress --arg t "$1" --arg s "$2" --arg c "${3:-}" --arg n "${4:-}" \
        --arg u "${5:-}" --arg m "${6:-}" \
        '{task: $t, state: $s}
         + (if $c == "" then {} else {current: ($c | tonumber)} end)
         + (if $n == "" then {} else {total: ($n | tonumber)} end)
         + (if $u == "" then {} else {unit: $u} end)
         + (if $m == "" then {} else {message: $m} end)'
}

# ims_artifact NAME PATH KIND [EXTRA_JSON]   announces an output (KIND: file|dir)
ims_artifact() {
    ims_emit artifact --arg n "$1" --arg p "$2" --arg k "$3" --argjson x "${4:-$_IMS_OBJ}" \
        '{name: $n, path: $p, kind: $k} + $x'
}

# ims_file_ref PATH [MEDIA_TYPE]  prints an artifact reference with size and sha256 digest
ims_file_ref() {
    local sum size
    sum=$(sha256sum <"$1") || return 1
    size=$(stat -c %s -- "$1") || return 1
    jq -cn --arg p "$1" --arg d "sha256:${sum%% *}" --argjson s "$size" --arg m "${2:-}" \
        '{path: $p, kind: "file", digest: $d, size: $s} + (if $m == "" then {} else {media_type: $m} end)'
}

# ims_dir_ref PATH  prints an artifact reference for a directory
ims_dir_ref() {
    jq -cn --arg p "$1" '{path: $p, kind: "dir"}'
}

# ims_result [OUTPUTS_JSON [FACTS_JSON [METADATA_JSON]]]   the terminal success message
#   Example: ims_result "$(jq -cn --argjson g "$(ims_file_ref "$f")" '{greeting: $g}')"
ims_result() {
    ims_emit result --argjson o "${1:-$_IMS_OBJ}" --argjson f "${2:-$_IMS_OBJ}" --argjson m "${3:-$_IMS_OBJ}" \
        '{outputs: $o, metadata: $m, facts: $f}'
}

# ims_error CODE CATEGORY MESSAGE [DETAILS_JSON [EXTRA_JSON]]   the terminal failure message
#   CATEGORY: user|config|environment|transient|internal|protocol|cancelled|timeout
#   EXTRA_JSON is merged into the data, e.g. '{"path":"/nameservers","hint":"..."}'.
#   Does not exit; see ims_fail.
ims_error() {
    ims_emit error --arg c "$1" --arg k "$2" --arg m "$3" --argjson d "${4:-null}" --argjson x "${5:-$_IMS_OBJ}" \
        '{code: $c, category: $k, message: $m} + (if $d == null then {} else {details: $d} end) + $x'
}

# ims_fail CODE CATEGORY MESSAGE [DETAILS_JSON [EXTRA_JSON]]   ims_error, then exit 1
ims_fail() {
    ims_error "$@"
    exit 1
}

# ims_check_cancelled   ims_fail_cancelled if cancelled, else nothing (safe under `set -e`)
ims_check_cancelled() {
    if ims_cancelled; then
        ims_fail_cancelled
    fi
}

# ims_fail_cancelled   sends error ims.cancelled (category cancelled) and exits 1
ims_fail_cancelled() {
    ims_error ims.cancelled cancelled "cancelled: $(ims_cancel_reason)"
    exit 1
}

# ---------------------------------------------------------------- cancellation

# ims_cancelled: true (status 0) once cancelled by a cancel line, stdin EOF or SIGTERM
ims_cancelled() {
    [[ -n "$_IMS_DIR" && -e "$_IMS_DIR/cancelled" ]]
}

# ims_cancel_reason: prints why (the cancel message's reason, "stdin closed" or "SIGTERM")
ims_cancel_reason() {
    if ims_cancelled; then cat "$_IMS_DIR/cancelled"; else echo "not cancelled"; fi
}

# ims_sleep SECONDS: sleeps, waking early on cancellation; status 1 if cancelled
ims_sleep() {
    ims_cancelled && return 1
    sleep "$1" 3>&- &
    local pid=$!
    wait "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
    ! ims_cancelled
}

_ims_set_cancelled() {
    [[ -n "$_IMS_DIR" && ! -e "$_IMS_DIR/cancelled" ]] || return 0
    printf '%s\n' "$1" >"$_IMS_DIR/cancelled.tmp.$BASHPID" &&
        mv -f "$_IMS_DIR/cancelled.tmp.$BASHPID" "$_IMS_DIR/cancelled"
}

# Background reader of the lines after the request: a `cancel` message or EOF cancels.
_ims_watch_stdin() {
    local line reason
    while IFS= read -r line; do
        [[ $line == *cancel* ]] || continue
        if reason=$(jq -er 'select(.type == "cancel") | .data.reason // "cancel message"' <<<"$line" 2>/dev/null); then
            _ims_set_cancelled "$reason"
            kill -USR1 "$$" 2>/dev/null
            return 0
        fi
    done
    _ims_set_cancelled "stdin closed"
    kill -USR1 "$$" 2>/dev/null
    return 0
}

# ---------------------------------------------------------------- the request

# ims_req [jq options...] FILTER: runs a jq filter on the request data, raw output.
#   Examples: out=$(ims_req .workspace.out)
#             greeting=$(ims_req '.config.greeting // "hi"')
#             n=$(ims_req --arg k nameservers '.config[$k] | length')
ims_req() {
    local filter=${!#}
    jq -r "${@:1:$#-1}" ".data | ($filter)" <<<"$IMS_REQUEST"
}

_ims_protocol_error() { # CODE MESSAGE [DETAILS_JSON]
    echo "ims-plugin: $2" >&2
    ims_error "$1" protocol "$2" "${3:-null}"
    exit 3
}

_ims_versions_json() {
    local versions=("${PLUGIN_PROTOCOL_VERSIONS[@]:-1}")
    printf '%s\n' "${versions[@]}" | jq -cs 'map(tonumber)'
}

# ims_read_request: reads and checks the request line (exit 3 on a bad or unsupported one).
ims_read_request() {
    IMS_REQUEST=
    local limit=$((IMS_MAX_LINE_BYTES + 1))
    if ! IFS= read -r -n "$limit" IMS_REQUEST && [[ -z "$IMS_REQUEST" ]]; then
        _ims_protocol_error ims.protocol.bad_request "stdin closed before a request line arrived"
    fi
    if ((${#IMS_REQUEST} >= limit)); then
        _ims_protocol_error ims.protocol.bad_request "the request line exceeds 1 MiB"
    fi
    local versions version
    versions=$(_ims_versions_json)
    version=$(jq -r 'if type == "object" and .type == "request" and (.data | type) == "object"
                     then (.data.protocol.version // .ims // "missing") | tostring else "bad" end' \
        <<<"$IMS_REQUEST" 2>/dev/null) || version=bad
    case $version in
    bad) _ims_protocol_error ims.protocol.bad_request "the request line is not a JSON request message" ;;
    missing | *[!0-9]* | '') _ims_protocol_error ims.protocol.bad_request "missing or invalid protocol.version" ;;
    esac
    _IMS_VERSION=$version # from here on, even an unsupported_version error uses it
    if ! jq -e --argjson v "$version" 'index($v) != null' <<<"$versions" >/dev/null; then
        _ims_protocol_error ims.protocol.unsupported_version \
            "protocol version $version is not supported by ${PLUGIN_ID:-this plugin} ${PLUGIN_VERSION:-}" \
            "$(jq -cn --argjson s "$versions" --argjson r "$version" '{supported: $s, requested: $r}')"
    fi

    local problem
    problem=$(jq -r '.data as $d
        | def str($o; $k): ($o | if type == "object" then .[$k] else null end | type) == "string";
        [ (["verb", "phase", "payload", "deadline"][] | select(str($d; .) | not) | "missing or non-string field \u0027\(.)\u0027"),
          (["root", "in", "out", "tmp", "state"][] | select(str($d.workspace; .) | not) | "missing field \u0027workspace.\(.)\u0027"),
          (if str($d.job; "id") then empty else "missing field \u0027job.id\u0027" end),
          (if ($d.protocol | type) == "object" then empty else "missing field \u0027protocol\u0027" end),
          (if ($d.host | type) == "object" then empty else "missing field \u0027host\u0027" end),
          (if ($d.protocol.features // [] | type) == "array" then empty else "\u0027protocol.features\u0027 is not an array" end),
          (("config", "inputs", "secrets") as $k | select(($d[$k] // {} | type) != "object") | "\u0027\($k)\u0027 is not an object")
        ] | first // ""' <<<"$IMS_REQUEST") || problem="the request cannot be read"
    [[ -z "$problem" ]] || _ims_protocol_error ims.protocol.bad_request "$problem"

    eval "$(jq -r --argjson mine "$(printf '%s\n' "${PLUGIN_FEATURES[@]}" | jq -Rcs 'split("\n") | map(select(. != ""))')" \
        '.data | @sh "IMS_REQ_VERB=\(.verb) IMS_REQ_PHASE=\(.phase) IMS_REQ_PAYLOAD=\(.payload)
            IMS_REQ_VERSION=\(.protocol.version) IMS_REQ_JOB_ID=\(.job.id) IMS_REQ_DEADLINE=\(.deadline)
            IMS_WS_ROOT=\(.workspace.root) IMS_WS_IN=\(.workspace.in) IMS_WS_OUT=\(.workspace.out)
            IMS_WS_TMP=\(.workspace.tmp) IMS_WS_STATE=\(.workspace.state) IMS_REQ_LOG_LEVEL=\(.log_level // "")
            IMS_FEATURES=\([$mine[] as $f | select((.protocol.features // []) | index($f) != null) | $f] | join(" "))"' \
        <<<"$IMS_REQUEST")"
}

# ---------------------------------------------------------------- hello, describe, main

# ims_hello: the first message of run/cleanup (ims_main sends it for you).
ims_hello() {
    ims_emit hello --arg id "$PLUGIN_ID" --arg v "$PLUGIN_VERSION" --arg vendor "${PLUGIN_VENDOR:-}" \
        --argjson pv "$_IMS_VERSION" --arg f "$IMS_FEATURES" \
        '{plugin: ({id: $id, version: $v} + (if $vendor == "" then {} else {vendor: $vendor} end)),
          protocol: {version: $pv}, features: ($f | split(" ") | map(select(. != "")))}'
    _IMS_HELLO_SENT=1
}

# ims_describe: prints the describe line from PLUGIN_* (ims_main uses it unless you define
# plugin_describe). It must agree with plugin.json. Its "ims" is the newest major spoken.
ims_describe() {
    _IMS_VERSION=$(_ims_versions_json | jq 'max')
    ims_emit describe --arg id "$PLUGIN_ID" --arg v "$PLUGIN_VERSION" --arg vendor "${PLUGIN_VENDOR:-}" \
        --argjson pv "$(_ims_versions_json)" \
        --argjson f "$(printf '%s\n' "${PLUGIN_FEATURES[@]}" | jq -Rcs 'split("\n") | map(select(. != ""))')" \
        --argjson ph "${PLUGIN_PHASES:-[]}" \
        '{plugin: ({id: $id, version: $v} + (if $vendor == "" then {} else {vendor: $vendor} end)),
          protocol: {versions: $pv, features: $f},
          phases: [$ph[] | {name, payloads}]}'
}

_ims_usage() {
    local prog=${0##*/}
    cat >&2 <<EOF
$prog: $1
usage: $prog describe|run|cleanup
This is an ims plugin (${PLUGIN_ID:-?} ${PLUGIN_VERSION:-?}). It is started by ims, which sets
IMS_PLUGIN=1 and writes one request line on stdin for run/cleanup. Try: IMS_PLUGIN=1 $0 describe
EOF
    exit 2
}

_ims_on_exit() {
    local rc=$?
    set +e # the plugin's `set -e` must not cut the terminal message short
    if [[ -n "$_IMS_WATCHER_PID" ]]; then
        kill "$_IMS_WATCHER_PID" 2>/dev/null
        _IMS_WATCHER_PID=
    fi
    if [[ -n "$_IMS_HELLO_SENT" && -n "$_IMS_DIR" ]]; then
        if [[ ! -e "$_IMS_DIR/terminal" ]]; then
            if ((rc == 0)); then
                ims_result '{}'
            elif ims_cancelled; then
                ims_error ims.cancelled cancelled "cancelled: $(ims_cancel_reason)"
            else
                ims_error x.ims-sdk.unreported_failure internal \
                    "the plugin failed (status $rc) without reporting an error"
            fi
        fi
        case $(cat "$_IMS_DIR/terminal" 2>/dev/null) in
        result) rc=0 ;;
        error) rc=1 ;;
        esac
    fi
    [[ -z "$_IMS_DIR" ]] || rm -rf -- "$_IMS_DIR"
    exit "$rc"
}

_ims_on_term() {
    _ims_set_cancelled SIGTERM
}

# ims_main "$@": dispatches describe|run|cleanup to plugin_describe / plugin_run / plugin_cleanup.
ims_main() {
    local verb=${1:-}
    case $verb in
    describe | run | cleanup) ;;
    '') _ims_usage "missing verb" ;;
    *) _ims_usage "unknown verb '$verb'" ;;
    esac
    [[ -n "${IMS_PLUGIN:-}" ]] || _ims_usage "IMS_PLUGIN is not set (not started by ims)"
    if [[ $verb == describe ]]; then
        if declare -F plugin_describe >/dev/null; then plugin_describe; else ims_describe; fi
        exit $?
    fi
    [[ ! -t 0 ]] || _ims_usage "stdin is a terminal; the request must be piped in"

    trap _ims_on_exit EXIT
    trap _ims_on_term TERM
    trap : USR1 # only wakes `wait` (ims_sleep) when the watcher saw a cancel
    # Until the request names its major, errors use the one the host negotiated (IMS_PROTOCOL).
    if [[ ${IMS_PROTOCOL:-} =~ ^[1-9][0-9]*$ ]]; then
        _IMS_VERSION=$IMS_PROTOCOL
    else
        _IMS_VERSION=$(_ims_versions_json | jq 'max')
    fi
    ims_read_request
    if [[ $IMS_REQ_VERB != "$verb" ]]; then
        _ims_protocol_error ims.protocol.bad_request "request verb '$IMS_REQ_VERB' does not match argv verb '$verb'"
    fi
    if [[ -n "${PLUGIN_PHASES:-}" ]] &&
        ! jq -e --arg p "$IMS_REQ_PHASE" 'any(.[]; .name == $p)' <<<"$PLUGIN_PHASES" >/dev/null; then
        _ims_protocol_error ims.protocol.bad_request "phase '$IMS_REQ_PHASE' is not offered by $PLUGIN_ID"
    fi

    _IMS_DIR=$(mktemp -d "$IMS_WS_TMP/.ims-sdk.XXXXXX" 2>/dev/null || mktemp -d "${TMPDIR:-/tmp}/.ims-sdk.XXXXXX") ||
        _ims_protocol_error ims.protocol.bad_request "cannot create a private directory in $IMS_WS_TMP"
    _ims_watch_stdin <&0 3>&- &
    _IMS_WATCHER_PID=$!
    exec </dev/null # children must not read the host's stdin

    ims_hello
    if [[ $verb == run ]]; then
        plugin_run
    elif declare -F plugin_cleanup >/dev/null; then
        plugin_cleanup
    fi
    exit $?
}
