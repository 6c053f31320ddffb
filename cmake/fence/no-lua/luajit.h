/* cmake/fence: this layer may not use the Lua API. Only core/lua knows
 * Lua; see docs/ARCHITECTURE.md, "Layers". */
#error "the Lua API (<luajit.h>) is not allowed in this layer: only core/lua knows Lua (docs/ARCHITECTURE.md)"
