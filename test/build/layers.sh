#!/bin/sh
# layers.sh ROOT - the layers of core/ hold (docs/ARCHITECTURE.md).
# Every #include of a .c or .h under core/ must name a system header the
# layer may use, or a header of its own layer or of a layer below it:
#
#   proto   <- nothing           (no libev, no Lua: I/O-free)
#   client  <- proto             (no libev, no Lua)
#   server  <- proto             (libev; no Lua)
#   lua     <- server, proto     (Lua; no libev)     lclient.c: <- client
#   main.c  <- every layer
#   <moongate/client.h> (include/, the installed client API): client and
#   lclient.c only; it includes nothing but standard C headers
#
# The build enforces the system headers too (cmake/fence); this check
# also catches a quoted include that crosses a layer. Prints each
# violation with file:line and exits 1.
set -u
root=${1:-.}
cd "$root/core" || exit 2
fail=0
# allowed LAYER: the directories whose headers LAYER may include
allowed() {
	case $1 in
	proto) echo "proto" ;;
	client) echo "client proto" ;;
	server) echo "server proto" ;;
	lua) echo "lua server proto" ;;
	esac
}
for layer in proto client server lua; do
	for f in "$layer"/*.c "$layer"/*.h; do
		[ -f "$f" ] || continue
		dirs=$(allowed "$layer")
		[ "$f" = lua/lclient.c ] && dirs="lua client proto"
		# system headers that say which layer a file belongs to
		bad_sys='ev\.h|lua\.h|lauxlib\.h|lualib\.h|luajit\.h|lua\.hpp'
		case $layer in
		server) bad_sys='lua\.h|lauxlib\.h|lualib\.h|luajit\.h|lua\.hpp' ;;
		lua) bad_sys='ev\.h' ;;
		esac
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*<' "$f" |
		grep -E "<($bad_sys)>" | while IFS= read -r line; do
			echo "layers: core/$f:${line%%:*}: ${line#*:} is not allowed in core/$layer"
		done | grep . && fail=1
		# the installed client API: only for the client and its users
		case " $dirs " in
		*" client "*) ;;
		*)
			grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*<moongate/' "$f" |
			while IFS= read -r line; do
				echo "layers: core/$f:${line%%:*}: ${line#*:} (the client API) is not allowed in core/$layer"
			done | grep . && fail=1
			;;
		esac
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
		while IFS= read -r line; do
			n=${line%%:*}
			h=$(printf '%s\n' "${line#*:}" | sed 's/.*"\(.*\)".*/\1/')
			ok=0
			for d in $dirs; do
				[ -f "$d/$h" ] && ok=1
			done
			if [ $ok = 0 ]; then
				where=$(ls -d */"$h" 2>/dev/null | head -1)
				echo "layers: core/$f:$n: includes \"$h\"${where:+ (core/$where)}, not in core/{$(echo $dirs | tr ' ' ,)}"
			fi
		done | grep . && fail=1
	done
done
# the installed header stands alone: system headers only, no internal one
for f in ../include/moongate/*.h; do
	[ -f "$f" ] || continue
	grep -n '^[[:space:]]*#[[:space:]]*include' "$f" |
	grep -v -E '<(stddef|stdint|stdbool)\.h>' | while IFS= read -r line; do
		echo "layers: ${f#../}:${line%%:*}: ${line#*:}: the public header includes only <stddef.h>, <stdint.h>, <stdbool.h>"
	done | grep . && fail=1
done
# nothing but main.c at the top of core/
for f in *.c *.h; do
	[ -f "$f" ] || continue
	[ "$f" = main.c ] || { echo "layers: core/$f: a file belongs in a layer's folder"; fail=1; }
done
[ $fail = 0 ] && echo "layers: ok ($(ls */*.c */*.h | wc -l) files in $(ls -d */ | wc -l) layers)"
exit $fail
