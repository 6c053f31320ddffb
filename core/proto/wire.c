/*
 * wire.c - the packet codec (wire.h).
 *
 * Every length is checked before the bytes it covers are read, and a
 * decoder writes its outputs only on success (and, for a HELLO or INIT of
 * another version, the fields every version shares).
 */
#include "wire.h"

#include <limits.h>
#include <sodium.h>

#define NONCE crypto_aead_chacha20poly1305_IETF_NPUBBYTES /* 12 */
#define WELCOME_AD (1 + 4 + WIRE_PUB)                      /* 37 */
#define REFUSE_ECHO 16

const char *
wire_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case WIRE_ETRUNC: return "truncated packet";
	case WIRE_ETYPE: return "unexpected packet type";
	case WIRE_EVERSION: return "unsupported protocol version";
	case WIRE_EAUTH: return "authentication failed";
	case WIRE_EREPLAY: return "replayed or too old";
	case WIRE_ESPACE: return "output buffer too small";
	case WIRE_EINVAL: return "invalid value or trailing bytes";
	case WIRE_ECRYPTO: return "crypto failure";
	}
	return "unknown wire error";
}

int
wire_init(void)
{
	return sodium_init() < 0 ? WIRE_ECRYPTO : 0;
}

/* ---- keys ---------------------------------------------------------------- */

void
wire_keypair(uint8_t pub[WIRE_PUB], uint8_t sec[WIRE_SEC])
{
	crypto_kx_keypair(pub, sec);
}

int
wire_client_keys(struct wire_keys *k, const uint8_t cpub[WIRE_PUB],
                 const uint8_t csec[WIRE_SEC], const uint8_t spub[WIRE_PUB])
{
	if (crypto_kx_client_session_keys(k->rx, k->tx, cpub, csec,
	                                  spub) != 0) {
		sodium_memzero(k, sizeof *k);
		return WIRE_ECRYPTO;
	}
	return 0;
}

int
wire_server_keys(struct wire_keys *k, const uint8_t spub[WIRE_PUB],
                 const uint8_t ssec[WIRE_SEC], const uint8_t cpub[WIRE_PUB])
{
	if (crypto_kx_server_session_keys(k->rx, k->tx, spub, ssec,
	                                  cpub) != 0) {
		sodium_memzero(k, sizeof *k);
		return WIRE_ECRYPTO;
	}
	return 0;
}

/* ---- session packets ----------------------------------------------------- */

static int
is_session(uint8_t type)
{
	return type >= WIRE_KCP && type <= WIRE_PATH_RESPONSE;
}

/* pn as a 64-bit little-endian counter in the 12-byte IETF nonce. */
static void
make_nonce(uint8_t n[NONCE], uint32_t pn)
{
	memset(n, 0, NONCE);
	wire_put64(n, pn);
}

int
wire_peek(const uint8_t *pkt, size_t len, struct wire_hdr *h)
{
	if (len < WIRE_OVERHEAD)
		return WIRE_ETRUNC;
	if (!is_session(pkt[0]))
		return WIRE_ETYPE;
	h->type = pkt[0];
	h->sid = wire_get32(pkt + 1);
	h->pn = wire_get32(pkt + 5);
	return 0;
}

int
wire_aesgcm_available(void)
{
	/* the CPU's features are read by sodium_init: before it, libsodium
	 * says no AES (sodium_init is idempotent and thread-safe) */
	static int known = -1; /* threads of a client may ask at once: atomic */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
	if (k < 0) {
		k = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k;
}

/* Detached AEAD encryption with the suite's cipher. */
static int
aead_seal(int aes, uint8_t *c, uint8_t *tag, const uint8_t *m, size_t mlen,
          const uint8_t *ad, size_t adlen, const uint8_t *n, const uint8_t *k)
{
	if (aes)
		return wire_aesgcm_available()
		       ? crypto_aead_aes256gcm_encrypt_detached(c, tag, NULL, m,
		             mlen, ad, adlen, NULL, n, k)
		       : -1;
	return crypto_aead_chacha20poly1305_ietf_encrypt_detached(c, tag, NULL,
	           m, mlen, ad, adlen, NULL, n, k);
}

static int
aead_open(int aes, uint8_t *m, const uint8_t *c, size_t clen,
          const uint8_t *tag, const uint8_t *ad, size_t adlen,
          const uint8_t *n, const uint8_t *k)
{
	if (aes)
		return wire_aesgcm_available()
		       ? crypto_aead_aes256gcm_decrypt_detached(m, NULL, c, clen,
		             tag, ad, adlen, n, k)
		       : -1;
	return crypto_aead_chacha20poly1305_ietf_decrypt_detached(m, NULL, c,
	           clen, tag, ad, adlen, n, k);
}

int
wire_seal(uint8_t *out, size_t cap, uint8_t type, uint32_t sid,
          uint32_t pn, const uint8_t *body, size_t blen,
          const uint8_t key[WIRE_KEY], int encrypt)
{
	uint8_t n[NONCE];
	uint8_t *b = out + WIRE_HDR;
	int r;

	/* pn 0 is the WELCOME's nonce under the server's tx key */
	if (!is_session(type) || pn == 0 || (blen > 0 && !body) ||
	    blen > (size_t)INT_MAX - WIRE_OVERHEAD)
		return WIRE_EINVAL;
	if (cap < WIRE_OVERHEAD || blen > cap - WIRE_OVERHEAD)
		return WIRE_ESPACE;
	/* body may overlap out anywhere (the header too): move it, then
	 * write the header, then seal in place */
	if (blen > 0 && body != b)
		memmove(b, body, blen);
	out[0] = type;
	wire_put32(out + 1, sid);
	wire_put32(out + 5, pn);
	make_nonce(n, pn);
	if (encrypt & WIRE_SUITE_ENCRYPT)
		r = aead_seal(encrypt & WIRE_SUITE_AESGCM, b, b + blen, b, blen,
		              out, WIRE_HDR, n, key);
	else
		r = aead_seal(encrypt & WIRE_SUITE_AESGCM, b + blen, b + blen,
		              NULL, 0, out, WIRE_HDR + blen, n, key);
	if (r != 0)
		return WIRE_ECRYPTO;
	return (int)(blen + WIRE_OVERHEAD);
}

int
wire_open(uint8_t *pkt, size_t len, const uint8_t key[WIRE_KEY],
          int encrypt, struct wire_hdr *h, uint8_t **body)
{
	struct wire_hdr hd;
	int r;

	if ((r = wire_peek(pkt, len, &hd)) != 0)
		return r;
	if ((r = wire_open_peeked(pkt, len, key, encrypt, &hd, body)) < 0)
		return r;
	if (h)
		*h = hd;
	return r;
}

int
wire_open_peeked(uint8_t *pkt, size_t len, const uint8_t key[WIRE_KEY],
                 int encrypt, const struct wire_hdr *h, uint8_t **body)
{
	uint8_t n[NONCE];
	uint8_t *b = pkt + WIRE_HDR;
	const uint8_t *tag;
	size_t blen;

	blen = len - WIRE_OVERHEAD;
	if (blen > (size_t)INT_MAX)
		return WIRE_EINVAL;
	if (h->pn == 0)
		return WIRE_EAUTH;
	tag = b + blen;
	make_nonce(n, h->pn);
	/* One pass: the tag is checked before plaintext is written; when it
	 * fails libsodium clears the body, which the caller drops anyway. */
	if (encrypt & WIRE_SUITE_ENCRYPT) {
		if (aead_open(encrypt & WIRE_SUITE_AESGCM, b, b, blen, tag, pkt,
		              WIRE_HDR, n, key) != 0)
			return WIRE_EAUTH;
	} else {
		if (aead_open(encrypt & WIRE_SUITE_AESGCM, NULL, tag, 0, tag, pkt,
		              WIRE_HDR + blen, n, key) != 0)
			return WIRE_EAUTH;
	}
	if (body)
		*body = b;
	return (int)blen;
}

/* ---- replay window ------------------------------------------------------- */

int
wire_replay_check(const struct wire_replay *r, uint32_t pn)
{
	uint32_t d;

	if (pn == 0)
		return WIRE_EREPLAY;
	if (pn > r->top)
		return 0;
	d = r->top - pn;
	if (d >= WIRE_REPLAY_WINDOW)
		return WIRE_EREPLAY;
	return (r->bits[d >> 6] >> (d & 63)) & 1 ? WIRE_EREPLAY : 0;
}

void
wire_replay_accept(struct wire_replay *r, uint32_t pn)
{
	uint32_t d;

	if (pn == 0)
		return;
	if (pn > r->top) {
		/* slide: bit i moves to bit i + d, across the two words */
		d = pn - r->top;
		if (d >= WIRE_REPLAY_WINDOW) {
			r->bits[0] = r->bits[1] = 0;
		} else if (d >= 64) {
			r->bits[1] = r->bits[0] << (d - 64);
			r->bits[0] = 0;
		} else {
			r->bits[1] = r->bits[1] << d | r->bits[0] >> (64 - d);
			r->bits[0] <<= d;
		}
		r->top = pn;
		d = 0;
	} else {
		d = r->top - pn;
		if (d >= WIRE_REPLAY_WINDOW)
			return;
	}
	r->bits[d >> 6] |= (uint64_t)1 << (d & 63);
}

/* ---- handshake ----------------------------------------------------------- */

/* Type, then version: the order every handshake decoder checks them in. */
static int
check_head(const uint8_t *pkt, size_t len, uint8_t type)
{
	if (len < 1)
		return WIRE_ETRUNC;
	if (pkt[0] != type)
		return WIRE_ETYPE;
	if (len < 2)
		return WIRE_ETRUNC;
	return pkt[1] == WIRE_V1 ? 0 : WIRE_EVERSION; /* one layout for v1, v2 */
}

/* The whole packet is exactly need bytes. */
static int
check_len(size_t len, size_t need)
{
	if (len < need)
		return WIRE_ETRUNC;
	return len > need ? WIRE_EINVAL : 0;
}

int
wire_hello_encode(uint8_t *out, size_t cap, const struct wire_hello *h)
{
	size_t fixed, n, body;
	uint8_t version = h->version ? h->version : WIRE_V1;
	uint8_t *p;

	if (h->type == WIRE_HELLO)
		fixed = WIRE_HELLO_SIZE;
	else if (h->type == WIRE_INIT)
		fixed = WIRE_INIT_SIZE;
	else
		return WIRE_EINVAL;
	if (version == WIRE_V2)
		fixed++; /* caps */
	/* v2: the sealed hello is the ciphertext and its tag */
	body = h->hello_len + (version == WIRE_V2 ? WIRE_TAG : 0);
	if (h->hello_len > WIRE_HELLO_MAX || (body > 0 && !h->hello))
		return WIRE_EINVAL;
	n = fixed + body;
	if (cap < n)
		return WIRE_ESPACE;
	if (body > 0)
		memmove(out + fixed, h->hello, body);
	out[0] = h->type;
	out[1] = version;
	memcpy(out + 2, h->pub, WIRE_PUB);
	p = out + 2 + WIRE_PUB;
	if (version == WIRE_V2)
		*p++ = h->caps;
	if (h->type == WIRE_INIT) {
		wire_put32(p, h->stamp);
		memcpy(p + 4, h->mac, WIRE_MAC);
		p += 4 + WIRE_MAC;
	}
	wire_put16(p, h->hello_len);
	return (int)n;
}

int
wire_hello_decode(const uint8_t *pkt, size_t len, struct wire_hello *h)
{
	struct wire_hello d;
	const uint8_t *p;
	size_t fixed;
	int r;

	if (len < 1)
		return WIRE_ETRUNC;
	if (pkt[0] == WIRE_HELLO)
		fixed = WIRE_HELLO_SIZE;
	else if (pkt[0] == WIRE_INIT)
		fixed = WIRE_INIT_SIZE;
	else
		return WIRE_ETYPE;
	if (len < 2 + WIRE_PUB)
		return WIRE_ETRUNC;
	memset(&d, 0, sizeof d);
	d.type = pkt[0];
	d.version = pkt[1];
	memcpy(d.pub, pkt + 2, WIRE_PUB);
	/* every version starts type | version | pub: enough for a REFUSE */
	if (d.version != WIRE_V1 && d.version != WIRE_V2) {
		*h = d;
		return WIRE_EVERSION;
	}
	if (d.version == WIRE_V2)
		fixed++; /* caps */
	if (len < fixed)
		return WIRE_ETRUNC;
	p = pkt + 2 + WIRE_PUB;
	if (d.version == WIRE_V2)
		d.caps = *p++;
	if (d.type == WIRE_INIT) {
		d.stamp = wire_get32(p);
		memcpy(d.mac, p + 4, WIRE_MAC);
		p += 4 + WIRE_MAC;
	}
	d.hello_len = wire_get16(p);
	if (d.hello_len > WIRE_HELLO_MAX)
		return WIRE_EINVAL;
	if ((r = check_len(len, fixed + d.hello_len +
	                        (d.version == WIRE_V2 ? WIRE_TAG : 0))) != 0)
		return r;
	d.hello = pkt + fixed;
	*h = d;
	return 0;
}

int
wire_challenge_encode(uint8_t *out, size_t cap, uint32_t stamp,
                      const uint8_t mac[WIRE_MAC])
{
	if (cap < WIRE_CHALLENGE_SIZE)
		return WIRE_ESPACE;
	out[0] = WIRE_CHALLENGE;
	out[1] = WIRE_V1;
	wire_put32(out + 2, stamp);
	memcpy(out + 6, mac, WIRE_MAC);
	return WIRE_CHALLENGE_SIZE;
}

int
wire_challenge_decode(const uint8_t *pkt, size_t len, uint32_t *stamp,
                      uint8_t mac[WIRE_MAC])
{
	int r;

	if ((r = check_head(pkt, len, WIRE_CHALLENGE)) != 0 ||
	    (r = check_len(len, WIRE_CHALLENGE_SIZE)) != 0)
		return r;
	*stamp = wire_get32(pkt + 2);
	memcpy(mac, pkt + 6, WIRE_MAC);
	return 0;
}

void
wire_cookie(uint8_t mac[WIRE_MAC], const uint8_t secret[WIRE_SECRET],
            const void *addr, size_t addrlen, uint32_t stamp,
            const uint8_t pub[WIRE_PUB])
{
	crypto_generichash_state st;
	uint8_t s[4];

	/* addr is the only variable-length part, so the input is unambiguous */
	wire_put32(s, stamp);
	crypto_generichash_init(&st, secret, WIRE_SECRET, WIRE_MAC);
	crypto_generichash_update(&st, addr, addrlen);
	crypto_generichash_update(&st, s, sizeof s);
	crypto_generichash_update(&st, pub, WIRE_PUB);
	crypto_generichash_final(&st, mac, WIRE_MAC);
}

int
wire_mac_equal(const uint8_t a[WIRE_MAC], const uint8_t b[WIRE_MAC])
{
	return sodium_memcmp(a, b, WIRE_MAC) == 0;
}

int
wire_welcome_encode(uint8_t *out, size_t cap, const struct wire_welcome *w,
                    const uint8_t key[WIRE_KEY])
{
	uint8_t n[NONCE] = { 0 };
	uint8_t *p = out + WELCOME_AD;

	if (cap < WIRE_WELCOME_SIZE)
		return WIRE_ESPACE;
	out[0] = WIRE_WELCOME;
	wire_put32(out + 1, w->sid);
	memcpy(out + 5, w->pub, WIRE_PUB);
	wire_put64(p, w->server_time_us);
	wire_put32(p + 8, w->heartbeat_ms);
	wire_put32(p + 12, w->timeout_ms);
	wire_put16(p + 16, w->mtu);
	p[18] = w->flags;
	wire_put32(p + 19, w->resume_grace_ms);
	p[23] = w->fec_data;
	p[24] = w->fec_parity;
	memcpy(p + 25, w->reset_token, WIRE_RESET_TOKEN);
	wire_put32(p + 41, w->msg_max);
	if (crypto_aead_chacha20poly1305_ietf_encrypt_detached(
	        p, p + WIRE_WELCOME_BODY, NULL, p, WIRE_WELCOME_BODY, out,
	        WELCOME_AD, NULL, n, key) != 0)
		return WIRE_ECRYPTO;
	return WIRE_WELCOME_SIZE;
}

static int
check_welcome(const uint8_t *pkt, size_t len)
{
	if (len < 1)
		return WIRE_ETRUNC;
	if (pkt[0] != WIRE_WELCOME)
		return WIRE_ETYPE;
	return check_len(len, WIRE_WELCOME_SIZE);
}

int
wire_welcome_peek(const uint8_t *pkt, size_t len, struct wire_welcome *w)
{
	int r;

	if ((r = check_welcome(pkt, len)) != 0)
		return r;
	w->sid = wire_get32(pkt + 1);
	memcpy(w->pub, pkt + 5, WIRE_PUB);
	return 0;
}

int
wire_welcome_open(const uint8_t *pkt, size_t len, struct wire_welcome *w,
                  const uint8_t key[WIRE_KEY])
{
	uint8_t n[NONCE] = { 0 };
	uint8_t p[WIRE_WELCOME_BODY];
	int r;

	if ((r = check_welcome(pkt, len)) != 0)
		return r;
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
	        p, NULL, pkt + WELCOME_AD, WIRE_WELCOME_BODY,
	        pkt + WELCOME_AD + WIRE_WELCOME_BODY, pkt, WELCOME_AD, n,
	        key) != 0)
		return WIRE_EAUTH;
	w->sid = wire_get32(pkt + 1);
	memcpy(w->pub, pkt + 5, WIRE_PUB);
	w->server_time_us = wire_get64(p);
	w->heartbeat_ms = wire_get32(p + 8);
	w->timeout_ms = wire_get32(p + 12);
	w->mtu = wire_get16(p + 16);
	w->flags = p[18];
	w->resume_grace_ms = wire_get32(p + 19);
	w->fec_data = p[23];
	w->fec_parity = p[24];
	memcpy(w->reset_token, p + 25, WIRE_RESET_TOKEN);
	w->msg_max = wire_get32(p + 41);
	wire_scrub(p, sizeof p);
	return 0;
}

int
wire_refuse_encode(uint8_t *out, size_t cap, const struct wire_refuse *r)
{
	size_t n = WIRE_REFUSE_SIZE + r->reason_len;

	if (r->reason_len > 0 && !r->reason)
		return WIRE_EINVAL;
	if (cap < n)
		return WIRE_ESPACE;
	if (r->reason_len > 0)
		memmove(out + WIRE_REFUSE_SIZE, r->reason, r->reason_len);
	out[0] = WIRE_REFUSE;
	out[1] = WIRE_V1;
	memcpy(out + 2, r->echo, REFUSE_ECHO);
	wire_put16(out + 18, r->code);
	out[20] = r->reason_len;
	return (int)n;
}

int
wire_refuse_decode(const uint8_t *pkt, size_t len, struct wire_refuse *r)
{
	int e;

	if ((e = check_head(pkt, len, WIRE_REFUSE)) != 0)
		return e;
	if (len < WIRE_REFUSE_SIZE)
		return WIRE_ETRUNC;
	if ((e = check_len(len, WIRE_REFUSE_SIZE + (size_t)pkt[20])) != 0)
		return e;
	memcpy(r->echo, pkt + 2, REFUSE_ECHO);
	r->code = wire_get16(pkt + 18);
	r->reason_len = pkt[20];
	r->reason = (const char *)pkt + WIRE_REFUSE_SIZE;
	return 0;
}

/* ---- stateless reset ---------------------------------------------------- */

static const char reset_label[] = "moongate reset v1";

void
wire_reset_token(uint8_t token[WIRE_RESET_TOKEN],
                 const uint8_t secret[WIRE_SECRET], uint32_t sid)
{
	crypto_generichash_state st;
	uint8_t s[4];

	wire_put32(s, sid);
	crypto_generichash_init(&st, secret, WIRE_SECRET, WIRE_RESET_TOKEN);
	crypto_generichash_update(&st, (const uint8_t *)reset_label,
	                          sizeof reset_label - 1);
	crypto_generichash_update(&st, s, sizeof s);
	crypto_generichash_final(&st, token, WIRE_RESET_TOKEN);
}

int
wire_reset_encode(uint8_t *out, size_t cap, uint32_t sid,
                  const uint8_t token[WIRE_RESET_TOKEN])
{
	if (cap < WIRE_RESET_SIZE)
		return WIRE_ESPACE;
	out[0] = WIRE_RESET;
	wire_put32(out + 1, sid);
	memcpy(out + 5, token, WIRE_RESET_TOKEN);
	return WIRE_RESET_SIZE;
}

int
wire_reset_decode(const uint8_t *pkt, size_t len, uint32_t *sid,
                  const uint8_t **token)
{
	int e;

	if (len < 1)
		return WIRE_ETRUNC;
	if (pkt[0] != WIRE_RESET)
		return WIRE_ETYPE;
	if ((e = check_len(len, WIRE_RESET_SIZE)) != 0)
		return e;
	*sid = wire_get32(pkt + 1);
	*token = pkt + 5;
	return 0;
}

int
wire_reset_equal(const uint8_t a[WIRE_RESET_TOKEN],
                 const uint8_t b[WIRE_RESET_TOKEN])
{
	return sodium_memcmp(a, b, WIRE_RESET_TOKEN) == 0;
}

void
wire_scrub(void *p, size_t n)
{
	sodium_memzero(p, n);
}

void
wire_random(void *p, size_t n)
{
	randombytes_buf(p, n);
}

/* ---- FEC frames ---------------------------------------------------------- */

static const char fec_label[] = "moongate fec frame";

void
wire_fec_key(uint8_t out[WIRE_KEY], const uint8_t key[WIRE_KEY])
{
	crypto_generichash(out, WIRE_KEY, (const uint8_t *)fec_label,
	                   sizeof fec_label - 1, key, WIRE_KEY);
}

int
wire_fec_seal(uint8_t *out, size_t cap, uint32_t sid, const uint8_t *shard,
              size_t len, const uint8_t fkey[WIRE_KEY])
{
	if (cap < WIRE_FEC_HDR + WIRE_FEC_TAG || len > cap - WIRE_FEC_HDR - WIRE_FEC_TAG ||
	    len > INT_MAX - WIRE_FEC_HDR - WIRE_FEC_TAG)
		return WIRE_ESPACE;
	out[0] = WIRE_FEC;
	wire_put32(out + 1, sid);
	memmove(out + WIRE_FEC_HDR, shard, len);
	crypto_generichash(out + WIRE_FEC_HDR + len, WIRE_FEC_TAG, out,
	                   WIRE_FEC_HDR + len, fkey, WIRE_KEY);
	return (int)(WIRE_FEC_HDR + len + WIRE_FEC_TAG);
}

int
wire_fec_open(const uint8_t *frame, size_t len, const uint8_t fkey[WIRE_KEY])
{
	if (len < WIRE_FEC_HDR + WIRE_FEC_TAG || len > INT_MAX)
		return WIRE_ETRUNC;
	if (frame[0] != WIRE_FEC)
		return WIRE_ETYPE;
	size_t n = len - WIRE_FEC_TAG;
	uint8_t tag[WIRE_FEC_TAG];
	crypto_generichash(tag, WIRE_FEC_TAG, frame, n, fkey, WIRE_KEY);
	int ok = crypto_verify_16(tag, frame + n) == 0;
	sodium_memzero(tag, sizeof tag);
	return ok ? (int)(n - WIRE_FEC_HDR) : WIRE_EAUTH;
}

/* ---- v2: the server's static key ----------------------------------------- */

/* Every label is 16 ASCII bytes, so each KDF input has one parsing. */
static const uint8_t LABEL_SKEY[16] = "moongate/2 s-key";
static const uint8_t LABEL_HELLO[16] = "moongate/2 hello";
static const uint8_t LABEL_SPLIT[16] = "moongate/2 split";
#define HELLO_AD (1 + WIRE_PUB + 1) /* version 2 | e | caps */

void
wire_static_keypair(uint8_t pub[WIRE_PUB], uint8_t sec[WIRE_SEC],
                    const uint8_t secret[WIRE_SECRET])
{
	crypto_generichash(sec, WIRE_SEC, LABEL_SKEY, sizeof LABEL_SKEY, secret,
	                   WIRE_SECRET);
	crypto_scalarmult_base(pub, sec);
}

/* hkey = BLAKE2b-256(key: es, "moongate/2 hello" | S | e) */
static void
nk_hello_key(struct wire_nk *n)
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, n->es, WIRE_KEY, WIRE_KEY);
	crypto_generichash_update(&st, LABEL_HELLO, sizeof LABEL_HELLO);
	crypto_generichash_update(&st, n->spub, WIRE_PUB);
	crypto_generichash_update(&st, n->epub, WIRE_PUB);
	crypto_generichash_final(&st, n->hkey, WIRE_KEY);
	sodium_memzero(&st, sizeof st);
}

int
wire_nk_client(struct wire_nk *n, const uint8_t spub[WIRE_PUB],
               const uint8_t epub[WIRE_PUB], const uint8_t esec[WIRE_SEC])
{
	memcpy(n->spub, spub, WIRE_PUB);
	memcpy(n->epub, epub, WIRE_PUB);
	n->caps = 0;
	if (crypto_scalarmult(n->es, esec, spub) != 0) {
		sodium_memzero(n, sizeof *n);
		return WIRE_ECRYPTO;
	}
	nk_hello_key(n);
	return 0;
}

int
wire_nk_server(struct wire_nk *n, const uint8_t spub[WIRE_PUB],
               const uint8_t ssec[WIRE_SEC], const uint8_t epub[WIRE_PUB])
{
	memcpy(n->spub, spub, WIRE_PUB);
	memcpy(n->epub, epub, WIRE_PUB);
	n->caps = 0;
	if (crypto_scalarmult(n->es, ssec, epub) != 0) {
		sodium_memzero(n, sizeof *n);
		return WIRE_ECRYPTO;
	}
	nk_hello_key(n);
	return 0;
}

static void
hello_ad(uint8_t ad[HELLO_AD], const struct wire_nk *n)
{
	ad[0] = WIRE_V2;
	memcpy(ad + 1, n->epub, WIRE_PUB);
	ad[1 + WIRE_PUB] = n->caps;
}

int
wire_hello_seal(uint8_t *out, const uint8_t *hello, size_t len,
                const struct wire_nk *n)
{
	uint8_t nonce[NONCE] = { 0 };
	uint8_t ad[HELLO_AD];

	if (len > WIRE_HELLO_MAX || (len > 0 && !hello))
		return WIRE_EINVAL;
	hello_ad(ad, n);
	/* nonce 0 is safe: hkey depends on e, fresh per handshake, and the
	 * same hello is all it ever seals */
	if (crypto_aead_chacha20poly1305_ietf_encrypt_detached(
	        out, out + len, NULL, hello, len, ad, HELLO_AD, NULL, nonce,
	        n->hkey) != 0)
		return WIRE_ECRYPTO;
	return (int)(len + WIRE_TAG);
}

int
wire_hello_open(uint8_t *out, const uint8_t *sealed, size_t len,
                const struct wire_nk *n)
{
	uint8_t nonce[NONCE] = { 0 };
	uint8_t ad[HELLO_AD];

	if (len > WIRE_HELLO_MAX)
		return WIRE_EINVAL;
	hello_ad(ad, n);
	if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
	        out, NULL, sealed, len, sealed + len, ad, HELLO_AD, nonce,
	        n->hkey) != 0)
		return WIRE_EAUTH;
	return 0;
}

/* BLAKE2b-512(key: es | ee, "moongate/2 split" | S | e | e_s | sealed) */
static int
nk_split(struct wire_keys *k, const struct wire_nk *n, const uint8_t ee[WIRE_KEY],
         const uint8_t server_epub[WIRE_PUB], const uint8_t *sealed,
         size_t sealed_len, int server)
{
	crypto_generichash_state st;
	uint8_t key[2 * WIRE_KEY], out[2 * WIRE_KEY];

	memcpy(key, n->es, WIRE_KEY);
	memcpy(key + WIRE_KEY, ee, WIRE_KEY);
	crypto_generichash_init(&st, key, sizeof key, sizeof out);
	crypto_generichash_update(&st, LABEL_SPLIT, sizeof LABEL_SPLIT);
	crypto_generichash_update(&st, n->spub, WIRE_PUB);
	crypto_generichash_update(&st, n->epub, WIRE_PUB);
	crypto_generichash_update(&st, server_epub, WIRE_PUB);
	crypto_generichash_update(&st, sealed, sealed_len);
	crypto_generichash_final(&st, out, sizeof out);
	/* first half: server -> client; second: client -> server (crypto_kx) */
	memcpy(server ? k->tx : k->rx, out, WIRE_KEY);
	memcpy(server ? k->rx : k->tx, out + WIRE_KEY, WIRE_KEY);
	sodium_memzero(key, sizeof key);
	sodium_memzero(out, sizeof out);
	sodium_memzero(&st, sizeof st);
	return 0;
}

int
wire_nk_client_keys(struct wire_keys *k, const struct wire_nk *n,
                    const uint8_t esec[WIRE_SEC],
                    const uint8_t server_epub[WIRE_PUB],
                    const uint8_t *sealed, size_t sealed_len)
{
	uint8_t ee[WIRE_KEY];
	if (crypto_scalarmult(ee, esec, server_epub) != 0) {
		sodium_memzero(k, sizeof *k);
		return WIRE_ECRYPTO;
	}
	nk_split(k, n, ee, server_epub, sealed, sealed_len, 0);
	sodium_memzero(ee, sizeof ee);
	return 0;
}

int
wire_nk_server_keys(struct wire_keys *k, const struct wire_nk *n,
                    const uint8_t server_esec[WIRE_SEC],
                    const uint8_t server_epub[WIRE_PUB],
                    const uint8_t *sealed, size_t sealed_len)
{
	uint8_t ee[WIRE_KEY];
	if (crypto_scalarmult(ee, server_esec, n->epub) != 0) {
		sodium_memzero(k, sizeof *k);
		return WIRE_ECRYPTO;
	}
	nk_split(k, n, ee, server_epub, sealed, sealed_len, 1);
	sodium_memzero(ee, sizeof ee);
	return 0;
}
