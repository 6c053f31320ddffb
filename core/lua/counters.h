/*
 * counters.h - every counter of the server process, grouped: what the
 * gate, net, the Lua runtime (and its Redis and HTTP clients), the log
 * and the admin console count. The console's `stats`,
 * moongate.server_stats() and the metrics endpoint (observe.h) read them
 * through core/main.c's script_counters_fn, which calls counters_collect.
 */
#ifndef MOONGATE_COUNTERS_H
#define MOONGATE_COUNTERS_H

#include <stddef.h>

#include "admin.h"
#include "config.h"
#include "gate.h"
#include "net.h"
#include "script.h"

/* Up to max counters into c, in their groups' order ("gate", "net",
 * "lua", "redis", "http", "log", "admin"); how many. script NULL (the
 * built-in echo): no "lua", "redis" or "http"; admin NULL (no console):
 * no "admin". cfg gives the limits reported beside the counts. */
size_t counters_collect(struct script_counter *c, size_t max, gate_t *gate,
                        net_t *net, script_t *script, admin_t *admin,
                        const struct config *cfg);

#endif
