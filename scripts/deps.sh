#!/usr/bin/env bash
# scripts/deps.sh [base] [fuzz] [nft] - install what the build needs on Debian 12.
#
#   base  compilers, cmake, LuaJIT, libev, libsodium, lua-cjson, busted, Go
#         with xtaci/kcp-go for the interop test, python3-nacl (and
#         python3-cryptography, for the AES-256-GCM vector) for the
#         login token signer's spec and the handshake v2 vectors
#         (tools/vectors), hiredis and redis-server (moongate.redis and
#         its specs), libcurl (moongate.http) (the default)
#   fuzz  clang and its runtimes (libFuzzer, sanitizers), for `make fuzz`
#   page  Debian's chromium, headless, for the status page's test
#         (test/spec/status_page_spec.lua; `make test` installs it and
#         goes on without it when it cannot)
#   nft   nftables and ENet (libenet-dev: bench/enet_echo.c, built only when
#         it is found), for the packet-loss benchmark (bench/loss_bench.sh)
#
# Only packages that are not installed are installed, and `apt-get update`
# runs only then, so a second run changes nothing. Not root and something
# missing: print the apt-get commands to run and exit 1.
# MOONGATE_SKIP_DEPS=1 skips every check (another distribution, or packages
# installed by other means).
set -euo pipefail

base=(build-essential cmake pkg-config luajit libluajit-5.1-dev libev-dev
      lua-cjson lua-busted libsodium-dev golang-go golang-github-xtaci-kcp-dev
      python3-nacl python3-cryptography libhiredis-dev redis-server
      libcurl4-openssl-dev libmicrohttpd-dev)
fuzz=(make cmake clang libclang-rt-14-dev)
page=(chromium)
nft=(nftables libenet-dev)

if [ "${MOONGATE_SKIP_DEPS:-0}" = 1 ]; then
	exit 0
fi

sets=("$@")
[ ${#sets[@]} -eq 0 ] && sets=(base)
want=()
for s in "${sets[@]}"; do
	case "$s" in
	base) want+=("${base[@]}") ;;
	fuzz) want+=("${fuzz[@]}") ;;
	nft) want+=("${nft[@]}") ;;
	page) want+=("${page[@]}") ;;
	*) echo "deps.sh: unknown package set '$s' (base, fuzz, nft, page)" >&2; exit 2 ;;
	esac
done

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: no dpkg-query: this is not Debian. Install the equivalents of:" >&2
	echo "  ${want[*]}" >&2
	echo "then run again with MOONGATE_SKIP_DEPS=1." >&2
	exit 1
fi

missing=()
for p in "${want[@]}"; do
	# skip duplicates between sets
	case " ${missing[*]-} " in *" $p "*) continue ;; esac
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

install_cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: not root; run these as root (e.g. with sudo), then try again:" >&2
	echo "  apt-get update" >&2
	echo "  $install_cmd" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
