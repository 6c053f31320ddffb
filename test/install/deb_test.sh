#!/usr/bin/env bash
# shellcheck disable=SC2015 # "A && B || fail": fail exits
# deb_test.sh BUILD_DIR - `make package` proven (issue 18): cpack builds
# the three .debs from BUILD_DIR into a temporary directory (moongate,
# libmoongate-client1, libmoongate-client-dev), and what `dpkg -c` lists
# of each is exactly its list in docs/DEPLOY.md ("What the .debs
# contain", between the markers <!-- deb-contents PACKAGE --> and
# <!-- /deb-contents -->): every file and link, no more, no less. Then the
# control fields, the files generated for the prefix /usr, and the systemd
# unit (systemd-analyze verify, when there, must not find a bad key).
# Exit 0 pass, 1 fail, 77 skipped (no cpack or dpkg-deb).
set -u
build=${1:?usage: deb_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)

skip() { echo "deb_test: SKIP: $*"; exit 77; }
fail() {
	echo "deb_test: FAIL: $*" >&2
	[ -s "$tmp/cpack.log" ] && { echo "--- cpack" >&2; tail -n 20 "$tmp/cpack.log" >&2; }
	exit 1
}
for tool in cpack dpkg-deb; do
	command -v "$tool" >/dev/null || skip "$tool not found"
done
[ -f "$build/CPackConfig.cmake" ] || skip "no $build/CPackConfig.cmake (a fuzz build?)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/moongate-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

(cd "$build" && timeout 90 cpack -G DEB -B "$tmp/out") >"$tmp/cpack.log" 2>&1 ||
	fail "cpack -G DEB"
# what a package holds: files and links (not directories), as DEPLOY.md
# writes them ("/usr/bin/moongate", a link "A -> B", the multiarch
# directory as /usr/lib/<multiarch>/)
contents() {
	dpkg-deb -c "$1" | awk '$1 !~ /^d/ {
		path = $6; sub(/^\./, "", path)
		line = path; for (i = 7; i <= NF; i++) line = line " " $i
		print line }' |
		sed -E 's|^/usr/lib/[a-z0-9_]+-linux-[a-z0-9_]+/|/usr/lib/<multiarch>/|' | sort
}
for pkg in moongate libmoongate-client1 libmoongate-client-dev; do
	debs=("$tmp"/out/"$pkg"_*.deb)
	[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || fail "no single ${pkg}_*.deb in cpack's output"
	echo "deb_test: built $(basename "${debs[0]}") ($(stat -c %s "${debs[0]}") bytes)"
	[ "$(dpkg-deb -f "${debs[0]}" Package)" = "$pkg" ] || fail "Package of ${debs[0]}"
	contents "${debs[0]}" >"$tmp/$pkg.deb.list"
	sed -n "/<!-- deb-contents $pkg -->/,/<!-- \/deb-contents -->/p" "$src/docs/DEPLOY.md" |
		grep '^/' | sort >"$tmp/$pkg.doc.list"
	[ -s "$tmp/$pkg.doc.list" ] || fail "docs/DEPLOY.md has no deb-contents list for $pkg"
	if ! diff -u "$tmp/$pkg.doc.list" "$tmp/$pkg.deb.list" >"$tmp/diff"; then
		cat "$tmp/diff" >&2
		fail "dpkg -c of $pkg and docs/DEPLOY.md disagree (- DEPLOY.md, + the .deb)"
	fi
	echo "deb_test: dpkg -c lists the $(wc -l <"$tmp/$pkg.deb.list") files and links of docs/DEPLOY.md for $pkg"
done
deb=$(echo "$tmp"/out/moongate_*.deb)
lib=$(echo "$tmp"/out/libmoongate-client1_*.deb)
dev=$(echo "$tmp"/out/libmoongate-client-dev_*.deb)

# the control fields
field() { dpkg-deb -f "$deb" "$1"; }
depends=$(field Depends)
for p in libluajit-5.1-2 libev4 libsodium23 lua-cjson libhiredis0.14 libcurl4 libmicrohttpd12; do
	case ", $depends," in *", $p,"* | *", $p "*) ;; *) fail "Depends lacks $p: $depends" ;; esac
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/moongate/config.lua ||
	fail "/etc/moongate/config.lua is not a conffile"
echo "deb_test: Depends: $depends"
version=$(field Version)
dpkg-deb -f "$dev" Depends | grep -qF "libmoongate-client1 (= $version)" ||
	fail "libmoongate-client-dev does not depend on libmoongate-client1 (= $version)"
dpkg-deb -I "$lib" shlibs | grep -qx "libmoongate-client 1 libmoongate-client1 (>= [0-9.]*)" ||
	fail "libmoongate-client1's shlibs: $(dpkg-deb -I "$lib" shlibs)"
dpkg-deb -I "$lib" triggers | grep -qx "activate-noawait ldconfig" ||
	fail "libmoongate-client1 does not trigger ldconfig"

# the files made for the prefix /usr, and the unit
for d in "$deb" "$lib" "$dev"; do
	dpkg-deb -x "$d" "$tmp/root"
done
r=$tmp/root
grep -q 'service_path = { "/usr/share/moongate/service" }' "$r/etc/moongate/config.lua" &&
	grep -q 'secrets = "/var/lib/moongate/moongate.secret"' "$r/etc/moongate/config.lua" ||
	fail "etc/moongate/config.lua does not name the installed paths"
grep -qx 'libdir=/usr/lib/[a-z0-9_-]*' "$r"/usr/lib/*/pkgconfig/moongate-client.pc &&
	grep -qx 'includedir=/usr/include' "$r"/usr/lib/*/pkgconfig/moongate-client.pc ||
	fail "moongate-client.pc: wrong libdir or includedir"
unit=$r/usr/lib/systemd/system/moongate.service
# shellcheck disable=SC2016 # $MAINPID is the unit's, not ours
for want in 'Type=exec' 'ExecStart=/usr/bin/moongate /etc/moongate/config.lua' \
	'ExecReload=/bin/kill -HUP $MAINPID' 'LimitNOFILE=1048576' 'WantedBy=multi-user.target'; do
	grep -qxF "$want" "$unit" || fail "moongate.service lacks '$want'"
done
if command -v systemd-analyze >/dev/null; then
	timeout 20 systemd-analyze verify "$unit" >"$tmp/verify.log" 2>&1
	if grep -Ei 'unknown (key|section|lvalue)|failed to parse|invalid|ignoring' "$tmp/verify.log"; then
		fail "systemd-analyze verify finds a bad line in moongate.service"
	fi
fi
soname=$(objdump -p "$r"/usr/lib/*/libmoongate-client.so.1.0.0 2>/dev/null |
	awk '$1 == "SONAME" { print $2 }')
[ -z "$soname" ] || [ "$soname" = libmoongate-client.so.1 ] || fail "soname $soname"
"$r/usr/bin/moongate" --version | grep -q "^moongate " || fail "the packaged moongate --version"
# a game client built against the two library packages alone (unpacked
# under $r: pkg-config's sysroot points its paths there)
if command -v pkg-config >/dev/null && command -v cc >/dev/null; then
	flags=$(PKG_CONFIG_PATH=$(echo "$r"/usr/lib/*/pkgconfig) PKG_CONFIG_SYSROOT_DIR=$r \
		pkg-config --cflags --libs moongate-client) || fail "pkg-config moongate-client"
	# shellcheck disable=SC2086 # the flags are words
	cc -std=c11 -Wall -Werror -o "$tmp/hello_client" "$here/hello_client.c" $flags ||
		fail "hello_client.c does not build against libmoongate-client-dev"
	LD_LIBRARY_PATH=$(echo "$r"/usr/lib/*-linux-*) ldd "$tmp/hello_client" |
		grep -q "libmoongate-client.so.1 => $r/" || fail "hello_client does not load the packaged library"
	echo "deb_test: a client builds with libmoongate-client-dev's pkg-config and links libmoongate-client1"
fi
echo "deb_test: ok"
