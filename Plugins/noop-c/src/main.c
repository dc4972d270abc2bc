/*
 * org.ims.bench.noop - a minimal C plugin for the host performance benchmarks.
 *
 * Phases (both custom/v1):
 *   noop      answers hello and an empty result immediately (measures spawn + handshake cost).
 *   logflood  emits config.count (default 200000) `log` messages as fast as it can, then an
 *             empty result (measures the host's line-processing throughput).
 *
 * Built by scripts/build-plugins into bin/ims-noop-c.
 */
#include "ims_plugin.h"

#include <stdio.h>
#include <string.h>

static int run(ims_ctx *ctx)
{
    if (strcmp(ims_phase(ctx), "logflood") != 0)
        return ims_result(NULL, NULL, NULL);

    int64_t count = 200000;
    json_object *v = NULL;
    if (json_object_object_get_ex(ims_config(ctx), "count", &v) &&
        (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        count = (int64_t)json_object_get_double(v);

    /* ims_emit rather than ims_log: the flood is sent whatever the request's log_level is. */
    char msg[64];
    for (int64_t i = 0; i < count; i++) {
        if ((i & 1023) == 0 && ims_cancelled())
            return ims_error_cancelled();
        snprintf(msg, sizeof msg, "flood %lld", (long long)i);
        json_object *d = json_object_new_object();
        json_object_object_add(d, "level", json_object_new_string("info"));
        json_object_object_add(d, "msg", json_object_new_string(msg));
        if (ims_emit("log", d) != 0)
            return ims_error("x.ims-bench.write_failed", "environment", "cannot write the protocol stream", NULL);
    }
    json_object *facts = json_object_new_object();
    json_object_object_add(facts, "count", json_object_new_int64(count));
    return ims_result(NULL, NULL, facts);
}

static const char *const payloads[] = {"custom/v1", NULL};
static const ims_phase_def phases[] = {
    {"noop", payloads},
    {"logflood", payloads},
    {NULL, NULL},
};
static const char *const features[] = {"cancel.message", "cleanup", NULL};

static const ims_plugin_def plugin = {
    .id = "org.ims.bench.noop",
    .version = "1.0.0",
    .vendor = "ims",
    .features = features,
    .phases = phases,
    .run = run,
    .cleanup = NULL, /* nothing to clean up: empty result */
};

int main(int argc, char **argv)
{
    return ims_plugin_main(argc, argv, &plugin);
}
