/*
 * ims_plugin.c - C SDK for ims plugins, protocol 1. See ims_plugin.h.
 *
 * Build with: -std=c11 -D_GNU_SOURCE $(pkg-config --cflags --libs json-c) -lpthread
 */
#include "ims_plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Source of a cancellation (g_cancel_source). */
enum { CANCEL_NONE = 0, CANCEL_MESSAGE, CANCEL_EOF, CANCEL_SIGNAL, CANCEL_BROKEN_PIPE };
/* Terminal message state (g_terminal). */
enum { TERMINAL_NONE = 0, TERMINAL_RESULT, TERMINAL_ERROR };

struct ims_ctx {
    json_object *envelope; /* owns everything below */
    json_object *data;
    json_object *config;
    json_object *inputs;
    json_object *secrets;
    json_object *features; /* array: negotiated subset announced in hello */
    int version;
    const char *verb;
};

static int g_out_fd = -1;                 /* protocol output */
static int g_envelope_version = 1;        /* "ims" of every emitted message */
static pthread_mutex_t g_emit_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_terminal = TERMINAL_NONE;    /* guarded by g_emit_lock */
static long long g_seq = 0;               /* last "seq" written; guarded by g_emit_lock */
static int g_min_log_level = 0;           /* index into LOG_LEVELS; lower records are not sent */
static atomic_int g_cancel_source = CANCEL_NONE;
static char g_cancel_reason[128];         /* written once, before g_cancel_source is set */

/* ------------------------------------------------------------------ low-level output */

static void mark_cancelled(int source)
{
    int expected = CANCEL_NONE;
    atomic_compare_exchange_strong(&g_cancel_source, &expected, source);
}

/* write(2) loop that survives EINTR and partial writes. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copies s, replacing invalid UTF-8 with U+FFFD (json-c passes string bytes through unchecked,
 * and the host refuses non-UTF-8) and escaping U+2028, U+2029 and U+0085 (which some readers
 * treat as line breaks). Returns a malloc'd copy with room for a trailing newline. */
static char *utf8_sanitize(const char *s, size_t len, size_t *out_len)
{
    char *out = malloc(len * 3 + 2);
    size_t o = 0, i = 0;
    if (out == NULL)
        return NULL;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t need = 0;
        unsigned int cp = 0;
        if (c < 0x80) {
            out[o++] = (char)c;
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        }
        int ok = need > 0 && i + need < len;
        for (size_t k = 1; ok && k <= need; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            ok = (cc & 0xC0) == 0x80;
            cp = (cp << 6) | (cc & 0x3F);
        }
        /* Reject overlongs, surrogates and code points above U+10FFFF. */
        if (ok && ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
                   (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF))
            ok = 0;
        if (ok && (cp == 0x2028 || cp == 0x2029 || cp == 0x85)) {
            o += (size_t)sprintf(out + o, "\\u%04x", cp); /* only ever inside a JSON string */
            i += need + 1;
        } else if (ok) {
            memcpy(out + o, s + i, need + 1);
            o += need + 1;
            i += need + 1;
        } else {
            out[o++] = (char)0xEF;
            out[o++] = (char)0xBF;
            out[o++] = (char)0xBD;
            i++;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static int is_terminal_type(const char *type)
{
    return strcmp(type, "result") == 0 || strcmp(type, "error") == 0;
}

int ims_emit(const char *type, json_object *data)
{
    int rc = -1;
    if (data == NULL)
        data = json_object_new_object();
    json_object *type_json = json_object_new_string(type);
    const char *type_text = json_object_to_json_string_ext(type_json, JSON_FLAGS);
    const char *data_text = json_object_to_json_string_ext(data, JSON_FLAGS);

    pthread_mutex_lock(&g_emit_lock);
    if (g_out_fd < 0) {
        fprintf(stderr, "ims_plugin: no protocol stream; dropped a '%s' message\n", type);
    } else if (g_terminal != TERMINAL_NONE) {
        fprintf(stderr, "ims_plugin: '%s' after the terminal message was dropped\n", type);
    } else {
        /* The envelope is assembled here so that seq is strictly increasing in write order. */
        char *raw = NULL, *line = NULL;
        size_t len = 0;
        if (asprintf(&raw, "{\"ims\":%d,\"type\":%s,\"seq\":%lld,\"data\":%s}", g_envelope_version, type_text,
                     g_seq + 1, data_text) >= 0)
            line = utf8_sanitize(raw, strlen(raw), &len);
        free(raw);
        if (line == NULL) {
            fprintf(stderr, "ims_plugin: out of memory; dropped a '%s' message\n", type);
        } else if (len > IMS_MAX_LINE_BYTES) {
            fprintf(stderr, "ims_plugin: '%s' message of %zu bytes exceeds the 1 MiB line limit; dropped\n",
                    type, len);
        } else {
            g_seq++;
            line[len] = '\n';
            if (write_all(g_out_fd, line, len + 1) == 0) {
                rc = 0;
            } else {
                fprintf(stderr, "ims_plugin: protocol write failed: %s\n", strerror(errno));
                if (errno == EPIPE)
                    mark_cancelled(CANCEL_BROKEN_PIPE);
            }
            if (is_terminal_type(type))
                g_terminal = strcmp(type, "result") == 0 ? TERMINAL_RESULT : TERMINAL_ERROR;
        }
        free(line);
    }
    pthread_mutex_unlock(&g_emit_lock);
    json_object_put(type_json);
    json_object_put(data);
    return rc;
}

/* ------------------------------------------------------------------ message helpers */

static const char *const LOG_LEVELS[] = {"trace", "debug", "info", "notice", "warn", "error", NULL};

static int log_level_index(const char *level)
{
    for (int i = 0; level != NULL && LOG_LEVELS[i]; i++)
        if (strcmp(LOG_LEVELS[i], level) == 0)
            return i;
    return -1;
}

int ims_log_enabled(const char *level)
{
    int idx = log_level_index(level);
    return idx < 0 || idx >= g_min_log_level;
}

void ims_log_fields(const char *level, const char *msg, json_object *fields)
{
    if (!ims_log_enabled(level)) {
        json_object_put(fields);
        return;
    }
    json_object *d = json_object_new_object();
    json_object_object_add(d, "level", json_object_new_string(level ? level : "info"));
    json_object_object_add(d, "msg", json_object_new_string(msg ? msg : ""));
    if (fields != NULL)
        json_object_object_add(d, "fields", fields);
    ims_emit("log", d);
}

void ims_log(const char *level, const char *msg)
{
    ims_log_fields(level, msg, NULL);
}

void ims_logf(const char *level, const char *fmt, ...)
{
    if (!ims_log_enabled(level))
        return;
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    ims_log(level, msg);
    free(msg);
}

/* Integral values are written as JSON integers, others as doubles. */
static json_object *number(double v)
{
    if (v == (double)(int64_t)v)
        return json_object_new_int64((int64_t)v);
    return json_object_new_double(v);
}

void ims_progress(const char *task, const char *state, double current, double total,
                  const char *unit, const char *message)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "task", json_object_new_string(task));
    json_object_object_add(d, "state", json_object_new_string(state));
    if (current >= 0)
        json_object_object_add(d, "current", number(current));
    if (total >= 0)
        json_object_object_add(d, "total", number(total));
    if (unit != NULL)
        json_object_object_add(d, "unit", json_object_new_string(unit));
    if (message != NULL)
        json_object_object_add(d, "message", json_object_new_string(message));
    ims_emit("progress", d);
}

void ims_artifact(const char *name, const char *path, const char *kind)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "name", json_object_new_string(name));
    json_object_object_add(d, "path", json_object_new_string(path));
    json_object_object_add(d, "kind", json_object_new_string(kind));
    ims_emit("artifact", d);
}

json_object *ims_artifact_ref(const char *path, const char *kind, int with_digest)
{
    json_object *ref = json_object_new_object();
    json_object_object_add(ref, "path", json_object_new_string(path));
    json_object_object_add(ref, "kind", json_object_new_string(kind));
    if (with_digest && strcmp(kind, "file") == 0) {
        char hex[65], digest[72];
        uint64_t size = 0;
        if (ims_sha256_file(path, hex, &size) != 0) {
            json_object_put(ref);
            return NULL;
        }
        snprintf(digest, sizeof digest, "sha256:%s", hex);
        json_object_object_add(ref, "digest", json_object_new_string(digest));
        json_object_object_add(ref, "size", json_object_new_int64((int64_t)size));
    }
    return ref;
}

int ims_result(json_object *outputs, json_object *metadata, json_object *facts)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "outputs", outputs ? outputs : json_object_new_object());
    json_object_object_add(d, "metadata", metadata ? metadata : json_object_new_object());
    json_object_object_add(d, "facts", facts ? facts : json_object_new_object());
    ims_emit("result", d);
    return IMS_EXIT_SUCCESS;
}

int ims_error(const char *code, const char *category, const char *message, json_object *details)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "code", json_object_new_string(code));
    json_object_object_add(d, "category", json_object_new_string(category));
    json_object_object_add(d, "message", json_object_new_string(message ? message : code));
    if (details != NULL)
        json_object_object_add(d, "details", details);
    ims_emit("error", d);
    return IMS_EXIT_FAILURE;
}

int ims_error_cancelled(void)
{
    char msg[192];
    snprintf(msg, sizeof msg, "cancelled: %s", ims_cancel_reason());
    return ims_error("ims.cancelled", "cancelled", msg, NULL);
}

/* ------------------------------------------------------------------ cancellation */

int ims_cancelled(void)
{
    return atomic_load(&g_cancel_source) != CANCEL_NONE;
}

const char *ims_cancel_reason(void)
{
    switch (atomic_load(&g_cancel_source)) {
    case CANCEL_MESSAGE:
        return g_cancel_reason[0] ? g_cancel_reason : "cancel message";
    case CANCEL_EOF:
        return "stdin closed";
    case CANCEL_SIGNAL:
        return "SIGTERM";
    case CANCEL_BROKEN_PIPE:
        return "protocol stream closed";
    default:
        return "not cancelled";
    }
}

int ims_sleep(double seconds)
{
    while (seconds > 0) {
        if (ims_cancelled())
            return -1;
        double slice = seconds < 0.05 ? seconds : 0.05;
        struct timespec ts = {(time_t)slice, (long)((slice - (double)(time_t)slice) * 1e9)};
        nanosleep(&ts, NULL); /* EINTR (SIGTERM) just ends the slice early */
        seconds -= slice;
    }
    return ims_cancelled() ? -1 : 0;
}

static void on_sigterm(int sig)
{
    (void)sig;
    int expected = CANCEL_NONE;
    atomic_compare_exchange_strong(&g_cancel_source, &expected, CANCEL_SIGNAL);
}

/* Line reader over the (duplicated) stdin, shared by the request read and the cancel thread. */
typedef struct {
    int fd;
    char *buf;
    size_t len;
    size_t cap;
    int eof;
} line_reader;

/* Returns 1 with a NUL-terminated line in *line (malloc'd, newline removed), 0 at EOF,
 * -1 for a line longer than max (the rest of that line is skipped), -2 on read error. */
static int read_line(line_reader *r, size_t max, char **line)
{
    int too_long = 0;
    for (;;) {
        char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
        if (nl != NULL || (r->eof && r->len > 0)) {
            size_t n = nl ? (size_t)(nl - r->buf) : r->len;
            size_t consumed = nl ? n + 1 : n;
            int rc = 1;
            if (too_long || n > max) {
                rc = -1;
            } else {
                *line = malloc(n + 1);
                if (*line == NULL)
                    return -2;
                memcpy(*line, r->buf, n);
                (*line)[n] = '\0';
            }
            memmove(r->buf, r->buf + consumed, r->len - consumed);
            r->len -= consumed;
            return rc;
        }
        if (r->eof)
            return too_long ? -1 : 0;
        if (r->len > max) { /* no newline within the limit: drop what we have, keep skipping */
            too_long = 1;
            r->len = 0;
        }
        if (r->cap - r->len < 65536) {
            size_t cap = r->cap ? r->cap * 2 : 65536 * 2;
            char *nb = realloc(r->buf, cap);
            if (nb == NULL)
                return -2;
            r->buf = nb;
            r->cap = cap;
        }
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -2;
        }
        if (n == 0)
            r->eof = 1;
        r->len += (size_t)n;
    }
}

static line_reader g_reader = {.fd = -1};

/* Reads the lines after the request: a `cancel` message or EOF cancels; others are ignored. */
static void *cancel_watcher(void *arg)
{
    (void)arg;
    for (;;) {
        char *line = NULL;
        int rc = read_line(&g_reader, IMS_MAX_LINE_BYTES, &line);
        if (rc == 0 || rc == -2) {
            mark_cancelled(CANCEL_EOF);
            return NULL;
        }
        if (rc != 1)
            continue;
        json_object *msg = json_tokener_parse(line);
        free(line);
        json_object *type = NULL, *data = NULL, *reason = NULL;
        if (msg != NULL && json_object_object_get_ex(msg, "type", &type) &&
            json_object_is_type(type, json_type_string) &&
            strcmp(json_object_get_string(type), "cancel") == 0) {
            if (json_object_object_get_ex(msg, "data", &data) &&
                json_object_object_get_ex(data, "reason", &reason) &&
                json_object_is_type(reason, json_type_string))
                snprintf(g_cancel_reason, sizeof g_cancel_reason, "%s", json_object_get_string(reason));
            mark_cancelled(CANCEL_MESSAGE);
            json_object_put(msg);
            return NULL;
        }
        json_object_put(msg);
    }
}

/* ------------------------------------------------------------------ request accessors */

static json_object *member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (obj == NULL || !json_object_is_type(obj, json_type_object))
        return NULL;
    return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

static const char *string_member(json_object *obj, const char *key)
{
    json_object *v = member(obj, key);
    return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

json_object *ims_request(const ims_ctx *ctx) { return ctx->data; }
const char *ims_verb(const ims_ctx *ctx) { return ctx->verb; }
const char *ims_phase(const ims_ctx *ctx) { return string_member(ctx->data, "phase"); }
const char *ims_payload(const ims_ctx *ctx) { return string_member(ctx->data, "payload"); }
int ims_protocol_version(const ims_ctx *ctx) { return ctx->version; }
const char *ims_job_id(const ims_ctx *ctx) { return string_member(member(ctx->data, "job"), "id"); }
const char *ims_deadline(const ims_ctx *ctx) { return string_member(ctx->data, "deadline"); }
json_object *ims_config(const ims_ctx *ctx) { return ctx->config; }
json_object *ims_inputs(const ims_ctx *ctx) { return ctx->inputs; }

const char *ims_workspace(const ims_ctx *ctx, const char *which)
{
    static const char *const names[] = {"root", "in", "out", "tmp", "state", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], which) == 0)
            return string_member(member(ctx->data, "workspace"), which);
    return NULL;
}

const char *ims_input_path(const ims_ctx *ctx, const char *name)
{
    return string_member(member(ctx->inputs, name), "path");
}

const char *ims_secret_file(const ims_ctx *ctx, const char *name)
{
    return string_member(member(ctx->secrets, name), "file");
}

const char *ims_config_string(const ims_ctx *ctx, const char *key, const char *dflt)
{
    const char *v = string_member(ctx->config, key);
    return v ? v : dflt;
}

int ims_has_feature(const ims_ctx *ctx, const char *feature)
{
    size_t n = json_object_array_length(ctx->features);
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_object_get_string(json_object_array_get_idx(ctx->features, i)), feature) == 0)
            return 1;
    return 0;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
time_t ims_deadline_time(const ims_ctx *ctx)
{
    const char *s = ims_deadline(ctx);
    struct tm tm = {0};
    int used = 0, oh = 0, om = 0;
    if (s == NULL || sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 || used == 0)
        return (time_t)-1;
    s += used;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++) {
        }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (*s == 'Z' || *s == 'z')
        return s[1] == '\0' ? t : (time_t)-1;
    if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d", &oh, &om) == 2) {
        long off = (long)oh * 3600 + (long)om * 60;
        return *s == '+' ? t - off : t + off;
    }
    return (time_t)-1;
}

/* ------------------------------------------------------------------ SHA-256 (FIPS 180-4) */

typedef struct {
    uint32_t h[8];
    uint64_t bits;
    unsigned char block[64];
    size_t used;
} sha256_state;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_state *s, const unsigned char *p)
{
    uint32_t w[64], a, b, c, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d;
    s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha256_update(sha256_state *s, const unsigned char *p, size_t n)
{
    s->bits += (uint64_t)n * 8;
    while (n > 0) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, p, take);
        s->used += take, p += take, n -= take;
        if (s->used == 64) {
            sha256_block(s, s->block);
            s->used = 0;
        }
    }
}

int ims_sha256_file(const char *path, char hex[65], uint64_t *size)
{
    static const uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    sha256_state s = {.bits = 0, .used = 0};
    unsigned char buf[65536];
    uint64_t total = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    memcpy(s.h, init, sizeof init);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        sha256_update(&s, buf, (size_t)n);
        total += (uint64_t)n;
    }
    close(fd);

    uint64_t bits = s.bits;
    unsigned char pad[72] = {0x80};
    size_t padlen = s.used < 56 ? 56 - s.used : 120 - s.used;
    sha256_update(&s, pad, padlen);
    for (int i = 0; i < 8; i++)
        pad[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(&s, pad, 8);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", s.h[i]);
    if (size != NULL)
        *size = total;
    return 0;
}

/* ------------------------------------------------------------------ main */

static const int default_versions[] = {1, 0};

static const int *versions_of(const ims_plugin_def *def)
{
    return def->protocol_versions ? def->protocol_versions : default_versions;
}

static int newest_version(const ims_plugin_def *def)
{
    int newest = 1;
    for (const int *v = versions_of(def); *v; v++)
        newest = *v > newest ? *v : newest;
    return newest;
}

static json_object *versions_json(const ims_plugin_def *def)
{
    json_object *arr = json_object_new_array();
    for (const int *v = versions_of(def); *v; v++)
        json_object_array_add(arr, json_object_new_int(*v));
    return arr;
}

static json_object *identity_json(const ims_plugin_def *def)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "id", json_object_new_string(def->id));
    json_object_object_add(p, "version", json_object_new_string(def->version));
    if (def->vendor != NULL)
        json_object_object_add(p, "vendor", json_object_new_string(def->vendor));
    return p;
}

static int emit_describe(const ims_plugin_def *def)
{
    json_object *d = json_object_new_object();
    json_object *proto = json_object_new_object();
    json_object *features = json_object_new_array();
    json_object *phases = json_object_new_array();

    for (const char *const *f = def->features; f && *f; f++)
        json_object_array_add(features, json_object_new_string(*f));
    json_object_object_add(proto, "versions", versions_json(def));
    json_object_object_add(proto, "features", features);
    for (const ims_phase_def *ph = def->phases; ph && ph->name; ph++) {
        json_object *p = json_object_new_object();
        json_object *payloads = json_object_new_array();
        for (const char *const *pl = ph->payloads; pl && *pl; pl++)
            json_object_array_add(payloads, json_object_new_string(*pl));
        json_object_object_add(p, "name", json_object_new_string(ph->name));
        json_object_object_add(p, "payloads", payloads);
        json_object_array_add(phases, p);
    }
    json_object_object_add(d, "plugin", identity_json(def));
    json_object_object_add(d, "protocol", proto);
    json_object_object_add(d, "phases", phases);
    g_envelope_version = newest_version(def); /* describe's "ims" is the plugin's newest major */
    return ims_emit("describe", d) == 0 ? IMS_EXIT_SUCCESS : IMS_EXIT_FAILURE;
}

static int usage(const char *prog, const ims_plugin_def *def, const char *why)
{
    fprintf(stderr,
            "%s: %s\n"
            "usage: %s describe|run|cleanup\n"
            "This is an ims plugin (%s %s). It is started by ims, which sets IMS_PLUGIN=1 and\n"
            "writes one request line on stdin for run/cleanup. Try: IMS_PLUGIN=1 %s describe\n",
            prog, why, prog, def->id, def->version, prog);
    return IMS_EXIT_USAGE;
}

static int protocol_error(const char *code, const char *message, json_object *details)
{
    ims_error(code, "protocol", message, details);
    return IMS_EXIT_PROTOCOL;
}

static int bad_request(const char *message)
{
    fprintf(stderr, "ims_plugin: bad request: %s\n", message);
    return protocol_error("ims.protocol.bad_request", message, NULL);
}

static int speaks(const ims_plugin_def *def, int version)
{
    for (const int *v = versions_of(def); *v; v++)
        if (*v == version)
            return 1;
    return 0;
}

static int is_type(json_object *v, json_type t) { return v != NULL && json_object_is_type(v, t); }

/* Checks the request envelope; returns 0, or the exit code after an error was sent. */
static int check_request(ims_ctx *ctx, const ims_plugin_def *def, const char *verb, const char *line)
{
    ctx->envelope = json_tokener_parse(line);
    if (!is_type(ctx->envelope, json_type_object))
        return bad_request("the request line is not a JSON object");
    const char *type = string_member(ctx->envelope, "type");
    if (type == NULL || strcmp(type, "request") != 0)
        return bad_request("expected a message of type 'request'");
    ctx->data = member(ctx->envelope, "data");
    if (!is_type(ctx->data, json_type_object))
        return bad_request("the request has no 'data' object");

    /* Version first: a request of another major may legitimately have other fields. */
    json_object *proto = member(ctx->data, "protocol");
    json_object *version = member(proto, "version");
    if (version == NULL)
        version = member(ctx->envelope, "ims");
    if (!is_type(version, json_type_int))
        return bad_request("missing protocol.version");
    ctx->version = json_object_get_int(version);
    g_envelope_version = ctx->version; /* from here on, even an unsupported_version error uses it */
    if (!speaks(def, ctx->version)) {
        char msg[160];
        json_object *details = json_object_new_object();
        json_object_object_add(details, "supported", versions_json(def));
        json_object_object_add(details, "requested", json_object_new_int(ctx->version));
        snprintf(msg, sizeof msg, "protocol version %d is not supported by %s %s", ctx->version, def->id,
                 def->version);
        fprintf(stderr, "ims_plugin: %s\n", msg);
        return protocol_error("ims.protocol.unsupported_version", msg, details);
    }
    if (!is_type(proto, json_type_object))
        return bad_request("missing field 'protocol'");

    static const char *const required_strings[] = {"verb", "phase", "payload", "deadline", NULL};
    for (int i = 0; required_strings[i]; i++) {
        if (string_member(ctx->data, required_strings[i]) == NULL) {
            char msg[96];
            snprintf(msg, sizeof msg, "missing or non-string field '%s'", required_strings[i]);
            return bad_request(msg);
        }
    }
    static const char *const ws[] = {"root", "in", "out", "tmp", "state", NULL};
    for (int i = 0; ws[i]; i++) {
        if (string_member(member(ctx->data, "workspace"), ws[i]) == NULL) {
            char msg[96];
            snprintf(msg, sizeof msg, "missing field 'workspace.%s'", ws[i]);
            return bad_request(msg);
        }
    }
    if (string_member(member(ctx->data, "job"), "id") == NULL)
        return bad_request("missing field 'job.id'");
    if (!is_type(member(ctx->data, "host"), json_type_object))
        return bad_request("missing field 'host'");
    json_object *offered = member(proto, "features");
    if (offered != NULL && !is_type(offered, json_type_array))
        return bad_request("'protocol.features' is not an array");

    ctx->config = member(ctx->data, "config");
    ctx->inputs = member(ctx->data, "inputs");
    ctx->secrets = member(ctx->data, "secrets");
    if (ctx->config != NULL && !is_type(ctx->config, json_type_object))
        return bad_request("'config' is not an object");
    if (ctx->inputs != NULL && !is_type(ctx->inputs, json_type_object))
        return bad_request("'inputs' is not an object");
    if (ctx->secrets != NULL && !is_type(ctx->secrets, json_type_object))
        return bad_request("'secrets' is not an object");
    /* Absent optional objects become empty ones owned by the envelope. */
    if (ctx->config == NULL)
        json_object_object_add(ctx->data, "config", ctx->config = json_object_new_object());
    if (ctx->inputs == NULL)
        json_object_object_add(ctx->data, "inputs", ctx->inputs = json_object_new_object());
    if (ctx->secrets == NULL)
        json_object_object_add(ctx->data, "secrets", ctx->secrets = json_object_new_object());

    const char *req_verb = string_member(ctx->data, "verb");
    if (strcmp(req_verb, verb) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "request verb '%.40s' does not match argv verb '%s'", req_verb, verb);
        return bad_request(msg);
    }
    const char *phase = string_member(ctx->data, "phase");
    int known = 0;
    for (const ims_phase_def *ph = def->phases; ph && ph->name; ph++)
        if (strcmp(ph->name, phase) == 0)
            known = 1;
    if (!known) {
        char msg[200];
        snprintf(msg, sizeof msg, "phase '%.64s' is not offered by %s", phase, def->id);
        return bad_request(msg);
    }

    /* Negotiated features: ours that the host offers. */
    ctx->features = json_object_new_array(); /* lives until exit */
    for (const char *const *f = def->features; f && *f; f++) {
        size_t n = offered ? json_object_array_length(offered) : 0;
        for (size_t i = 0; i < n; i++) {
            json_object *o = json_object_array_get_idx(offered, i);
            if (is_type(o, json_type_string) && strcmp(json_object_get_string(o), *f) == 0) {
                json_object_array_add(ctx->features, json_object_new_string(*f));
                break;
            }
        }
    }
    /* Records below the requested level are not sent (the host would drop them anyway). */
    const char *level = string_member(ctx->data, "log_level");
    if (level == NULL)
        level = getenv("IMS_LOG_LEVEL");
    g_min_log_level = log_level_index(level) > 0 ? log_level_index(level) : 0;
    ctx->verb = verb;
    return 0;
}

int ims_plugin_main(int argc, char **argv, const ims_plugin_def *def)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : def->id;
    static ims_ctx ctx;

    /* Keep the protocol stream for ourselves; anything else written to fd 1 goes to stderr. */
    g_out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (g_out_fd >= 0) {
        fflush(stdout);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        /* stdout now reaches the job's log: line-buffer it, so a printf appears when it is made, not at exit. */
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    signal(SIGPIPE, SIG_IGN);

    if (argc < 2)
        return usage(prog, def, "missing verb");
    const char *verb = argv[1];
    int is_run = strcmp(verb, "run") == 0, is_cleanup = strcmp(verb, "cleanup") == 0;
    if (!is_run && !is_cleanup && strcmp(verb, "describe") != 0)
        return usage(prog, def, "unknown verb");
    const char *cookie = getenv("IMS_PLUGIN");
    if (cookie == NULL || cookie[0] == '\0')
        return usage(prog, def, "IMS_PLUGIN is not set (not started by ims)");
    if (g_out_fd < 0) {
        fprintf(stderr, "%s: stdout is closed; no protocol stream\n", prog);
        return IMS_EXIT_USAGE;
    }
    if (!is_run && !is_cleanup)
        return emit_describe(def);
    if (isatty(STDIN_FILENO))
        return usage(prog, def, "stdin is a terminal; the request must be piped in");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);

    /* Keep stdin for the request and the cancel watcher; children get /dev/null. */
    g_reader.fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    if (g_reader.fd < 0)
        g_reader.fd = STDIN_FILENO;
    else {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0 && devnull != STDIN_FILENO) {
            dup2(devnull, STDIN_FILENO);
            close(devnull);
        }
    }

    char *line = NULL;
    int rc = read_line(&g_reader, IMS_MAX_LINE_BYTES, &line);
    /* Until the request names its major, errors use the one the host negotiated (IMS_PROTOCOL). */
    const char *negotiated = getenv("IMS_PROTOCOL");
    g_envelope_version = negotiated && atoi(negotiated) > 0 ? atoi(negotiated) : newest_version(def);
    if (rc == 0)
        return bad_request("stdin closed before a request line arrived");
    if (rc == -1)
        return bad_request("the request line exceeds 1 MiB");
    if (rc < 0)
        return bad_request("cannot read the request from stdin");
    rc = check_request(&ctx, def, verb, line);
    free(line);
    if (rc != 0)
        return rc;

    json_object *hello = json_object_new_object();
    json_object *proto = json_object_new_object();
    json_object_object_add(proto, "version", json_object_new_int(ctx.version));
    json_object_object_add(hello, "plugin", identity_json(def));
    json_object_object_add(hello, "protocol", proto);
    json_object_object_add(hello, "features", json_object_get(ctx.features));
    ims_emit("hello", hello);

    pthread_t watcher;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&watcher, &attr, cancel_watcher, NULL) != 0)
        fprintf(stderr, "ims_plugin: cannot start the cancel watcher; only SIGTERM cancels\n");
    pthread_attr_destroy(&attr);

    int (*callback)(ims_ctx *) = is_run ? def->run : def->cleanup;
    int ret = callback ? callback(&ctx) : 0;

    pthread_mutex_lock(&g_emit_lock);
    int terminal = g_terminal;
    pthread_mutex_unlock(&g_emit_lock);
    if (terminal == TERMINAL_NONE) {
        if (ret == 0) {
            ims_result(NULL, NULL, NULL);
            terminal = TERMINAL_RESULT;
        } else if (ims_cancelled()) {
            ims_error_cancelled();
            terminal = TERMINAL_ERROR;
        } else {
            char msg[96];
            snprintf(msg, sizeof msg, "the plugin failed (status %d) without reporting an error", ret);
            ims_error("x.ims-sdk.unreported_failure", "internal", msg, NULL);
            terminal = TERMINAL_ERROR;
        }
    }
    return terminal == TERMINAL_RESULT ? IMS_EXIT_SUCCESS : IMS_EXIT_FAILURE;
}
