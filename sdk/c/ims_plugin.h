/*
 * ims_plugin.h - C SDK for ims plugins, protocol 1.
 *
 * A plugin is an executable started by the ims host as `<entrypoint> describe|run|cleanup`.
 * For run and cleanup the host writes ONE request line (NDJSON) on stdin and reads NDJSON
 * messages from stdout: `hello` first, then log/progress/artifact/..., then exactly one
 * terminal `result` or `error`. stderr is free text that ends up in the job log.
 *
 * This SDK does the protocol chores so that a plugin only writes its phase logic:
 *
 *   - it keeps the protocol stream for itself: fd 1 is duplicated to a close-on-exec fd and
 *     fd 1 is then pointed at stderr, so printf() and child processes can never corrupt the
 *     protocol stream;
 *   - it checks argv (verb), IMS_PLUGIN and stdin (not a TTY) and prints usage (exit 2);
 *   - it reads and checks the request (bad JSON or missing fields: ims.protocol.bad_request,
 *     exit 3; unsupported protocol version: ims.protocol.unsupported_version, exit 3);
 *   - it answers `describe` from the ims_plugin_def and sends `hello`;
 *   - it watches for cancellation: a `cancel` line on stdin, stdin EOF (host gone) or SIGTERM
 *     set a flag that the plugin polls with ims_cancelled();
 *   - it makes sure exactly one terminal message is sent and that the exit code agrees with it;
 *   - every line is valid UTF-8 (invalid bytes become U+FFFD), carries an increasing "seq", and
 *     stays under the 1 MiB line limit (longer messages are dropped with a note on stderr).
 *
 * Minimal plugin:
 *
 *     #include "ims_plugin.h"
 *
 *     static int run(ims_ctx *ctx) {
 *         ims_log("info", "hello");
 *         if (ims_cancelled()) return ims_error_cancelled();
 *         return ims_result(NULL, NULL, NULL);
 *     }
 *
 *     static const char *const payloads[] = {"custom/v1", NULL};
 *     static const ims_phase_def phases[] = {{"hello", payloads}, {NULL, NULL}};
 *     static const ims_plugin_def def = {
 *         .id = "org.example.hello", .version = "1.0.0", .phases = phases, .run = run,
 *     };
 *     int main(int argc, char **argv) { return ims_plugin_main(argc, argv, &def); }
 *
 * Build: cc -std=c11 -D_GNU_SOURCE main.c ims_plugin.c $(pkg-config --cflags --libs json-c) -lpthread
 *
 * Threads: the emit functions (ims_log, ims_progress, ...) are thread-safe. The request
 * accessors return pointers that stay valid until the process exits.
 *
 * Children: the protocol fd is close-on-exec, so exec'd tools never see it; their stdout goes
 * to stderr (the job log). stdin is replaced by /dev/null once the request is read.
 */
#ifndef IMS_PLUGIN_H
#define IMS_PLUGIN_H

#include <json-c/json.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard limit of one protocol line, newline excluded (the host refuses longer lines). */
#define IMS_MAX_LINE_BYTES (1024 * 1024)

/* Exit codes fixed by the protocol. */
#define IMS_EXIT_SUCCESS 0  /* terminal message is `result` */
#define IMS_EXIT_FAILURE 1  /* terminal message is `error` */
#define IMS_EXIT_USAGE 2    /* bad argv / not run by the host; no protocol output */
#define IMS_EXIT_PROTOCOL 3 /* unusable request or unsupported protocol version */

/* One phase the plugin offers, as listed by `describe` (must agree with plugin.json). */
typedef struct ims_phase_def {
    const char *name;            /* e.g. "configure-dns", or a custom site phase name */
    const char *const *payloads; /* NULL-terminated, e.g. {"configure-dns/v1", NULL} */
} ims_phase_def;

/* The request of one run/cleanup invocation; see the accessors below. */
typedef struct ims_ctx ims_ctx;

/* Static description of the plugin. Fields not set are NULL / 0. */
typedef struct ims_plugin_def {
    const char *id;      /* must equal plugin.json "id" */
    const char *version; /* must equal plugin.json "version" */
    const char *vendor;  /* optional; must equal plugin.json "vendor" when set */
    /* Protocol majors spoken, terminated by 0. NULL means {1, 0}. */
    const int *protocol_versions;
    /* Features the plugin can use ("cancel.message", "cleanup", "progress", "diagnostic",
     * "heartbeat"), NULL-terminated. `hello` announces those the host also offers. */
    const char *const *features;
    /* Phases offered, terminated by an entry whose name is NULL. */
    const ims_phase_def *phases;
    /* Called for `run` and `cleanup` after `hello` was sent. Finish with
     * `return ims_result(...)` or `return ims_error(...)`. If the callback returns without
     * sending a terminal message, the SDK sends an empty result (return value 0) or an
     * internal error (any other value). The exit code always follows the terminal message.
     * A NULL cleanup makes `cleanup` succeed with an empty result. */
    int (*run)(ims_ctx *ctx);
    int (*cleanup)(ims_ctx *ctx);
} ims_plugin_def;

/* Runs the plugin: call it from main() and return its value. */
int ims_plugin_main(int argc, char **argv, const ims_plugin_def *def);

/* ---- Request accessors (pointers are borrowed and valid until exit) ---- */

json_object *ims_request(const ims_ctx *ctx);  /* the whole request `data` object */
const char *ims_verb(const ims_ctx *ctx);      /* "run" or "cleanup" */
const char *ims_phase(const ims_ctx *ctx);     /* phase name */
const char *ims_payload(const ims_ctx *ctx);   /* e.g. "custom/v1" */
int ims_protocol_version(const ims_ctx *ctx);  /* negotiated wire major */
const char *ims_job_id(const ims_ctx *ctx);
const char *ims_deadline(const ims_ctx *ctx);  /* RFC 3339 text */
time_t ims_deadline_time(const ims_ctx *ctx);  /* (time_t)-1 if it cannot be parsed */
/* which: "root", "in", "out", "tmp" or "state"; NULL for anything else. */
const char *ims_workspace(const ims_ctx *ctx, const char *which);
json_object *ims_config(const ims_ctx *ctx);   /* always an object */
json_object *ims_inputs(const ims_ctx *ctx);   /* name -> artifact; always an object */
const char *ims_input_path(const ims_ctx *ctx, const char *name); /* NULL if absent */
const char *ims_secret_file(const ims_ctx *ctx, const char *name); /* NULL if absent */
/* config[key] when it is a string, else dflt. */
const char *ims_config_string(const ims_ctx *ctx, const char *key, const char *dflt);
/* Whether `feature` was offered by the host and is used by the plugin (announced in hello). */
int ims_has_feature(const ims_ctx *ctx, const char *feature);

/* ---- Messages (each writes one compact line to the protocol fd and flushes) ---- */

/* Any message: `data` is consumed (ownership passes to the SDK; NULL means {}).
 * Returns 0 on success, -1 if it was not written (write error, after the terminal, too long). */
int ims_emit(const char *type, json_object *data);

/* level: trace|debug|info|notice|warn|error. Records below the request's log_level (or
 * IMS_LOG_LEVEL) are not sent, as the protocol recommends; use ims_emit("log", ...) to bypass. */
void ims_log(const char *level, const char *msg);
void ims_logf(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* level, msg, and a fields object (consumed; may be NULL). */
void ims_log_fields(const char *level, const char *msg, json_object *fields);
/* Whether a record of `level` would be sent (use it to skip building expensive messages). */
int ims_log_enabled(const char *level);

/* state: begin|report|end. A negative current/total and a NULL unit/message are left out.
 * unit: bytes|items|steps. */
void ims_progress(const char *task, const char *state, double current, double total,
                  const char *unit, const char *message);

/* Announces an output as soon as it exists. kind: "file" or "dir". */
void ims_artifact(const char *name, const char *path, const char *kind);

/* Builds an artifact reference {path, kind[, size, digest]} for result outputs. For a file
 * and with_digest != 0 it adds "size" and "digest":"sha256:<hex>". NULL if the file cannot
 * be read. The caller owns the result (pass it to json_object_object_add). */
json_object *ims_artifact_ref(const char *path, const char *kind, int with_digest);

/* The terminal success message. All three are consumed; NULL means {}.
 * Returns IMS_EXIT_SUCCESS so that a callback can `return ims_result(...)`. */
int ims_result(json_object *outputs, json_object *metadata, json_object *facts);

/* The terminal failure message. code: dotted lowercase ("<phase>.*" or "x.<vendor>.*");
 * category: user|config|environment|transient|internal|protocol|cancelled|timeout.
 * details is consumed (may be NULL). Returns IMS_EXIT_FAILURE. */
int ims_error(const char *code, const char *category, const char *message, json_object *details);

/* ims_error("ims.cancelled", "cancelled", ...) with the cancel reason. Returns IMS_EXIT_FAILURE. */
int ims_error_cancelled(void);

/* ---- Cancellation ---- */

/* Non-zero once a `cancel` line arrived, stdin reached EOF (host gone), SIGTERM was received,
 * or the protocol stream broke. Poll it between steps. */
int ims_cancelled(void);
/* Why: the cancel message's reason, "stdin closed", "SIGTERM" or "protocol stream closed". */
const char *ims_cancel_reason(void);
/* Sleeps up to `seconds`, waking early on cancellation. Returns 0, or -1 if cancelled. */
int ims_sleep(double seconds);

/* ---- Utilities ---- */

/* SHA-256 of a file as 64 lowercase hex chars (+ NUL). size may be NULL. Returns 0 or -1. */
int ims_sha256_file(const char *path, char hex[65], uint64_t *size);

#ifdef __cplusplus
}
#endif

#endif /* IMS_PLUGIN_H */
