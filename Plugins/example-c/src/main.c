/*
 * org.ims.example.c - example ims plugin written with the C SDK (sdk/c/ims_plugin.h).
 *
 * Phases:
 *   hello          (custom/v1)        logs a greeting, reports 3 progress steps, writes
 *                                     <workspace.out>/hello.txt and returns it as output "greeting".
 *                                     config: greeting (string, default "hello from C"),
 *                                             step_seconds (number, default 0.1: pause per step)
 *   configure-dns  (configure-dns/v1) writes <inputs.rootfs>/etc/resolv.conf from
 *                                     config.nameservers / search / options; output "rootfs".
 *                                     Only mode "image" (the default); config.hosts is ignored.
 * cleanup removes the marker file run leaves in workspace.state (<state>/<phase>.state).
 *
 * Built by scripts/build-plugins into bin/ims-example-c.
 */
#include "ims_plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PLUGIN_ID "org.ims.example.c"

/* dir + "/" + name into out; -1 (ENAMETOOLONG) if it does not fit. */
static int path_join(char *out, size_t size, const char *dir, const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* Writes `len` bytes to `path` through a temporary file and rename(2), mode 0644. */
static int write_file(const char *path, const char *text, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            errno = e;
            return -1;
        }
        done += (size_t)n;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

/* Records in <state>/<phase>.state what run created, for cleanup. */
static int write_state(ims_ctx *ctx, const char *created)
{
    char name[300], path[4096], text[4200];
    snprintf(name, sizeof name, "%.255s.state", ims_phase(ctx));
    if (path_join(path, sizeof path, ims_workspace(ctx, "state"), name) != 0)
        return -1;
    int n = snprintf(text, sizeof text, "%s\n", created);
    return write_file(path, text, (size_t)n);
}

static int fail_errno(const char *code, const char *what, const char *path)
{
    char msg[4200];
    json_object *details = json_object_new_object();
    json_object_object_add(details, "path", json_object_new_string(path));
    json_object_object_add(details, "errno", json_object_new_int(errno));
    snprintf(msg, sizeof msg, "%s %s: %s", what, path, strerror(errno));
    return ims_error(code, "environment", msg, details);
}

static int run_hello(ims_ctx *ctx)
{
    const char *greeting = ims_config_string(ctx, "greeting", "hello from C");
    double step_seconds = 0.1;
    json_object *v = NULL;
    if (json_object_object_get_ex(ims_config(ctx), "step_seconds", &v) &&
        (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        step_seconds = json_object_get_double(v);

    char path[4096];
    if (path_join(path, sizeof path, ims_workspace(ctx, "out"), "hello.txt") != 0)
        return fail_errno("x.ims-example.write_failed", "cannot write in", ims_workspace(ctx, "out"));

    ims_logf("info", "%s (job %s)", greeting, ims_job_id(ctx));
    ims_progress("hello", "begin", 0, 3, "steps", "saying hello");
    static const char *const steps[] = {"prepared", "wrote hello.txt", "computed digest"};
    json_object *ref = NULL;
    for (int i = 1; i <= 3; i++) {
        if (ims_sleep(step_seconds) != 0) {
            json_object_put(ref);
            return ims_error_cancelled();
        }
        if (i == 2) {
            size_t len = strlen(greeting);
            char *text = malloc(len + 2);
            memcpy(text, greeting, len);
            text[len] = '\n';
            int rc = write_file(path, text, len + 1);
            free(text);
            if (rc != 0)
                return fail_errno("x.ims-example.write_failed", "cannot write", path);
            ims_artifact("greeting", path, "file");
        } else if (i == 3) {
            ref = ims_artifact_ref(path, "file", 1);
            if (ref == NULL)
                return fail_errno("x.ims-example.read_failed", "cannot read", path);
            json_object_object_add(ref, "media_type", json_object_new_string("text/plain"));
        }
        ims_progress("hello", "report", i, 3, "steps", steps[i - 1]);
    }
    ims_progress("hello", "end", 3, 3, "steps", "done");
    if (write_state(ctx, path) != 0) {
        json_object_put(ref);
        return fail_errno("x.ims-example.write_failed", "cannot write state in", ims_workspace(ctx, "state"));
    }

    json_object *outputs = json_object_new_object();
    json_object_object_add(outputs, "greeting", ref);
    return ims_result(outputs, NULL, NULL);
}

/* A config error pointing at the offending member (error.path is a JSON Pointer). */
static int config_error(const char *pointer, const char *message)
{
    json_object *d = json_object_new_object();
    json_object_object_add(d, "code", json_object_new_string("configure_dns.invalid_config"));
    json_object_object_add(d, "category", json_object_new_string("config"));
    json_object_object_add(d, "message", json_object_new_string(message));
    json_object_object_add(d, "path", json_object_new_string(pointer));
    ims_emit("error", d);
    return IMS_EXIT_FAILURE;
}

/* Appends "<keyword> a b c\n" (or one line per element when per_line) for a string array.
 * Returns 0, or -1 after sending a config error. */
static int append_list(ims_ctx *ctx, const char *key, const char *keyword, int required, int per_line,
                       char **text, size_t *len)
{
    json_object *arr = NULL;
    char pointer[64], msg[160];
    snprintf(pointer, sizeof pointer, "/%s", key);
    if (!json_object_object_get_ex(ims_config(ctx), key, &arr)) {
        if (!required)
            return 0;
        snprintf(msg, sizeof msg, "config.%s is required", key);
        return config_error(pointer, msg), -1;
    }
    size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
    if (!json_object_is_type(arr, json_type_array) || (required && n == 0)) {
        snprintf(msg, sizeof msg, "config.%s must be a%s array of strings", key, required ? " non-empty" : "n");
        return config_error(pointer, msg), -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(arr, i);
        const char *s = json_object_is_type(item, json_type_string) ? json_object_get_string(item) : NULL;
        int bad = s == NULL || *s == '\0';
        for (const char *c = s; !bad && *c; c++)
            bad = (unsigned char)*c <= ' ' || *c == 0x7f;
        if (bad) {
            snprintf(pointer, sizeof pointer, "/%s/%zu", key, i);
            snprintf(msg, sizeof msg, "config.%s[%zu] must be a non-empty string without whitespace", key, i);
            return config_error(pointer, msg), -1;
        }
        *text = realloc(*text, *len + strlen(keyword) + strlen(s) + 3);
        if (per_line || i == 0)
            *len += (size_t)sprintf(*text + *len, "%s", keyword);
        *len += (size_t)sprintf(*text + *len, " %s", s);
        if (per_line || i == n - 1)
            *len += (size_t)sprintf(*text + *len, "\n");
    }
    return 0;
}

static int run_configure_dns(ims_ctx *ctx)
{
    const char *rootfs = ims_input_path(ctx, "rootfs");
    struct stat st;
    if (rootfs == NULL)
        return ims_error("configure_dns.missing_input", "config", "input 'rootfs' is required", NULL);
    if (stat(rootfs, &st) != 0 || !S_ISDIR(st.st_mode))
        return ims_error("configure_dns.missing_input", "user", "input 'rootfs' is not a directory", NULL);

    /* Only the default mode: swap/restore would preserve and restore the original file. */
    const char *mode = ims_config_string(ctx, "mode", "image");
    if (strcmp(mode, "image") != 0) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "code", json_object_new_string("configure_dns.unsupported_mode"));
        json_object_object_add(d, "category", json_object_new_string("config"));
        json_object_object_add(d, "message", json_object_new_string("this example supports only mode 'image'"));
        json_object_object_add(d, "path", json_object_new_string("/mode"));
        ims_emit("error", d);
        return IMS_EXIT_FAILURE;
    }
    json_object *hosts = NULL;
    if (json_object_object_get_ex(ims_config(ctx), "hosts", &hosts) && json_object_is_type(hosts, json_type_array) &&
        json_object_array_length(hosts) > 0)
        ims_log("warn", "config.hosts is not supported by this example; ignored");

    char *text = NULL;
    size_t len = 0;
    char header[160];
    len = (size_t)snprintf(header, sizeof header, "# written by %s (configure-dns)\n", PLUGIN_ID);
    text = strdup(header);
    if (append_list(ctx, "nameservers", "nameserver", 1, 1, &text, &len) != 0 ||
        append_list(ctx, "search", "search", 0, 0, &text, &len) != 0 ||
        append_list(ctx, "options", "options", 0, 0, &text, &len) != 0) {
        free(text);
        return IMS_EXIT_FAILURE;
    }
    if (ims_cancelled()) {
        free(text);
        return ims_error_cancelled();
    }

    /* <rootfs>/etc must be a real directory: never write through a symlink out of the tree. */
    char etc[4096], path[4096];
    if (path_join(etc, sizeof etc, rootfs, "etc") != 0 || path_join(path, sizeof path, etc, "resolv.conf") != 0) {
        free(text);
        return fail_errno("configure_dns.write_failed", "cannot write in", rootfs);
    }
    if (mkdir(etc, 0755) != 0 && errno != EEXIST) {
        free(text);
        return fail_errno("configure_dns.write_failed", "cannot create", etc);
    }
    if (lstat(etc, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(text);
        return ims_error("configure_dns.unsafe_path", "user", "<rootfs>/etc is not a directory", NULL);
    }
    /* rename(2) replaces a resolv.conf symlink itself, not its target. */
    int rc = write_file(path, text, len);
    free(text);
    if (rc != 0)
        return fail_errno("configure_dns.write_failed", "cannot write", path);
    ims_logf("info", "wrote %s", path);
    if (write_state(ctx, path) != 0)
        return fail_errno("configure_dns.write_failed", "cannot write state in", ims_workspace(ctx, "state"));

    json_object *outputs = json_object_new_object();
    json_object_object_add(outputs, "rootfs", ims_artifact_ref(rootfs, "dir", 0));
    return ims_result(outputs, NULL, NULL);
}

static int run(ims_ctx *ctx)
{
    if (strcmp(ims_phase(ctx), "configure-dns") == 0)
        return run_configure_dns(ctx);
    return run_hello(ctx);
}

/* Idempotent: removes <state>/<phase>.state if it is there; nothing to do is success. */
static int cleanup(ims_ctx *ctx)
{
    char name[300], path[4096];
    snprintf(name, sizeof name, "%.255s.state", ims_phase(ctx));
    if (path_join(path, sizeof path, ims_workspace(ctx, "state"), name) != 0)
        return fail_errno("x.ims-example.cleanup_failed", "cannot clean up in", ims_workspace(ctx, "state"));
    if (unlink(path) == 0)
        ims_logf("info", "removed %s", path);
    else if (errno == ENOENT)
        ims_log("info", "nothing to clean up");
    else
        return fail_errno("x.ims-example.cleanup_failed", "cannot remove", path);
    return ims_result(NULL, NULL, NULL);
}

static const char *const hello_payloads[] = {"custom/v1", NULL};
static const char *const dns_payloads[] = {"configure-dns/v1", NULL};
static const ims_phase_def phases[] = {
    {"hello", hello_payloads},
    {"configure-dns", dns_payloads},
    {NULL, NULL},
};
static const char *const features[] = {"cancel.message", "cleanup", "progress", NULL};
static const int versions[] = {1, 0};

static const ims_plugin_def plugin = {
    .id = PLUGIN_ID,
    .version = "1.0.0",
    .vendor = "ims",
    .protocol_versions = versions,
    .features = features,
    .phases = phases,
    .run = run,
    .cleanup = cleanup,
};

int main(int argc, char **argv)
{
    return ims_plugin_main(argc, argv, &plugin);
}
