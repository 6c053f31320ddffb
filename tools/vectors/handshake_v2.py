#!/usr/bin/env python3
"""handshake_v2.py - recompute the handshake v2 test vectors of
docs/PROTOCOL.md ("Handshake v2: test vectors"), the RESET and the v1
WELCOME, without moongate's C code:
BLAKE2b from Python's hashlib, X25519 and ChaCha20-Poly1305 IETF from
PyNaCl (Debian: python3-nacl), AES-256-GCM from python3-cryptography
(the AES vector is left out, and said so, without it).

    handshake_v2.py                 print the vectors
    handshake_v2.py --check TEST    run TEST -v (build/test_wire) and compare
                                    every "v2 ..." vector it prints

Exit status: 0 equal, 1 a vector differs or is missing, 77 PyNaCl missing
(ctest reports the test skipped).
"""
import hashlib
import struct
import subprocess
import sys

try:
    from nacl.bindings import (crypto_aead_chacha20poly1305_ietf_encrypt,
                               crypto_scalarmult, crypto_scalarmult_base)
except ImportError:
    print("handshake_v2.py: skipped: PyNaCl is missing "
          "(apt-get install python3-nacl)", file=sys.stderr)
    sys.exit(77)


try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    AESGCM = None


def b2b(data, key=b"", size=32):
    return hashlib.blake2b(data, key=key, digest_size=size).digest()


def kx_seed_keypair(seed):
    # libsodium's crypto_kx_seed_keypair: sk = BLAKE2b-256(seed)
    sk = b2b(seed)
    return crypto_scalarmult_base(sk), sk


def aead(key, nonce, ad, msg):
    return crypto_aead_chacha20poly1305_ietf_encrypt(msg, ad, nonce, key)


def vectors():
    out = []
    secret = bytes([0x03]) * 32
    cpub, csec = kx_seed_keypair(bytes([0x01]) * 32)   # client e
    epub_s, esec_s = kx_seed_keypair(bytes([0x02]) * 32)  # server e_s
    hello = b"moongate"

    # static key: BLAKE2b-256(key: secret, "moongate/2 s-key")
    ssec = b2b(b"moongate/2 s-key", key=secret)
    spub = crypto_scalarmult_base(ssec)
    out.append(("v2 server static key S", spub))

    es = crypto_scalarmult(csec, spub)
    assert es == crypto_scalarmult(ssec, cpub)
    out.append(("v2 es", es))
    hkey = b2b(b"moongate/2 hello" + spub + cpub, key=es)
    out.append(("v2 hello key", hkey))
    caps = bytes([0x01])  # the client offers AES-256-GCM
    sealed = aead(hkey, bytes(12), bytes([2]) + cpub + caps, hello)

    hdr = bytes([0x01, 0x02]) + cpub + caps
    out.append(("v2 HELLO", hdr + struct.pack("<H", len(hello)) + sealed))

    addr = bytes([0x02, 0x30, 0x39, 0xc0, 0x00, 0x02, 0x01])
    stamp = struct.pack("<I", 123456)
    mac = b2b(addr + stamp + cpub, key=secret, size=16)
    out.append(("v2 INIT", bytes([0x03, 0x02]) + cpub + caps + stamp + mac +
                struct.pack("<H", len(hello)) + sealed))

    # the same HELLO with a worker hint: slot 1 in caps bits 1-7 as
    # slot + 1, beside AES-256-GCM: caps 0x05 (in the associated data too)
    caps_h = bytes([((1 + 1) << 1) | 0x01])
    sealed_h = aead(hkey, bytes(12), bytes([2]) + cpub + caps_h, hello)
    out.append(("v2 HELLO, worker hint 1", bytes([0x01, 0x02]) + cpub + caps_h +
                struct.pack("<H", len(hello)) + sealed_h))

    ee = crypto_scalarmult(csec, epub_s)
    assert ee == crypto_scalarmult(esec_s, cpub)
    split = b2b(b"moongate/2 split" + spub + cpub + epub_s + sealed,
                key=es + ee, size=64)
    stx, ctx = split[:32], split[32:]
    out.append(("v2 server tx = client rx", stx))
    out.append(("v2 client tx = server rx", ctx))

    sid = struct.pack("<I", 0x01020304)
    # the stateless reset token: BLAKE2b-128(key: secret, label | sid)
    token = b2b(b"moongate reset v1" + sid, key=secret, size=16)
    # flags 3: encrypted, AES-256-GCM (the server took the offer)
    params = struct.pack("<QIIHBIBB", 1000000000, 1000, 10000, 1200, 3,
                         30000, 8, 2) + token + struct.pack("<I", 65536)
    ad = bytes([0x04]) + sid + epub_s
    out.append(("v2 WELCOME", ad + aead(stx, bytes(12), ad, params)))
    params1 = params[:18] + bytes([1]) + params[19:]  # v1: ChaCha, flags 1
    out.append(("v2 RESET", bytes([0x06]) + sid + token))

    # v1 (unpinned): crypto_kx, the server's pair is e_s's seed (0x02):
    # BLAKE2b-512(X25519 | client_pub | server_pub), the first half the
    # server's send key; the same params
    kx = b2b(crypto_scalarmult(esec_s, cpub) + cpub + epub_s, size=64)
    out.append(("WELCOME", ad + aead(kx[:32], bytes(12), ad, params1)))

    # the KCP PUSH of "hello" (docs/PROTOCOL.md), client -> server, pn 1
    # conv 0x01020304, cmd 81, frg 0, wnd 128, ts 1000, sn 0, una 0, len 5
    push = struct.pack("<IBBHIIII", 0x01020304, 81, 0, 128, 1000, 0, 0,
                       5) + b"hello"
    head = bytes([0x10]) + sid + struct.pack("<I", 1)
    nonce = struct.pack("<Q", 1) + bytes(4)
    out.append(("v2 KCP (encrypted), pn 1", head + aead(ctx, nonce, head, push)))
    if AESGCM is None:
        print("handshake_v2.py: python3-cryptography is missing: the "
              "AES-256-GCM vector is not checked", file=sys.stderr)
    else:
        # the same packet under the cipher the WELCOME chose: AES-256-GCM,
        # the same key, nonce and associated data (ciphertext then tag)
        out.append(("v2 KCP (AES-256-GCM), pn 1",
                    head + AESGCM(ctx).encrypt(nonce, push, head)))
    return out


def hexlines(b):
    return " ".join("%02x" % x for x in b)


def parse_c(text):
    """The blocks test_wire -v prints: '    NAME (N bytes):' then hex."""
    got, name = {}, None
    for line in text.splitlines():
        s = line.strip()
        if line.startswith("    ") and not line.startswith("        ") \
                and s.endswith("bytes):"):
            name = s[:s.rindex(" (")]
            got[name] = b""
        elif name is not None and line.startswith("        "):
            got[name] += bytes.fromhex(s)
        else:
            name = None
    return got


def main():
    vs = vectors()
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        run = subprocess.run([sys.argv[2], "-v"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        got = parse_c(run.stdout)
        bad = 0
        for name, want in vs:
            if got.get(name) != want:
                bad += 1
                print("DIFFERS %s\n  python: %s\n  C:      %s" % (
                    name, hexlines(want),
                    hexlines(got[name]) if name in got else "(missing)"))
            else:
                print("ok %s (%d bytes)" % (name, len(want)))
        print("%d of %d vectors equal" % (len(vs) - bad, len(vs)))
        sys.exit(1 if bad else 0)
    if len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    for name, b in vs:
        print("%s (%d bytes):\n  %s" % (name, len(b), hexlines(b)))


if __name__ == "__main__":
    main()
