#!/usr/bin/env bash
# shellcheck disable=SC2015 # "A && B || fail": fail exits
# deb_test.sh BUILD_DIR - `make package` proven (issue 18): cpack builds
# the .deb from BUILD_DIR into a temporary directory, and what `dpkg -c`
# lists is exactly the list in docs/DEPLOY.md ("What the .deb contains",
# between the deb-contents markers): every file and link, no more, no
# less. Then the control fields, the files generated for the prefix /usr,
# and the systemd unit (systemd-analyze verify, when there, must not
# find a bad key). Exit 0 pass, 1 fail, 77 skipped (no cpack or dpkg-deb).
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
debs=("$tmp"/out/moongate_*.deb)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || fail "no single moongate_*.deb in cpack's output"
deb=${debs[0]}
echo "deb_test: built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# what the package holds: files and links (not directories), as
# DEPLOY.md writes them ("/usr/bin/moongate", a link "A -> B", the
# multiarch directory as /usr/lib/<multiarch>/)
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {
	path = $6; sub(/^\./, "", path)
	line = path; for (i = 7; i <= NF; i++) line = line " " $i
	print line }' |
	sed -E 's|^/usr/lib/[a-z0-9_]+-linux-[a-z0-9_]+/|/usr/lib/<multiarch>/|' |
	sort >"$tmp/deb.list"
sed -n '/<!-- deb-contents -->/,/<!-- \/deb-contents -->/p' "$src/docs/DEPLOY.md" |
	grep '^/' | sort >"$tmp/doc.list"
[ -s "$tmp/doc.list" ] || fail "docs/DEPLOY.md has no deb-contents list"
if ! diff -u "$tmp/doc.list" "$tmp/deb.list" >"$tmp/diff"; then
	cat "$tmp/diff" >&2
	fail "dpkg -c and docs/DEPLOY.md disagree (- DEPLOY.md, + the .deb)"
fi
echo "deb_test: dpkg -c lists the $(wc -l <"$tmp/deb.list") files and links of docs/DEPLOY.md"

# the control fields
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = moongate ] || fail "Package: $(field Package)"
depends=$(field Depends)
for p in libluajit-5.1-2 libev4 libsodium23 lua-cjson libhiredis0.14 libcurl4 libmicrohttpd12; do
	case ", $depends," in *", $p,"* | *", $p "*) ;; *) fail "Depends lacks $p: $depends" ;; esac
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/moongate/config.lua ||
	fail "/etc/moongate/config.lua is not a conffile"
echo "deb_test: Depends: $depends"

# the files made for the prefix /usr, and the unit
dpkg-deb -x "$deb" "$tmp/root"
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
echo "deb_test: ok"
