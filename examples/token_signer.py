#!/usr/bin/env python3
"""token_signer.py - sign moongate login tokens, as a game's web backend would.

The web backend, once it has checked a player's password (or OAuth, or a
store receipt), gives the game client a short-lived login token; the client
sends it in its hello ({"v":1, "token":"..."}) and moongate's login service
checks it with the backend's Ed25519 public key, calling nobody
(docs/SERVICES.md, "Login tokens"). Needs PyNaCl (Debian: python3-nacl).

    # once: a key pair. The secret seed stays with the backend (mode 0600);
    # the public key goes into config.lua.
    ./token_signer.py keygen --out backend.key
    ./token_signer.py pubkey --key backend.key       # base64url public key

    # config.lua
    settings = { login = { token_key = "<public key>", audience = "eu-1" } }

    # per login: a token for uid 42, valid 60 seconds
    ./token_signer.py sign --key backend.key --uid 42 --name ann --aud eu-1

The token is  base64url(payload) "." base64url(signature)  (URL-safe
alphabet, no padding), where payload is the JSON object
{"uid":..., "name":..., "exp":<unix seconds>, "aud":...} as sent, and the
signature is Ed25519 over b"moongate-token-v1\\0" + payload.
"""
import argparse
import base64
import json
import os
import sys
import time

try:
    import nacl.signing
except ImportError:
    sys.exit("token_signer.py: PyNaCl is missing (Debian: apt-get install python3-nacl)")

CONTEXT = b"moongate-token-v1\0"


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def load_key(path):
    with open(path, "r", encoding="ascii") as f:
        seed = bytes.fromhex(f.read().strip())
    if len(seed) != 32:
        sys.exit(f"token_signer.py: {path}: a 32-byte seed in hex expected")
    return nacl.signing.SigningKey(seed)


def make_token(key, uid, name, exp, aud):
    """The token for these claims (name may be None), signed by key."""
    claims = {"uid": uid, "exp": int(exp), "aud": aud}
    if name is not None:
        claims["name"] = name
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
    sig = key.sign(CONTEXT + payload).signature
    return b64url(payload) + "." + b64url(sig)


def main():
    ap = argparse.ArgumentParser(description="Sign moongate login tokens (Ed25519).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="make a key pair: the secret seed into a file")
    k.add_argument("--out", required=True, help="file for the secret seed (hex, mode 0600)")
    p = sub.add_parser("pubkey", help="print the public key (base64url) for token_key")
    p.add_argument("--key", required=True)
    p.add_argument("--hex", action="store_true", help="print it in hex instead")
    s = sub.add_parser("sign", help="print a token")
    s.add_argument("--key", required=True)
    s.add_argument("--uid", required=True, help="the game's user id")
    s.add_argument("--name", help="the display name (default: the uid)")
    s.add_argument("--aud", required=True, help="the server's login.audience")
    s.add_argument("--ttl", type=int, default=60, help="seconds from now (default 60)")
    s.add_argument("--exp", type=int, help="expiry, unix seconds (instead of --ttl)")
    a = ap.parse_args()

    if a.cmd == "keygen":
        key = nacl.signing.SigningKey.generate()
        fd = os.open(a.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.encode().hex() + "\n")
        print(f"secret seed written to {a.out}")
        print(f"token_key = \"{b64url(key.verify_key.encode())}\"")
    elif a.cmd == "pubkey":
        vk = load_key(a.key).verify_key.encode()
        print(vk.hex() if a.hex else b64url(vk))
    else:
        exp = a.exp if a.exp is not None else int(time.time()) + a.ttl
        print(make_token(load_key(a.key), a.uid, a.name, exp, a.aud))


if __name__ == "__main__":
    main()
