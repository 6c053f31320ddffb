/* cmake/fence: this layer may not use libev. Only core/server (net, admin)
 * and the process entry core/main.c know the event loop; see
 * docs/ARCHITECTURE.md, "Layers". */
#error "libev (<ev.h>) is not allowed in this layer: only core/server and core/main.c own the loop (docs/ARCHITECTURE.md)"
