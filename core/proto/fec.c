/*
 * fec.c - Reed-Solomon erasure coding of datagram groups (fec.h), written
 * from the textbook construction.
 *
 * The field is GF(2^8) with the polynomial 0x11d and generator 2: exp and
 * log tables below (test_fec recomputes them), a product is
 * exp[log a + log b]. A coefficient times a buffer goes through a
 * 256-entry row of products built for that coefficient (muladd).
 *
 * The code: shard i of a group (0..k-1) is data packet i as
 * len u16 | packet, zero-padded to L = 2 + the longest packet of the
 * group. Parity row j (0..m-1) is
 *
 *     P_j = sum over i of C[j][i] * D_i,  C[j][i] = y_i / (x_j + y_i),
 *     x_j = j,  y_i = 255 - i   (so x_j + y_i = j XOR (255 - i) != 0
 *                                 whenever i + j < 255)
 *
 * a Cauchy matrix 1 / (x_j + y_i) with column i scaled by y_i, which
 * makes row 0 all ones (parity 0 is the XOR of the data). Every square
 * submatrix of a Cauchy matrix is invertible, scaling columns keeps that,
 * so [I; C] is MDS: any k of the k + m shards determine the data. The
 * coefficients do not depend on k, so a group closed early with k' < k
 * packets uses the first k' columns (a Cauchy matrix again), and the
 * encoder accumulates parity packet by packet without keeping the data.
 *
 * Decoding a group with e data shards missing and at least e parity
 * shards: take e parity rows, subtract (XOR) the known data's part from
 * each (the syndrome), solve the e x e system with the inverse of the
 * rows' coefficients for the missing columns (Gauss-Jordan). Every
 * recovered buffer must read len <= L - 2 then zeros, or the group's
 * shards did not belong together (forged or corrupt): nothing is
 * delivered from it.
 *
 * Decoder state: a ring of slots (groups rounded up to a power of two)
 * indexed by group id; the window is the `groups` ids up to the newest.
 * A slot remembers which data packets it delivered for as long as its
 * group is in the window, which is what makes delivery exactly once;
 * its buffers (copies of the shards, exact size) are freed as soon as
 * the group is complete, recovered, expired or evicted.
 */
#include "fec.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t gf_exp[510] = {
	0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1d, 0x3a, 0x74, 0xe8,
	0xcd, 0x87, 0x13, 0x26, 0x4c, 0x98, 0x2d, 0x5a, 0xb4, 0x75, 0xea, 0xc9,
	0x8f, 0x03, 0x06, 0x0c, 0x18, 0x30, 0x60, 0xc0, 0x9d, 0x27, 0x4e, 0x9c,
	0x25, 0x4a, 0x94, 0x35, 0x6a, 0xd4, 0xb5, 0x77, 0xee, 0xc1, 0x9f, 0x23,
	0x46, 0x8c, 0x05, 0x0a, 0x14, 0x28, 0x50, 0xa0, 0x5d, 0xba, 0x69, 0xd2,
	0xb9, 0x6f, 0xde, 0xa1, 0x5f, 0xbe, 0x61, 0xc2, 0x99, 0x2f, 0x5e, 0xbc,
	0x65, 0xca, 0x89, 0x0f, 0x1e, 0x3c, 0x78, 0xf0, 0xfd, 0xe7, 0xd3, 0xbb,
	0x6b, 0xd6, 0xb1, 0x7f, 0xfe, 0xe1, 0xdf, 0xa3, 0x5b, 0xb6, 0x71, 0xe2,
	0xd9, 0xaf, 0x43, 0x86, 0x11, 0x22, 0x44, 0x88, 0x0d, 0x1a, 0x34, 0x68,
	0xd0, 0xbd, 0x67, 0xce, 0x81, 0x1f, 0x3e, 0x7c, 0xf8, 0xed, 0xc7, 0x93,
	0x3b, 0x76, 0xec, 0xc5, 0x97, 0x33, 0x66, 0xcc, 0x85, 0x17, 0x2e, 0x5c,
	0xb8, 0x6d, 0xda, 0xa9, 0x4f, 0x9e, 0x21, 0x42, 0x84, 0x15, 0x2a, 0x54,
	0xa8, 0x4d, 0x9a, 0x29, 0x52, 0xa4, 0x55, 0xaa, 0x49, 0x92, 0x39, 0x72,
	0xe4, 0xd5, 0xb7, 0x73, 0xe6, 0xd1, 0xbf, 0x63, 0xc6, 0x91, 0x3f, 0x7e,
	0xfc, 0xe5, 0xd7, 0xb3, 0x7b, 0xf6, 0xf1, 0xff, 0xe3, 0xdb, 0xab, 0x4b,
	0x96, 0x31, 0x62, 0xc4, 0x95, 0x37, 0x6e, 0xdc, 0xa5, 0x57, 0xae, 0x41,
	0x82, 0x19, 0x32, 0x64, 0xc8, 0x8d, 0x07, 0x0e, 0x1c, 0x38, 0x70, 0xe0,
	0xdd, 0xa7, 0x53, 0xa6, 0x51, 0xa2, 0x59, 0xb2, 0x79, 0xf2, 0xf9, 0xef,
	0xc3, 0x9b, 0x2b, 0x56, 0xac, 0x45, 0x8a, 0x09, 0x12, 0x24, 0x48, 0x90,
	0x3d, 0x7a, 0xf4, 0xf5, 0xf7, 0xf3, 0xfb, 0xeb, 0xcb, 0x8b, 0x0b, 0x16,
	0x2c, 0x58, 0xb0, 0x7d, 0xfa, 0xe9, 0xcf, 0x83, 0x1b, 0x36, 0x6c, 0xd8,
	0xad, 0x47, 0x8e, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1d,
	0x3a, 0x74, 0xe8, 0xcd, 0x87, 0x13, 0x26, 0x4c, 0x98, 0x2d, 0x5a, 0xb4,
	0x75, 0xea, 0xc9, 0x8f, 0x03, 0x06, 0x0c, 0x18, 0x30, 0x60, 0xc0, 0x9d,
	0x27, 0x4e, 0x9c, 0x25, 0x4a, 0x94, 0x35, 0x6a, 0xd4, 0xb5, 0x77, 0xee,
	0xc1, 0x9f, 0x23, 0x46, 0x8c, 0x05, 0x0a, 0x14, 0x28, 0x50, 0xa0, 0x5d,
	0xba, 0x69, 0xd2, 0xb9, 0x6f, 0xde, 0xa1, 0x5f, 0xbe, 0x61, 0xc2, 0x99,
	0x2f, 0x5e, 0xbc, 0x65, 0xca, 0x89, 0x0f, 0x1e, 0x3c, 0x78, 0xf0, 0xfd,
	0xe7, 0xd3, 0xbb, 0x6b, 0xd6, 0xb1, 0x7f, 0xfe, 0xe1, 0xdf, 0xa3, 0x5b,
	0xb6, 0x71, 0xe2, 0xd9, 0xaf, 0x43, 0x86, 0x11, 0x22, 0x44, 0x88, 0x0d,
	0x1a, 0x34, 0x68, 0xd0, 0xbd, 0x67, 0xce, 0x81, 0x1f, 0x3e, 0x7c, 0xf8,
	0xed, 0xc7, 0x93, 0x3b, 0x76, 0xec, 0xc5, 0x97, 0x33, 0x66, 0xcc, 0x85,
	0x17, 0x2e, 0x5c, 0xb8, 0x6d, 0xda, 0xa9, 0x4f, 0x9e, 0x21, 0x42, 0x84,
	0x15, 0x2a, 0x54, 0xa8, 0x4d, 0x9a, 0x29, 0x52, 0xa4, 0x55, 0xaa, 0x49,
	0x92, 0x39, 0x72, 0xe4, 0xd5, 0xb7, 0x73, 0xe6, 0xd1, 0xbf, 0x63, 0xc6,
	0x91, 0x3f, 0x7e, 0xfc, 0xe5, 0xd7, 0xb3, 0x7b, 0xf6, 0xf1, 0xff, 0xe3,
	0xdb, 0xab, 0x4b, 0x96, 0x31, 0x62, 0xc4, 0x95, 0x37, 0x6e, 0xdc, 0xa5,
	0x57, 0xae, 0x41, 0x82, 0x19, 0x32, 0x64, 0xc8, 0x8d, 0x07, 0x0e, 0x1c,
	0x38, 0x70, 0xe0, 0xdd, 0xa7, 0x53, 0xa6, 0x51, 0xa2, 0x59, 0xb2, 0x79,
	0xf2, 0xf9, 0xef, 0xc3, 0x9b, 0x2b, 0x56, 0xac, 0x45, 0x8a, 0x09, 0x12,
	0x24, 0x48, 0x90, 0x3d, 0x7a, 0xf4, 0xf5, 0xf7, 0xf3, 0xfb, 0xeb, 0xcb,
	0x8b, 0x0b, 0x16, 0x2c, 0x58, 0xb0, 0x7d, 0xfa, 0xe9, 0xcf, 0x83, 0x1b,
	0x36, 0x6c, 0xd8, 0xad, 0x47, 0x8e,
};
static const uint8_t gf_log[256] = {
	0x00, 0x00, 0x01, 0x19, 0x02, 0x32, 0x1a, 0xc6, 0x03, 0xdf, 0x33, 0xee,
	0x1b, 0x68, 0xc7, 0x4b, 0x04, 0x64, 0xe0, 0x0e, 0x34, 0x8d, 0xef, 0x81,
	0x1c, 0xc1, 0x69, 0xf8, 0xc8, 0x08, 0x4c, 0x71, 0x05, 0x8a, 0x65, 0x2f,
	0xe1, 0x24, 0x0f, 0x21, 0x35, 0x93, 0x8e, 0xda, 0xf0, 0x12, 0x82, 0x45,
	0x1d, 0xb5, 0xc2, 0x7d, 0x6a, 0x27, 0xf9, 0xb9, 0xc9, 0x9a, 0x09, 0x78,
	0x4d, 0xe4, 0x72, 0xa6, 0x06, 0xbf, 0x8b, 0x62, 0x66, 0xdd, 0x30, 0xfd,
	0xe2, 0x98, 0x25, 0xb3, 0x10, 0x91, 0x22, 0x88, 0x36, 0xd0, 0x94, 0xce,
	0x8f, 0x96, 0xdb, 0xbd, 0xf1, 0xd2, 0x13, 0x5c, 0x83, 0x38, 0x46, 0x40,
	0x1e, 0x42, 0xb6, 0xa3, 0xc3, 0x48, 0x7e, 0x6e, 0x6b, 0x3a, 0x28, 0x54,
	0xfa, 0x85, 0xba, 0x3d, 0xca, 0x5e, 0x9b, 0x9f, 0x0a, 0x15, 0x79, 0x2b,
	0x4e, 0xd4, 0xe5, 0xac, 0x73, 0xf3, 0xa7, 0x57, 0x07, 0x70, 0xc0, 0xf7,
	0x8c, 0x80, 0x63, 0x0d, 0x67, 0x4a, 0xde, 0xed, 0x31, 0xc5, 0xfe, 0x18,
	0xe3, 0xa5, 0x99, 0x77, 0x26, 0xb8, 0xb4, 0x7c, 0x11, 0x44, 0x92, 0xd9,
	0x23, 0x20, 0x89, 0x2e, 0x37, 0x3f, 0xd1, 0x5b, 0x95, 0xbc, 0xcf, 0xcd,
	0x90, 0x87, 0x97, 0xb2, 0xdc, 0xfc, 0xbe, 0x61, 0xf2, 0x56, 0xd3, 0xab,
	0x14, 0x2a, 0x5d, 0x9e, 0x84, 0x3c, 0x39, 0x53, 0x47, 0x6d, 0x41, 0xa2,
	0x1f, 0x2d, 0x43, 0xd8, 0xb7, 0x7b, 0xa4, 0x76, 0xc4, 0x17, 0x49, 0xec,
	0x7f, 0x0c, 0x6f, 0xf6, 0x6c, 0xa1, 0x3b, 0x52, 0x29, 0x9d, 0x55, 0xaa,
	0xfb, 0x60, 0x86, 0xb1, 0xbb, 0xcc, 0x3e, 0x5a, 0xcb, 0x59, 0x5f, 0xb0,
	0x9c, 0xa9, 0xa0, 0x51, 0x0b, 0xf5, 0x16, 0xeb, 0x7a, 0x75, 0x2c, 0xd7,
	0x4f, 0xae, 0xd5, 0xe9, 0xe6, 0xe7, 0xad, 0xe8, 0x74, 0xd6, 0xf4, 0xea,
	0xa8, 0x50, 0x58, 0xaf,
};

/* ---- GF(2^8) --------------------------------------------------------------- */

uint8_t
fec_gf_mul(uint8_t a, uint8_t b)
{
	if (a == 0 || b == 0)
		return 0;
	return gf_exp[gf_log[a] + gf_log[b]];
}

uint8_t
fec_gf_inv(uint8_t a)
{
	if (a == 0)
		return 0;
	return gf_exp[255 - gf_log[a]];
}

static uint8_t
gf_div(uint8_t a, uint8_t b)
{
	if (a == 0)
		return 0;
	return gf_exp[gf_log[a] + 255 - gf_log[b]];
}

uint8_t
fec_coef(int j, int i)
{
	uint8_t y = (uint8_t)(255 - i);
	return gf_div(y, (uint8_t)(j ^ y));
}

static void
xorbuf(uint8_t *restrict dst, const uint8_t *restrict src, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t a, b;
		memcpy(&a, dst + i, 8);
		memcpy(&b, src + i, 8);
		a ^= b;
		memcpy(dst + i, &a, 8);
	}
	for (; i < n; i++)
		dst[i] ^= src[i];
}

/* dst ^= c * src, through the row of products c * x. The 8-byte loop
 * reads and writes words in native order on both sides, so it is right
 * whatever the byte order. */
void
fec_gf_muladd(uint8_t *restrict dst, const uint8_t *restrict src, size_t n,
              uint8_t c)
{
	uint8_t row[256];
	unsigned lc, x;
	size_t i = 0;

	if (c == 0 || n == 0)
		return;
	if (c == 1) {
		xorbuf(dst, src, n);
		return;
	}
	lc = gf_log[c];
	if (n < 64) {
		/* a row costs 255 lookups: not worth it for a few bytes */
		for (; i < n; i++)
			if (src[i])
				dst[i] ^= gf_exp[lc + gf_log[src[i]]];
		return;
	}
	row[0] = 0;
	for (x = 1; x < 256; x++)
		row[x] = gf_exp[lc + gf_log[x]];
	for (; i + 8 <= n; i += 8) {
		uint64_t s, d, r;
		memcpy(&s, src + i, 8);
		r = (uint64_t)row[s & 0xff] |
		    (uint64_t)row[(s >> 8) & 0xff] << 8 |
		    (uint64_t)row[(s >> 16) & 0xff] << 16 |
		    (uint64_t)row[(s >> 24) & 0xff] << 24 |
		    (uint64_t)row[(s >> 32) & 0xff] << 32 |
		    (uint64_t)row[(s >> 40) & 0xff] << 40 |
		    (uint64_t)row[(s >> 48) & 0xff] << 48 |
		    (uint64_t)row[s >> 56] << 56;
		memcpy(&d, dst + i, 8);
		d ^= r;
		memcpy(dst + i, &d, 8);
	}
	for (; i < n; i++)
		dst[i] ^= row[src[i]];
}

/* Invert the n x n matrix a (destroyed) into inv, Gauss-Jordan with a
 * pivot search. -1 when singular (never for our coefficients). */
static int
invert(uint8_t *a, uint8_t *inv, int n)
{
	int r, c, col;

	memset(inv, 0, (size_t)n * (size_t)n);
	for (r = 0; r < n; r++)
		inv[r * n + r] = 1;
	for (col = 0; col < n; col++) {
		uint8_t s, t;
		int p = col;
		while (p < n && a[p * n + col] == 0)
			p++;
		if (p == n)
			return -1;
		if (p != col) {
			for (c = 0; c < n; c++) {
				t = a[p * n + c];
				a[p * n + c] = a[col * n + c];
				a[col * n + c] = t;
				t = inv[p * n + c];
				inv[p * n + c] = inv[col * n + c];
				inv[col * n + c] = t;
			}
		}
		s = fec_gf_inv(a[col * n + col]);
		for (c = 0; c < n; c++) {
			a[col * n + c] = fec_gf_mul(a[col * n + c], s);
			inv[col * n + c] = fec_gf_mul(inv[col * n + c], s);
		}
		for (r = 0; r < n; r++) {
			uint8_t f = a[r * n + col];
			if (r == col || f == 0)
				continue;
			for (c = 0; c < n; c++) {
				a[r * n + c] ^= fec_gf_mul(f, a[col * n + c]);
				inv[r * n + c] ^= fec_gf_mul(f, inv[col * n + c]);
			}
		}
	}
	return 0;
}

/* ---- config ------------------------------------------------------------- */

const char *
fec_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case FEC_EINVAL: return "invalid argument";
	case FEC_ETOOBIG: return "packet too large";
	case FEC_ENOMEM: return "out of memory";
	case FEC_ETRUNC: return "truncated shard";
	case FEC_ETYPE: return "not a shard";
	case FEC_EHDR: return "shard header out of range";
	case FEC_EGROUP: return "shard inconsistent with its group";
	case FEC_EDUP: return "duplicate shard";
	case FEC_ESTALE: return "shard of a forgotten group";
	case FEC_EFAR: return "shard far from the window";
	}
	return "unknown fec error";
}

void
fec_config_default(struct fec_config *c)
{
	c->data = 8;
	c->parity = 2;
	c->pkt_max = 1500;
	c->flush_ms = 20;
	c->groups = 32;
	c->expire_ms = 1000;
}

int
fec_config_check(const struct fec_config *c)
{
	if (!c || c->data < 1 || c->data > FEC_DATA_MAX || c->parity < 1 ||
	    c->parity > FEC_PARITY_MAX || c->pkt_max < 1 ||
	    c->pkt_max > FEC_PKT_MAX || c->flush_ms < 0 ||
	    c->flush_ms > 60000 || c->groups < 1 ||
	    c->groups > FEC_GROUPS_MAX || c->expire_ms < 0 ||
	    c->expire_ms > 3600000)
		return FEC_EINVAL;
	return 0;
}

/* ---- encoder ------------------------------------------------------------ */

struct fec_enc {
	struct fec_config c;
	uint32_t next;      /* id of the open group, or of the next one */
	int count;          /* data shards sent in the open group; 0: none open */
	size_t plen;        /* parity payload so far: 2 + longest packet */
	uint64_t due;       /* flush time of the open group */
	uint8_t *shard;     /* the data shard being sent: header + pkt_max */
	uint8_t *par[FEC_PARITY_MAX]; /* parity shards: header + 2 + pkt_max,
	                                 payloads accumulated as packets come */
	size_t mem;
	struct fec_enc_stats st;
};

fec_enc_t *
fec_enc_create(const struct fec_config *c)
{
	fec_enc_t *e;
	size_t dsz, psz;
	uint8_t *block;
	int j;

	if (fec_config_check(c) != 0)
		return NULL;
	dsz = FEC_DATA_HDR + (size_t)c->pkt_max;
	psz = FEC_PARITY_HDR + FEC_LEN_PREFIX + (size_t)c->pkt_max;
	e = calloc(1, sizeof *e);
	block = malloc(dsz + (size_t)c->parity * psz);
	if (!e || !block) {
		free(e);
		free(block);
		return NULL;
	}
	e->c = *c;
	e->shard = block;
	for (j = 0; j < c->parity; j++)
		e->par[j] = block + dsz + (size_t)j * psz;
	e->mem = sizeof *e + dsz + (size_t)c->parity * psz;
	return e;
}

void
fec_enc_release(fec_enc_t *e)
{
	if (!e)
		return;
	free(e->shard);
	free(e);
}

/* Send the open group's parity shards; the next group gets the next id. */
static int
close_group(fec_enc_t *e, fec_output_fn out, void *user)
{
	int j, m = e->c.parity;

	if (e->count == 0)
		return 0;
	for (j = 0; j < m; j++) {
		uint8_t *p = e->par[j];
		size_t n = FEC_PARITY_HDR + e->plen;
		p[0] = FEC_TYPE_PARITY;
		wire_put32(p + 1, e->next);
		p[5] = (uint8_t)(e->count + j);
		p[6] = (uint8_t)e->count;
		p[7] = (uint8_t)m;
		e->st.out_shards++;
		e->st.out_parity++;
		e->st.out_bytes += n;
		out(p, n, user);
	}
	e->st.groups++;
	if (e->count < e->c.data)
		e->st.groups_partial++;
	e->next++;
	e->count = 0;
	e->plen = 0;
	return m;
}

int
fec_enc_add(fec_enc_t *e, const uint8_t *pkt, size_t len, uint64_t now,
            fec_output_fn out, void *user)
{
	size_t need;
	int sent = 0, i, j;

	if (!out || (!pkt && len > 0))
		return FEC_EINVAL;
	if (len > (size_t)e->c.pkt_max)
		return FEC_ETOOBIG;
	if (e->count > 0 && (int64_t)(now - e->due) > 0)
		sent += close_group(e, out, user);
	if (e->count == 0)
		e->due = now + (uint64_t)e->c.flush_ms * 1000;
	i = e->count;

	/* D_i = len | packet, contiguous for one muladd per parity row: the
	 * length goes where the header's last two bytes will be, written
	 * after. Parity bytes past the longest packet so far are not written
	 * yet: zero them as the group's longest grows. */
	if (len)
		memcpy(e->shard + FEC_DATA_HDR, pkt, len);
	wire_put16(e->shard + FEC_DATA_HDR - FEC_LEN_PREFIX, (uint16_t)len);
	need = FEC_LEN_PREFIX + len;
	for (j = 0; j < e->c.parity; j++) {
		uint8_t *p = e->par[j] + FEC_PARITY_HDR;
		if (need > e->plen)
			memset(p + e->plen, 0, need - e->plen);
		fec_gf_muladd(p, e->shard + FEC_DATA_HDR - FEC_LEN_PREFIX, need,
		              fec_coef(j, i));
	}
	if (need > e->plen)
		e->plen = need;
	e->shard[0] = FEC_TYPE_DATA;
	wire_put32(e->shard + 1, e->next);
	e->shard[5] = (uint8_t)i;
	e->count++;
	e->st.packets++;
	e->st.out_shards++;
	e->st.out_bytes += FEC_DATA_HDR + len;
	out(e->shard, FEC_DATA_HDR + len, user);
	sent++;
	if (e->count == e->c.data)
		sent += close_group(e, out, user);
	return sent;
}

int
fec_enc_update(fec_enc_t *e, uint64_t now, fec_output_fn out, void *user)
{
	if (!out)
		return FEC_EINVAL;
	if (e->count > 0 && (int64_t)(now - e->due) >= 0)
		return close_group(e, out, user);
	return 0;
}

int
fec_enc_flush(fec_enc_t *e, fec_output_fn out, void *user)
{
	if (!out)
		return FEC_EINVAL;
	return close_group(e, out, user);
}

uint64_t
fec_enc_check(const fec_enc_t *e, uint64_t now)
{
	(void)now;
	return e->count > 0 ? e->due : UINT64_MAX;
}

int
fec_enc_setnext(fec_enc_t *e, uint32_t group)
{
	if (e->count > 0)
		return FEC_EINVAL;
	e->next = group;
	return 0;
}

size_t
fec_enc_memsize(const fec_enc_t *e)
{
	return e->mem;
}

void
fec_enc_stats(const fec_enc_t *e, struct fec_enc_stats *st)
{
	*st = e->st;
}

/* ---- decoder ------------------------------------------------------------ */

enum { G_OPEN, G_DONE, G_DEAD };

struct group {
	uint64_t t0;        /* when its first shard arrived */
	uint64_t dseen;     /* bit i: data packet i delivered */
	uint32_t pseen;     /* bit j: parity row j arrived */
	uint32_t gid;
	uint16_t plen;      /* parity payload length L; 0 before any parity */
	uint16_t dmax;      /* longest 2 + len of its data shards; 0 none */
	uint8_t live;       /* the slot holds group gid */
	uint8_t state;      /* G_OPEN: may still recover; G_DONE: all data
	                       delivered; G_DEAD: given up */
	uint8_t k, m;       /* counts told by a parity shard; 0 before */
	uint8_t ndata;      /* data packets delivered */
	uint8_t npar;       /* parity shards held */
	uint8_t **buf;      /* data + parity slots: copies while G_OPEN */
	uint16_t *blen;     /* their lengths */
};

struct fec_dec {
	struct fec_config c;
	uint32_t mask;      /* slots - 1 (slots: groups rounded up to 2^n) */
	uint32_t newest;    /* newest group id seen, when started */
	int started;
	int far_run;        /* far shards in a row */
	int nslot;          /* data + parity: buffers per slot */
	struct group *g;
	uint8_t **bufs;
	uint16_t *blens;
	size_t mem;         /* heap bytes held */
	struct fec_dec_stats st;
};

struct shard {
	int parity;
	uint32_t gid;
	int idx, k, m;
	uint8_t *body;      /* data: the packet; parity: the payload */
	size_t n;
};

static uint32_t
slots_for(int groups)
{
	uint32_t n = 1;
	while (n < (uint32_t)groups)
		n <<= 1;
	return n;
}

fec_dec_t *
fec_dec_create(const struct fec_config *c)
{
	fec_dec_t *d;
	uint32_t n, i;

	if (fec_config_check(c) != 0)
		return NULL;
	n = slots_for(c->groups);
	d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->c = *c;
	d->mask = n - 1;
	d->nslot = c->data + c->parity;
	d->g = calloc(n, sizeof *d->g);
	d->bufs = calloc((size_t)n * (size_t)d->nslot, sizeof *d->bufs);
	d->blens = calloc((size_t)n * (size_t)d->nslot, sizeof *d->blens);
	if (!d->g || !d->bufs || !d->blens) {
		fec_dec_release(d);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		d->g[i].buf = d->bufs + (size_t)i * (size_t)d->nslot;
		d->g[i].blen = d->blens + (size_t)i * (size_t)d->nslot;
	}
	d->mem = sizeof *d + n * (sizeof *d->g + (size_t)d->nslot *
	         (sizeof *d->bufs + sizeof *d->blens));
	return d;
}

size_t
fec_dec_memmax(const struct fec_config *c)
{
	size_t n, nslot;

	if (fec_config_check(c) != 0)
		return 0;
	n = slots_for(c->groups);
	nslot = (size_t)(c->data + c->parity);
	/* each group holds at most `data` shard copies (see store); one
	 * recovery at a time adds at most `parity` buffers */
	return sizeof(struct fec_dec) + n * (sizeof(struct group) + nslot *
	       (sizeof(uint8_t *) + sizeof(uint16_t))) +
	       ((size_t)c->groups * (size_t)c->data + (size_t)c->parity) *
	       (FEC_LEN_PREFIX + (size_t)c->pkt_max);
}

/* Free a group's copies. */
static void
drop_bufs(fec_dec_t *d, struct group *g)
{
	int s;

	for (s = 0; s < d->nslot; s++) {
		if (g->buf[s]) {
			d->mem -= g->blen[s];
			free(g->buf[s]);
			g->buf[s] = NULL;
		}
	}
	g->npar = 0;
}

/* No recovery for this group any more; its delivered set is kept. */
static void
give_up(fec_dec_t *d, struct group *g)
{
	if (g->state == G_OPEN) {
		g->state = G_DEAD;
		d->st.unrecovered++;
	}
	drop_bufs(d, g);
}

static void
evict(fec_dec_t *d, struct group *g)
{
	give_up(d, g);
	g->live = 0;
}

void
fec_dec_release(fec_dec_t *d)
{
	uint32_t i;

	if (!d)
		return;
	if (d->g && d->bufs && d->blens)
		for (i = 0; i <= d->mask; i++)
			drop_bufs(d, &d->g[i]);
	free(d->g);
	free(d->bufs);
	free(d->blens);
	free(d);
}

void
fec_dec_reset(fec_dec_t *d)
{
	uint32_t i;

	for (i = 0; i <= d->mask; i++)
		if (d->g[i].live)
			evict(d, &d->g[i]);
	d->started = 0;
	d->far_run = 0;
}

static int
expired(const fec_dec_t *d, const struct group *g, uint64_t now)
{
	return d->c.expire_ms > 0 && g->state == G_OPEN &&
	       (int64_t)(now - g->t0) >= (int64_t)d->c.expire_ms * 1000;
}

/* Evict the groups that left the window, give up the expired ones. */
static void
sweep(fec_dec_t *d, uint64_t now)
{
	uint32_t i;

	for (i = 0; i <= d->mask; i++) {
		struct group *g = &d->g[i];
		if (!g->live)
			continue;
		if (d->newest - g->gid >= (uint32_t)d->c.groups)
			evict(d, g);
		else if (expired(d, g, now))
			give_up(d, g);
	}
}

void
fec_dec_update(fec_dec_t *d, uint64_t now)
{
	sweep(d, now);
}

uint64_t
fec_dec_check(const fec_dec_t *d, uint64_t now)
{
	uint64_t t = UINT64_MAX;
	uint32_t i;

	(void)now;
	if (d->c.expire_ms == 0)
		return t;
	for (i = 0; i <= d->mask; i++) {
		const struct group *g = &d->g[i];
		uint64_t due = g->t0 + (uint64_t)d->c.expire_ms * 1000;
		if (g->live && g->state == G_OPEN && due < t)
			t = due;
	}
	return t;
}

size_t
fec_dec_memsize(const fec_dec_t *d)
{
	return d->mem;
}

void
fec_dec_stats(const fec_dec_t *d, struct fec_dec_stats *st)
{
	*st = d->st;
}

/* Read and range-check a shard's header against the config. */
static int
parse(const fec_dec_t *d, uint8_t *p, size_t len, struct shard *s)
{
	if (len < 1)
		return FEC_ETRUNC;
	if (p[0] == FEC_TYPE_DATA) {
		if (len < FEC_DATA_HDR)
			return FEC_ETRUNC;
		s->parity = 0;
		s->gid = wire_get32(p + 1);
		s->idx = p[5];
		s->k = s->m = 0;
		s->body = p + FEC_DATA_HDR;
		s->n = len - FEC_DATA_HDR;
		if (s->idx >= d->c.data)
			return FEC_EHDR;
		if (s->n > (size_t)d->c.pkt_max)
			return FEC_ETOOBIG;
		return 0;
	}
	if (p[0] != FEC_TYPE_PARITY)
		return FEC_ETYPE;
	if (len < FEC_PARITY_HDR + FEC_LEN_PREFIX)
		return FEC_ETRUNC;
	s->parity = 1;
	s->gid = wire_get32(p + 1);
	s->idx = p[5];
	s->k = p[6];
	s->m = p[7];
	s->body = p + FEC_PARITY_HDR;
	s->n = len - FEC_PARITY_HDR;
	if (s->k < 1 || s->k > d->c.data || s->m < 1 || s->m > d->c.parity ||
	    s->idx < s->k || s->idx >= s->k + s->m)
		return FEC_EHDR;
	if (s->n > FEC_LEN_PREFIX + (size_t)d->c.pkt_max)
		return FEC_ETOOBIG;
	return 0;
}

/* The slot of group gid, moving the window when gid is ahead (or
 * restarting it after FEC_RESYNC far shards in a row). */
static int
place(fec_dec_t *d, uint32_t gid, uint64_t now, struct group **gp)
{
	struct group *g;
	int32_t diff;

	if (!d->started) {
		d->started = 1;
		d->newest = gid;
	}
	diff = (int32_t)(gid - d->newest);
	if (diff > FEC_JUMP_MAX || diff < -FEC_JUMP_MAX) {
		if (++d->far_run < FEC_RESYNC) {
			d->st.far++;
			return FEC_EFAR;
		}
		fec_dec_reset(d);
		d->started = 1;
		d->newest = gid;
		d->st.resyncs++;
	} else if (diff <= -d->c.groups) {
		d->st.stale++;
		return FEC_ESTALE;
	} else if (diff > 0) {
		d->newest = gid;
		sweep(d, now);
	}
	d->far_run = 0;
	g = &d->g[gid & d->mask];
	if (g->live && g->gid != gid)
		evict(d, g);   /* cannot happen: the window is <= the ring */
	if (!g->live) {
		g->t0 = now;
		g->dseen = 0;
		g->pseen = 0;
		g->gid = gid;
		g->plen = g->dmax = 0;
		g->live = 1;
		g->state = G_OPEN;
		g->k = g->m = g->ndata = g->npar = 0;
	}
	*gp = g;
	return 0;
}

/* Keep a copy for a later recovery: len u16 | packet for a data shard
 * (prefixed), the payload as it is for parity. Out of memory gives the
 * group up (what arrives is still delivered). */
static void
store(fec_dec_t *d, struct group *g, int slot, const uint8_t *body, size_t n,
      int prefixed)
{
	size_t total = n + (prefixed ? FEC_LEN_PREFIX : 0);
	uint8_t *b = malloc(total ? total : 1);

	if (!b) {
		give_up(d, g);
		return;
	}
	if (prefixed) {
		wire_put16(b, (uint16_t)n);
		memcpy(b + FEC_LEN_PREFIX, body, n);
	} else {
		memcpy(b, body, n);
	}
	g->buf[slot] = b;
	g->blen[slot] = (uint16_t)total;
	d->mem += total;
}

static void
complete(fec_dec_t *d, struct group *g)
{
	g->state = G_DONE;
	drop_bufs(d, g);
}

/* Rebuild the missing data of g when enough shards are in; deliver it.
 * Returns the packets delivered. */
static int
recover(fec_dec_t *d, struct group *g, fec_deliver_fn deliver, void *user)
{
	uint8_t a[FEC_PARITY_MAX * FEC_PARITY_MAX];
	uint8_t inv[FEC_PARITY_MAX * FEC_PARITY_MAX];
	int miss[FEC_PARITY_MAX], rows[FEC_PARITY_MAX];
	uint8_t *out, *s;
	size_t L = g->plen;
	int e, r, c, i, j, k = g->k;

	if (g->state != G_OPEN || k == 0 || g->ndata >= k ||
	    g->ndata + g->npar < k)
		return 0;
	e = k - g->ndata;
	for (i = 0, c = 0; i < k; i++)
		if (!(g->dseen >> i & 1))
			miss[c++] = i;
	for (j = 0, r = 0; j < g->m && r < e; j++)
		if (g->buf[d->c.data + j])
			rows[r++] = j;
	for (r = 0; r < e; r++)
		for (c = 0; c < e; c++)
			a[r * e + c] = fec_coef(rows[r], miss[c]);
	out = calloc((size_t)e, L);
	if (!out || invert(a, inv, e) != 0) {
		free(out);
		give_up(d, g);
		return 0;
	}
	d->mem += (size_t)e * L;

	/* syndromes, in place of the parity copies: P_j minus the known
	 * data's part (a data copy is 2 + len bytes; its padding is zero) */
	for (r = 0; r < e; r++) {
		s = g->buf[d->c.data + rows[r]];
		for (i = 0; i < k; i++)
			if (g->dseen >> i & 1)
				fec_gf_muladd(s, g->buf[i], g->blen[i],
				              fec_coef(rows[r], i));
	}
	for (c = 0; c < e; c++)
		for (r = 0; r < e; r++)
			fec_gf_muladd(out + (size_t)c * L,
			              g->buf[d->c.data + rows[r]], L,
			              inv[c * e + r]);

	/* each result must be len | packet | zeros */
	for (c = 0; c < e; c++) {
		const uint8_t *b = out + (size_t)c * L;
		size_t n = wire_get16(b), x;
		int ok = n <= L - FEC_LEN_PREFIX && n <= (size_t)d->c.pkt_max;
		for (x = FEC_LEN_PREFIX + n; ok && x < L; x++)
			ok = b[x] == 0;
		if (!ok) {
			d->mem -= (size_t)e * L;
			free(out);
			d->st.bad_recovery++;
			give_up(d, g);
			return 0;
		}
	}
	for (c = 0; c < e; c++)
		g->dseen |= (uint64_t)1 << miss[c];
	g->ndata = (uint8_t)k;
	complete(d, g);
	for (c = 0; c < e; c++) {
		uint8_t *b = out + (size_t)c * L;
		d->st.delivered++;
		d->st.recovered++;
		deliver(b + FEC_LEN_PREFIX, wire_get16(b), user);
	}
	d->mem -= (size_t)e * L;
	free(out);
	return e;
}

static int
malformed(fec_dec_t *d, int err)
{
	d->st.malformed++;
	return err;
}

static int
data_in(fec_dec_t *d, struct group *g, const struct shard *s,
        fec_deliver_fn deliver, void *user)
{
	uint64_t bit = (uint64_t)1 << s->idx;
	size_t need = FEC_LEN_PREFIX + s->n;

	if ((g->k && s->idx >= g->k) || (g->plen && need > g->plen))
		return malformed(d, FEC_EGROUP);
	if (g->dseen & bit) {
		d->st.duplicates++;
		return FEC_EDUP;
	}
	if (g->state == G_OPEN)
		store(d, g, s->idx, s->body, s->n, 1);
	g->dseen |= bit;
	g->ndata++;
	if (need > g->dmax)
		g->dmax = (uint16_t)need;
	if (g->state == G_OPEN &&
	    ((g->k && g->ndata == g->k) || g->ndata == d->c.data))
		complete(d, g);
	d->st.delivered++;
	deliver(s->body, s->n, user);
	return 1 + recover(d, g, deliver, user);
}

static int
parity_in(fec_dec_t *d, struct group *g, const struct shard *s,
          fec_deliver_fn deliver, void *user)
{
	int j = s->idx - s->k;
	uint32_t bit = (uint32_t)1 << j;

	if ((g->k && (g->k != s->k || g->m != s->m)) ||
	    (g->plen && g->plen != s->n) || s->n < g->dmax ||
	    (s->k < 64 && g->dseen >> s->k))
		return malformed(d, FEC_EGROUP);
	if (g->pseen & bit) {
		d->st.duplicates++;
		return FEC_EDUP;
	}
	g->pseen |= bit;
	g->k = (uint8_t)s->k;
	g->m = (uint8_t)s->m;
	g->plen = (uint16_t)s->n;
	if (g->state != G_OPEN)
		return 0;
	if (g->ndata == g->k) {
		complete(d, g);
		return 0;
	}
	store(d, g, d->c.data + j, s->body, s->n, 0);
	if (g->state != G_OPEN)
		return 0;
	g->npar++;
	return recover(d, g, deliver, user);
}

int
fec_dec_input(fec_dec_t *d, uint8_t *shard, size_t len, uint64_t now,
              fec_deliver_fn deliver, void *user)
{
	struct group *g;
	struct shard s;
	int r;

	if (!deliver || (!shard && len > 0))
		return FEC_EINVAL;
	d->st.in_shards++;
	r = parse(d, shard, len, &s);
	if (r < 0)
		return malformed(d, r);
	if (s.parity)
		d->st.in_parity++;
	r = place(d, s.gid, now, &g);
	if (r < 0)
		return r;
	if (s.parity)
		return parity_in(d, g, &s, deliver, user);
	return data_in(d, g, &s, deliver, user);
}
