/*
 * wire.h - moongate's packet codec: layouts, keys, authentication and
 * encryption of every packet a session sends (docs/PROTOCOL.md, "Session
 * packets", has each layout with test vectors).
 *
 * I/O-free and stateless except for the replay window: functions encode
 * into a caller's buffer and decode from one. Cryptography is libsodium's:
 * X25519 key exchange with BLAKE2b key derivation (crypto_kx), ChaCha20-
 * Poly1305 IETF AEAD, keyed BLAKE2b for the stateless handshake cookie.
 *
 * Every integer on the wire is little-endian, as in KCP.
 *
 * Session packet (every type >= WIRE_KCP):
 *
 *   type u8 | sid u32 | pn u32 | body ... | tag[16]
 *
 * The 9-byte header is the AEAD's associated data; the nonce is pn (64-bit
 * little-endian in a 12-byte IETF nonce, the rest zero); each direction has
 * its own key, so a pn is never reused under one key. With encryption on,
 * the body is ciphertext; with it off (a listener's choice), the body is
 * plaintext and the tag authenticates header and body alike.
 *
 * Errors: functions returning int give a length or 0 on success and a
 * negative WIRE_E* code on failure; wire_strerror() names it. Decoders
 * check the type first (WIRE_ETYPE), then the version (WIRE_EVERSION),
 * then lengths; a packet longer than its layout is WIRE_EINVAL (trailing
 * bytes are never ignored). A decoder writes its outputs only on success
 * (one exception: wire_hello_decode on WIRE_EVERSION).
 */
#ifndef MOONGATE_WIRE_H
#define MOONGATE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Handshake versions (docs/PROTOCOL.md, "Handshake"): v2 pins the server's
 * static key and seals the hello (after Noise NK); v1, anonymous X25519
 * with the hello in clear, is kept only for clients without the key on
 * servers that allow them (gate_config.allow_unpinned). CHALLENGE and
 * REFUSE have one layout for both and carry byte 1. */
#define WIRE_V1 1
#define WIRE_V2 2
#define WIRE_VERSION WIRE_V2 /* the newest */

enum wire_type {
	/* handshake, before keys */
	WIRE_HELLO = 0x01,     /* client: version, public key, hello bytes */
	WIRE_CHALLENGE = 0x02, /* server: stamp and cookie MAC, no state kept */
	WIRE_INIT = 0x03,      /* client: HELLO plus the echoed cookie */
	WIRE_WELCOME = 0x04,   /* server: session id, public key, sealed params */
	WIRE_REFUSE = 0x05,    /* server: refusal code and reason */
	/* not a handshake or session packet: no key, a token instead */
	WIRE_RESET = 0x06,     /* server: sid u32 | token[16]: that session is gone */
	/* session packets: header, body, tag */
	WIRE_KCP = 0x10,       /* body: one KCP datagram (segments) */
	WIRE_DGRAM = 0x11,     /* body: seq u32 | payload (unreliable) */
	WIRE_PING = 0x12,      /* body: id u32 | sender time us u64 */
	WIRE_PONG = 0x13,      /* body: id u32 | echoed time u64 | own time u64 */
	WIRE_CLOSE = 0x14,     /* body: code u16 | len u8 | reason */
	WIRE_CLOSE_ACK = 0x15, /* body: empty */
	WIRE_PATH_CHALLENGE = 0x16, /* body: token[8]; answer on the path it came */
	WIRE_PATH_RESPONSE = 0x17,  /* body: the challenge's token[8] */
	/* not a session packet: a frame with a MAC of its own (wire_fec_seal) */
	WIRE_FEC = 0x18,       /* sid u32 | an FEC shard (core/proto/fec.h) | tag */
};
#define WIRE_FEC_HDR 5      /* type, sid */
#define WIRE_FEC_TAG 16     /* keyed BLAKE2b of the frame before it */
#define WIRE_TOKEN 8        /* PATH_CHALLENGE / PATH_RESPONSE token */

#define WIRE_HDR 9          /* type, sid, pn */
#define WIRE_TAG 16
#define WIRE_OVERHEAD (WIRE_HDR + WIRE_TAG)
#define WIRE_PUB 32         /* X25519 public key */
#define WIRE_SEC 32
#define WIRE_KEY 32         /* ChaCha20-Poly1305 key */
#define WIRE_MAC 16         /* cookie MAC */
#define WIRE_SECRET 32      /* server cookie secret */
#define WIRE_HELLO_MAX 512  /* application bytes in a client hello */
#define WIRE_REASON_MAX 255 /* bytes of a close or refusal reason */

/* Fixed sizes of the handshake packets (plus hello_len or reason_len; a
 * v2 HELLO or INIT also has the sealed hello's WIRE_TAG). */
#define WIRE_HELLO_SIZE (1 + 1 + WIRE_PUB + 2)                 /* 36 */
#define WIRE_HELLO_V2_SIZE (WIRE_HELLO_SIZE + 1)               /* 37: caps */
#define WIRE_CHALLENGE_SIZE (1 + 1 + 4 + WIRE_MAC)             /* 22 */
#define WIRE_INIT_SIZE (1 + 1 + WIRE_PUB + 4 + WIRE_MAC + 2)   /* 56 */
#define WIRE_INIT_V2_SIZE (WIRE_INIT_SIZE + 1)                 /* 57: caps */
#define WIRE_RESET_TOKEN 16 /* a session's stateless reset token */
#define WIRE_WELCOME_BODY (8 + 4 + 4 + 2 + 1 + 4 + 2 + WIRE_RESET_TOKEN + 4) /* 45 */
#define WIRE_WELCOME_SIZE (1 + 4 + WIRE_PUB + WIRE_WELCOME_BODY + WIRE_TAG)
#define WIRE_REFUSE_SIZE (1 + 1 + 16 + 2 + 1)                  /* 21 */
#define WIRE_RESET_SIZE (1 + 4 + WIRE_RESET_TOKEN)             /* 21 */

enum wire_error {
	WIRE_ETRUNC = -1,   /* shorter than its layout says */
	WIRE_ETYPE = -2,    /* unknown type, or not the type expected */
	WIRE_EVERSION = -3, /* a version this build does not speak */
	WIRE_EAUTH = -4,    /* tag or cookie MAC does not verify */
	WIRE_EREPLAY = -5,  /* pn already seen, or older than the window */
	WIRE_ESPACE = -6,   /* output buffer too small */
	WIRE_EINVAL = -7,   /* a value out of range, or trailing bytes */
	WIRE_ECRYPTO = -8,  /* libsodium failed (init, or a weak public key) */
};
const char *wire_strerror(int err);

/* sodium_init(); 0 or WIRE_ECRYPTO. Safe to call more than once. */
int wire_init(void);
/* Zero secret material in a way the compiler cannot drop (sodium_memzero). */
void wire_scrub(void *p, size_t n);
/* n unpredictable bytes (randombytes_buf). */
void wire_random(void *p, size_t n);

/* ---- little-endian helpers ---------------------------------------------- */
static inline void
wire_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
static inline void
wire_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static inline void
wire_put64(uint8_t *p, uint64_t v)
{
	wire_put32(p, (uint32_t)v);
	wire_put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t
wire_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t
wire_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t
wire_get64(const uint8_t *p)
{
	return (uint64_t)wire_get32(p) | (uint64_t)wire_get32(p + 4) << 32;
}

/* ---- keys ---------------------------------------------------------------- */
struct wire_keys {
	uint8_t tx[WIRE_KEY]; /* seals what this side sends */
	uint8_t rx[WIRE_KEY]; /* opens what this side receives */
};

/* A fresh X25519 key pair (crypto_kx_keypair). */
void wire_keypair(uint8_t pub[WIRE_PUB], uint8_t sec[WIRE_SEC]);
/* Session keys from both public keys and our secret (crypto_kx_*_session_
 * keys): the client's tx is the server's rx and the other way round.
 * 0, or WIRE_ECRYPTO for a degenerate peer key. */
int wire_client_keys(struct wire_keys *k, const uint8_t cpub[WIRE_PUB],
                     const uint8_t csec[WIRE_SEC], const uint8_t spub[WIRE_PUB]);
int wire_server_keys(struct wire_keys *k, const uint8_t spub[WIRE_PUB],
                     const uint8_t ssec[WIRE_SEC], const uint8_t cpub[WIRE_PUB]);

/* ---- session packets ----------------------------------------------------- */
struct wire_hdr {
	uint8_t type;
	uint32_t sid;
	uint32_t pn;
};

/* Read the header of a session packet without authenticating it: 0, or
 * WIRE_ETRUNC (shorter than header + tag) / WIRE_ETYPE (not a session type). */
int wire_peek(const uint8_t *pkt, size_t len, struct wire_hdr *h);

/* Write header, body (encrypted when encrypt) and tag into out. body may
 * be out + WIRE_HDR (sealing in place) or overlap out anywhere else. pn 0
 * (the WELCOME's nonce) or a type outside WIRE_KCP..WIRE_PATH_RESPONSE is
 * WIRE_EINVAL. Returns the packet length (blen + WIRE_OVERHEAD) or
 * WIRE_ESPACE / WIRE_EINVAL. */
int wire_seal(uint8_t *out, size_t cap, uint8_t type, uint32_t sid,
              uint32_t pn, const uint8_t *body, size_t blen,
              const uint8_t key[WIRE_KEY], int encrypt);
/* The encrypt argument of wire_seal and wire_open is a suite: bit 0, the
 * body is encrypted (else authenticated only); bit 1, the AEAD is
 * AES-256-GCM (else ChaCha20-Poly1305-IETF). Both take the same 32-byte
 * key, 12-byte nonce and 16-byte tag, so a packet's layout is the same. */
#define WIRE_SUITE_ENCRYPT 1
#define WIRE_SUITE_AESGCM 2
/* 1 when this CPU runs libsodium's AES-256-GCM (x86-64 with AES-NI and
 * PCLMUL); without it a WIRE_SUITE_AESGCM seal or open is WIRE_ECRYPTO. */
int wire_aesgcm_available(void);

/* Verify and decrypt, in place and in one pass (libsodium checks the tag
 * before it writes plaintext), a session packet. On success fills h,
 * points *body at pkt + WIRE_HDR and returns the body length (h and body
 * may be NULL). On failure (WIRE_ETRUNC, WIRE_ETYPE, WIRE_EAUTH; pn 0 is
 * WIRE_EAUTH) the header is untouched, but an encrypted body may have been
 * cleared: drop the packet. encrypt must match the sender's, or the tag
 * fails. */
int wire_open(uint8_t *pkt, size_t len, const uint8_t key[WIRE_KEY],
              int encrypt, struct wire_hdr *h, uint8_t **body);
/* wire_open for a packet whose header h wire_peek already read (0 from it
 * on these same pkt and len): the header is not parsed again. */
int wire_open_peeked(uint8_t *pkt, size_t len, const uint8_t key[WIRE_KEY],
                     int encrypt, const struct wire_hdr *h, uint8_t **body);

/* Replay window over pn (like IPsec's): the newest pn seen and a bitmap of
 * the WIRE_REPLAY_WINDOW before it. A zeroed struct is the initial state.
 * pn 0 is never valid. pn does not wrap: once 0xffffffff was accepted no
 * pn is new, so a sender must end the session before its pn runs out. */
#define WIRE_REPLAY_WINDOW 128
struct wire_replay {
	uint32_t top;      /* highest pn accepted, 0 before any */
	uint64_t bits[2];  /* bit i: top - i was accepted */
};
/* ---- FEC frames ---------------------------------------------------------
 *
 *   0x18 | sid u32 | shard | tag[16]
 *
 * tag = BLAKE2b-128, keyed with the direction's frame key, of every byte
 * before it. The frame key is BLAKE2b-256 keyed with the direction's packet
 * key (wire_keys) of "moongate fec frame": a key of its own, derived, so a
 * tag is never a packet's. A shard that does not verify is dropped before
 * the FEC decoder sees it: nobody without the key can make the decoder
 * hold, count or drop anything. */
void wire_fec_key(uint8_t out[WIRE_KEY], const uint8_t key[WIRE_KEY]);
/* Frame shard (len bytes) for sid into out: the frame's length
 * (WIRE_FEC_HDR + len + WIRE_FEC_TAG), or WIRE_ESPACE. */
int wire_fec_seal(uint8_t *out, size_t cap, uint32_t sid, const uint8_t *shard,
                  size_t len, const uint8_t fkey[WIRE_KEY]);
/* The length of the frame's shard (at frame + WIRE_FEC_HDR), or
 * WIRE_ETRUNC / WIRE_ETYPE / WIRE_EAUTH (the tag does not verify). */
int wire_fec_open(const uint8_t *frame, size_t len, const uint8_t fkey[WIRE_KEY]);

/* 0 when pn is new and inside the window, WIRE_EREPLAY otherwise. Check
 * before opening (cheap), accept only after the tag verified. Accepting a
 * pn that check refuses changes nothing. */
int wire_replay_check(const struct wire_replay *r, uint32_t pn);
void wire_replay_accept(struct wire_replay *r, uint32_t pn);

/* ---- handshake packets --------------------------------------------------- */

/* HELLO: 01 | version u8 | client_pub[32] | hello_len u16 | hello
 * INIT:  03 | version u8 | client_pub[32] | stamp u32 | mac[16] |
 *        hello_len u16 | hello
 * In v2, hello is sealed: hello_len bytes of ciphertext, then tag[16]
 * (wire_hello_seal); hello_len counts the plaintext. */
struct wire_hello {
	uint8_t type;               /* WIRE_HELLO or WIRE_INIT */
	uint8_t version;
	uint8_t pub[WIRE_PUB];
	uint8_t caps;               /* v2 only: what the client can do
	                               (WIRE_CAP_*); 0 in v1 */
	uint32_t stamp;             /* INIT only: the challenge's stamp */
	uint8_t mac[WIRE_MAC];      /* INIT only: the challenge's MAC */
	const uint8_t *hello;       /* points into the packet when decoded; v2:
	                               ciphertext then tag (hello_len + 16) */
	uint16_t hello_len;         /* <= WIRE_HELLO_MAX */
};
/* encode: version as given (0 writes WIRE_V1, the layout of earlier
 * builds; any version but WIRE_V2 has v1's layout); hello may overlap out.
 * decode: HELLO or INIT (h->type says which), v1 or v2; hello_len above
 * WIRE_HELLO_MAX is WIRE_EINVAL. Every version begins type | version |
 * client_pub, so on WIRE_EVERSION type, version and pub are filled (the
 * rest zero) for a REFUSE's echo. */
int wire_hello_encode(uint8_t *out, size_t cap, const struct wire_hello *h);
/* caps of a v2 HELLO or INIT: the client can seal and open AES-256-GCM and
 * would take it for the session (the server says in the WELCOME) */
#define WIRE_CAP_AESGCM 0x01
/* bits 1-7 of the caps: a worker hint, slot + 1 (0: none), read by the
 * server's steering program (docs/PROTOCOL.md, "Worker hint"); bound in
 * the hello's associated data like the rest of the caps */
#define WIRE_CAP_WORKER_SHIFT 1
#define WIRE_WORKER_HINT_MAX 126 /* the largest slot a hint names */
#define WIRE_CAPS_WORKER(slot) ((uint8_t)(((slot) + 1) << WIRE_CAP_WORKER_SHIFT))
/* the slot a caps byte names, or -1 */
#define WIRE_CAPS_HINT(caps) ((int)((caps) >> WIRE_CAP_WORKER_SHIFT) - 1)
int wire_hello_decode(const uint8_t *pkt, size_t len, struct wire_hello *h);

/* CHALLENGE: 02 | 1 u8 | stamp u32 | mac[16] (the same for v1 and v2) */
int wire_challenge_encode(uint8_t *out, size_t cap, uint32_t stamp,
                          const uint8_t mac[WIRE_MAC]);
int wire_challenge_decode(const uint8_t *pkt, size_t len, uint32_t *stamp,
                          uint8_t mac[WIRE_MAC]);

/* The cookie: keyed BLAKE2b-128 (key: the server secret) over
 * addr | stamp u32 | client_pub. addr is the client's address in any fixed
 * encoding the server chooses (gate uses family, port and address bytes). */
void wire_cookie(uint8_t mac[WIRE_MAC], const uint8_t secret[WIRE_SECRET],
                 const void *addr, size_t addrlen, uint32_t stamp,
                 const uint8_t pub[WIRE_PUB]);
/* Constant-time comparison of two MACs: 1 when equal. */
int wire_mac_equal(const uint8_t a[WIRE_MAC], const uint8_t b[WIRE_MAC]);

/* WELCOME: 04 | sid u32 | server_pub[32] | sealed params | tag[16]
 * params: server_time_us u64 | heartbeat_ms u32 | timeout_ms u32 |
 *         mtu u16 | flags u8 (WIRE_F_ENCRYPT) | resume_grace_ms u32 |
 *         fec_data u8 | fec_parity u8 | reset_token[16] | msg_max u32
 * Sealed with the server's tx key at nonce 0 (session packets start at
 * pn 1), associated data the first 37 bytes. Nonce 0 is used once per key:
 * a WELCOME sent again must be the same bytes (keep the packet, or encode
 * the same params again), and the server's key pair is fresh per session.
 * Exactly WIRE_WELCOME_SIZE bytes; flags are passed through as they are. */
#define WIRE_F_ENCRYPT 1
#define WIRE_F_AESGCM 2   /* session packets use AES-256-GCM (only when the
                             client's caps offered it) */
struct wire_welcome {
	uint32_t sid;
	uint8_t pub[WIRE_PUB];
	uint64_t server_time_us;
	uint32_t heartbeat_ms;
	uint32_t timeout_ms;
	uint16_t mtu;
	uint8_t flags;
	uint32_t resume_grace_ms; /* a lost session waits this long to resume
	                             (0: it closes when its connection is lost) */
	uint8_t fec_data, fec_parity; /* FEC on UDP paths, both ways (0: off) */
	uint8_t reset_token[WIRE_RESET_TOKEN]; /* the RESET that ends this session
	                                          (all zero: the server sends none) */
	uint32_t msg_max; /* the largest reliable message the server takes */
};
int wire_welcome_encode(uint8_t *out, size_t cap, const struct wire_welcome *w,
                        const uint8_t key[WIRE_KEY]);
/* Step 1: sid and server key, unauthenticated (the client needs the key to
 * derive the session keys). Step 2: verify and read the params. */
int wire_welcome_peek(const uint8_t *pkt, size_t len, struct wire_welcome *w);
int wire_welcome_open(const uint8_t *pkt, size_t len, struct wire_welcome *w,
                      const uint8_t key[WIRE_KEY]);

/* REFUSE: 05 | version u8 | echo[16] | code u16 | reason_len u8 | reason
 * echo is the first 16 bytes of the client's public key, so an off-path
 * attacker who cannot see the HELLO cannot forge a refusal. encode writes
 * version byte 1 (the layout is v1's in both versions); reason may overlap
 * out. decoded reason points into pkt. */
struct wire_refuse {
	uint8_t echo[16];
	uint16_t code;
	const char *reason;  /* not NUL-terminated when decoded */
	uint8_t reason_len;
};
int wire_refuse_encode(uint8_t *out, size_t cap, const struct wire_refuse *r);
int wire_refuse_decode(const uint8_t *pkt, size_t len, struct wire_refuse *r);

/* RESET: 06 | sid u32 | token[16]   (docs/PROTOCOL.md, "Stateless reset")
 * A server answers a session packet for a sid it does not know with the
 * RESET of that sid, so a client whose server restarted learns at once that
 * its session is gone. The token is BLAKE2b-128 keyed with the server
 * secret over a label and the sid: any process holding the secret computes
 * it without state, the client learned it in the (sealed) WELCOME, and
 * nobody else can make it. Exactly WIRE_RESET_SIZE bytes. */
void wire_reset_token(uint8_t token[WIRE_RESET_TOKEN],
                      const uint8_t secret[WIRE_SECRET], uint32_t sid);
int wire_reset_encode(uint8_t *out, size_t cap, uint32_t sid,
                      const uint8_t token[WIRE_RESET_TOKEN]);
/* sid and token (to be compared by the caller: wire_reset_equal) */
int wire_reset_decode(const uint8_t *pkt, size_t len, uint32_t *sid,
                      const uint8_t **token);
/* Constant time. */
int wire_reset_equal(const uint8_t a[WIRE_RESET_TOKEN],
                     const uint8_t b[WIRE_RESET_TOKEN]);

/* ---- v2: the server's static key (docs/PROTOCOL.md, "Handshake v2") -----
 *
 * After Noise NK: the client knows the server's static public key S. It
 * sends an ephemeral e and seals the hello under a key from es = X25519(e,
 * S); the WELCOME carries the server's ephemeral e_s and is sealed under
 * keys from es and ee = X25519(e_s, e), so only the holder of s makes a
 * WELCOME that opens, and the session keys are forward-secret. Every KDF
 * is keyed BLAKE2b with a 16-byte ASCII label. */
struct wire_nk {
	uint8_t spub[WIRE_PUB]; /* S: the server's static key */
	uint8_t epub[WIRE_PUB]; /* e: the client's ephemeral key */
	uint8_t es[WIRE_KEY];   /* X25519(e, S) = X25519(s, e) */
	uint8_t hkey[WIRE_KEY]; /* seals the hello */
	uint8_t caps;           /* the HELLO's caps: in the hello's associated
	                           data (set before wire_hello_seal/open) */
};
/* The server's static key pair from its secret: sec = BLAKE2b-256(key:
 * secret, "moongate/2 s-key"), pub = X25519 base point times sec. Servers
 * sharing a secrets file share the key. */
void wire_static_keypair(uint8_t pub[WIRE_PUB], uint8_t sec[WIRE_SEC],
                         const uint8_t secret[WIRE_SECRET]);
/* es and the hello key, on either side. 0 or WIRE_ECRYPTO (a low-order
 * key). */
int wire_nk_client(struct wire_nk *n, const uint8_t spub[WIRE_PUB],
                   const uint8_t epub[WIRE_PUB], const uint8_t esec[WIRE_SEC]);
int wire_nk_server(struct wire_nk *n, const uint8_t spub[WIRE_PUB],
                   const uint8_t ssec[WIRE_SEC], const uint8_t epub[WIRE_PUB]);
/* Seal len hello bytes into out (len + WIRE_TAG bytes; out may be hello):
 * ChaCha20-Poly1305 IETF, key hkey, nonce 0, associated data version 2 |
 * e (the packet's bytes 1..33, the same in HELLO and INIT, so the same
 * plaintext is sealed the same way each time). Returns len + WIRE_TAG or
 * WIRE_EINVAL / WIRE_ECRYPTO. open: out gets len plaintext bytes; 0 or
 * WIRE_EAUTH (a client that sealed to another key). */
int wire_hello_seal(uint8_t *out, const uint8_t *hello, size_t len,
                    const struct wire_nk *n);
int wire_hello_open(uint8_t *out, const uint8_t *sealed, size_t len,
                    const struct wire_nk *n);
/* Session keys of v2: BLAKE2b-512(key: es | ee, "moongate/2 split" | S |
 * e | e_s | sealed hello); the first half is the server's tx key, the
 * second the client's, as with crypto_kx. The client passes its e secret
 * and the WELCOME's e_s; the server its e_s pair. 0 or WIRE_ECRYPTO. */
int wire_nk_client_keys(struct wire_keys *k, const struct wire_nk *n,
                        const uint8_t esec[WIRE_SEC],
                        const uint8_t server_epub[WIRE_PUB],
                        const uint8_t *sealed, size_t sealed_len);
int wire_nk_server_keys(struct wire_keys *k, const struct wire_nk *n,
                        const uint8_t server_esec[WIRE_SEC],
                        const uint8_t server_epub[WIRE_PUB],
                        const uint8_t *sealed, size_t sealed_len);

#endif
