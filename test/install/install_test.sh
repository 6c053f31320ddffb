#!/usr/bin/env bash
# shellcheck disable=SC2015 # "A && B || fail": fail exits
# install_test.sh BUILD_DIR - `make install` proven from the outside
# (issue 18): install the build into a temporary prefix, build a tiny C
# client (hello_client.c) against the INSTALLED header and library with
# `pkg-config --cflags --libs moongate-client`, start the INSTALLED server
# from that prefix with the installed config (port 0 on 127.0.0.1), and
# have the client's message come back from the installed echo service.
# Every wait has a deadline; the server's own lines are the handshake
# (no sleeps). Exit 0 pass, 1 fail, 77 skipped (a tool is missing).
set -u
build=${1:?usage: install_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "install_test: SKIP: $*"; exit 77; }
fail() {
	echo "install_test: FAIL: $*" >&2
	for f in "$tmp"/server.err "$tmp"/install.log; do
		[ -s "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }
	done
	exit 1
}
for tool in cmake pkg-config cc; do
	command -v "$tool" >/dev/null || skip "$tool not found"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/moongate-install.XXXXXX")
server=
cleanup() {
	if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
		kill -KILL "$server" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
prefix=$tmp/prefix

# 1. the install: a prefix of our own, nothing of it existing before
timeout 60 cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
	fail "cmake --install into $prefix"
for f in bin/moongate include/moongate/client.h \
	lib/libmoongate-client.so lib/libmoongate-client.so.1 \
	lib/pkgconfig/moongate-client.pc lib/lua/5.1/moongate/client.so \
	share/lua/5.1/moongate/init.lua share/moongate/service/echo.lua \
	share/moongate/config.lua.example etc/moongate/config.lua \
	lib/systemd/system/moongate.service share/doc/moongate/DEPLOY.md; do
	[ -e "$prefix/$f" ] || fail "not installed: $f"
done
[ -d "$prefix/var/lib/moongate" ] || fail "no state directory var/lib/moongate"
# the soname is the ABI's: libmoongate-client.so.1
soname=$(objdump -p "$prefix/lib/libmoongate-client.so" 2>/dev/null |
	awk '$1 == "SONAME" { print $2 }')
[ -z "$soname" ] || [ "$soname" = libmoongate-client.so.1 ] ||
	fail "soname $soname, expected libmoongate-client.so.1"
# nothing installed points back into the build or the source tree
src=$(cd "$here/../.." && pwd)
if grep -rl -e "$build" -e "$src/" "$prefix/etc" "$prefix/lib/pkgconfig" \
	"$prefix/lib/systemd" "$prefix/share/moongate" 2>/dev/null; then
	fail "an installed text file names the build or source tree"
fi
echo "install_test: installed into $prefix (soname ${soname:-?})"

# 2. a client program built as a game would: pkg-config, the installed
# header, the installed library (run from the prefix: rpath to its libdir)
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --exists moongate-client || fail "pkg-config does not find moongate-client"
flags=$(pkg-config --cflags --libs moongate-client)
libdir=$(pkg-config --variable=libdir moongate-client)
[ "$libdir" = "$prefix/lib" ] || fail "pkg-config libdir $libdir, expected $prefix/lib"
echo "install_test: pkg-config --cflags --libs moongate-client: $flags"
# shellcheck disable=SC2086 # the flags are words
cc -std=c11 -Wall -Werror -o "$tmp/hello_client" "$here/hello_client.c" \
	$flags -Wl,-rpath,"$libdir" >"$tmp/cc.log" 2>&1 ||
	{ cat "$tmp/cc.log" >&2; fail "the client does not build against the installed library"; }
ldd "$tmp/hello_client" | grep -q "libmoongate-client.so.1 => $libdir/" ||
	fail "hello_client does not load the installed libmoongate-client.so.1"

# 3. the installed server, with the installed config and one more service
# that reports where `require` finds lualib: the installed copy, not the
# source tree's (MOONGATE_LUALIB unset; started from another directory)
mkdir -p "$tmp/svc" "$tmp/run"
cat >"$tmp/svc/where.lua" <<'LUA'
io.stderr:write("install_test: lualib ",
	tostring(package.searchpath("moongate.loader", package.path)), "\n")
return {}
LUA
cat >"$tmp/run/config.lua" <<LUA
-- the installed configuration, plus where.lua
local c = dofile("$prefix/etc/moongate/config.lua")
table.insert(c.services, "where")
table.insert(c.service_path, "$tmp/svc")
return c
LUA
"$prefix/bin/moongate" --check "$tmp/run/config.lua" >"$tmp/check.log" 2>&1 ||
	{ cat "$tmp/check.log" >&2; fail "moongate --check of the installed config"; }

cd "$tmp/run" || fail "cd"
exec 3< <(exec env -u MOONGATE_LUALIB -u LUA_PATH -u LUA_CPATH \
	"$prefix/bin/moongate" --listen udp://127.0.0.1:0 "$tmp/run/config.lua" \
	2>"$tmp/server.err")
server=$!
port='' key=''
deadline=$((SECONDS + 20))
while :; do
	left=$((deadline - SECONDS))
	[ "$left" -gt 0 ] || fail "the server was not ready within 20 s"
	IFS= read -r -t "$left" -u 3 line || fail "the server's stdout ended or timed out before ready"
	case $line in
	"moongate: listening udp 127.0.0.1 "*) port=${line##* } ;;
	"moongate: key "*) key=${line##* } ;;
	"moongate: ready") break ;;
	esac
done
[ -n "$port" ] && [ -n "$key" ] || fail "no port ($port) or key ($key) on stdout"
echo "install_test: installed server on udp 127.0.0.1 $port, key ${key:0:16}..."

# 4. the tiny client against it: connect pinned to the key, echo
timeout 20 "$tmp/hello_client" "udp://127.0.0.1:$port?key=$key" "hello, installed moongate" \
	>"$tmp/client.out" 2>&1 || { cat "$tmp/client.out" >&2; fail "hello_client"; }
cat "$tmp/client.out"
grep -q "^hello_client: echo hello, installed moongate$" "$tmp/client.out" ||
	fail "no echo"

# 5. stop: SIGTERM, and the end of its stdout (bounded) means it exited
kill -TERM "$server"
deadline=$((SECONDS + 15))
while :; do
	left=$((deadline - SECONDS))
	[ "$left" -gt 0 ] || fail "the server did not exit within 15 s of SIGTERM"
	IFS= read -r -t "$left" -u 3 _
	rc=$?
	[ "$rc" -eq 0 ] && continue
	[ "$rc" -gt 128 ] && fail "the server did not exit within 15 s of SIGTERM"
	break # end of file: the server closed its stdout, exiting
done
wait "$server"
status=$?
server=
[ "$status" -eq 0 ] || fail "the server exited with status $status"

where=$(grep "^install_test: lualib " "$tmp/server.err" | head -n 1)
echo "$where"
case $where in
"install_test: lualib $prefix/share/lua/5.1/moongate/loader.lua") ;;
*) fail "the installed server did not load the installed lualib" ;;
esac
[ -s "$prefix/var/lib/moongate/moongate.secret" ] ||
	fail "no secrets file in the installed state directory"
# what an operator gives the clients: `moongate key` of the installed
# config prints the key the server announced
k2=$(timeout 10 "$prefix/bin/moongate" key "$prefix/etc/moongate/config.lua" 2>/dev/null)
[ "$k2" = "$key" ] || fail "moongate key prints '$k2', the server said '$key'"
echo "install_test: moongate key of the installed config: the server's key"
echo "install_test: ok"
