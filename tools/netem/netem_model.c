/*
 * netem_model.c - the impairment model of moongate-netem (netem_model.h):
 * the `set` grammar, the PRNG, and the fate of each datagram and chunk.
 *
 * UDP, per datagram: blackhole, then loss drop it; dup makes a second
 * copy; each copy waits for the rate cap (the flow's link sends one copy
 * after the other, len / rate seconds each; a copy that would find more
 * than queue_max bytes waiting ahead of it is tail-dropped), then for
 * delay +- jitter, and, with probability reorder, for reorder_ms more.
 * Jitter alone reorders datagrams too, as Linux netem does.
 *
 * TCP, per chunk read: delay +- jitter, but never before the bytes read
 * before it. Loss, dup and reorder do not apply (a TCP stream loses
 * nothing); the rate cap is a token bucket on the writing side.
 *
 * Random numbers are drawn only for the impairments that are on, in a
 * fixed order, so a seed and the order of the datagrams fix every drop.
 */
#include "netem_model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DURATION_MAX_MS 3600000.0   /* an hour */
#define RATE_MAX 1e12               /* bytes per second */

void
netem_settings_clear(struct netem_settings *s)
{
	memset(s, 0, sizeof *s);
	for (int p = 0; p < 2; p++)
		for (int d = 0; d < 2; d++)
			s->imp[p][d].reorder_ms = NETEM_REORDER_MS;
}

/* ---- values ------------------------------------------------------------- */

/* A finite number at the start of v; *end after it. */
static int
number(const char *v, double *out, const char **end)
{
	char *e;
	if (!*v || strchr(" \t", *v))
		return -1;
	double x = strtod(v, &e);
	if (e == v || !isfinite(x))
		return -1;
	/* no hex floats, inf or nan spelled out */
	for (const char *p = v; p < e; p++)
		if (!strchr("0123456789.-+eE", *p))
			return -1;
	*out = x;
	*end = e;
	return 0;
}

static int
probability(const char *v, double *out)
{
	const char *e;
	double x;
	if (number(v, &x, &e) < 0)
		return -1;
	if (!strcmp(e, "%"))
		x /= 100;
	else if (*e)
		return -1;
	if (!(x >= 0 && x <= 1))
		return -1;
	*out = x;
	return 0;
}

static int
duration(const char *v, double *out)
{
	const char *e;
	double x;
	if (number(v, &x, &e) < 0)
		return -1;
	if (!strcmp(e, "s"))
		x *= 1000;
	else if (*e && strcmp(e, "ms"))
		return -1;
	if (!(x >= 0 && x <= DURATION_MAX_MS))
		return -1;
	*out = x;
	return 0;
}

static int
rate(const char *v, double *out)
{
	static const struct { const char *unit; double mul; int icase; } units[] = {
		{ "", 1, 0 }, { "B", 1, 0 }, { "kB", 1e3, 0 }, { "MB", 1e6, 0 },
		{ "kbit", 1e3 / 8, 1 }, { "mbit", 1e6 / 8, 1 },
	};
	const char *e;
	double x;
	if (number(v, &x, &e) < 0)
		return -1;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (units[i].icase ? !strcasecmp(e, units[i].unit)
		                   : !strcmp(e, units[i].unit)) {
			x *= units[i].mul;
			if (!(x >= 0 && x <= RATE_MAX))
				return -1;
			*out = x;
			return 0;
		}
	}
	return -1;
}

static int
flag(const char *v, int *out)
{
	if (!strcmp(v, "1") || !strcmp(v, "on") || !strcmp(v, "true"))
		*out = 1;
	else if (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "false"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* ---- set ---------------------------------------------------------------- */

enum kind { PROB, DUR, RATE, FLAG };
enum where { EACH, UDP_ONLY, GLOBAL };   /* GLOBAL: a TCP-wide flag */

static const struct key {
	const char *name;
	enum kind kind;
	enum where where;
	size_t off;          /* in struct netem_imp (EACH, UDP_ONLY) */
	const char *want;
} keys[] = {
	{ "loss", PROB, UDP_ONLY, offsetof(struct netem_imp, loss), "a probability (0..1 or N%)" },
	{ "dup", PROB, UDP_ONLY, offsetof(struct netem_imp, dup), "a probability (0..1 or N%)" },
	{ "reorder", PROB, UDP_ONLY, offsetof(struct netem_imp, reorder), "a probability (0..1 or N%)" },
	{ "reorder_ms", DUR, UDP_ONLY, offsetof(struct netem_imp, reorder_ms), "milliseconds (0..3600000; or Ns)" },
	{ "delay", DUR, EACH, offsetof(struct netem_imp, delay_ms), "milliseconds (0..3600000; or Ns)" },
	{ "jitter", DUR, EACH, offsetof(struct netem_imp, jitter_ms), "milliseconds (0..3600000; or Ns)" },
	{ "rate", RATE, EACH, offsetof(struct netem_imp, rate), "bytes per second (or Nkbit, Nmbit, NkB, NMB; 0: no cap)" },
	{ "blackhole", FLAG, EACH, offsetof(struct netem_imp, blackhole), "0 or 1" },
	{ "stall", FLAG, GLOBAL, 0, "0 or 1" },
	{ "refuse", FLAG, GLOBAL, 0, "0 or 1" },
};
#define NKEYS (sizeof keys / sizeof keys[0])
#define KEY_NAMES "loss dup reorder reorder_ms delay jitter rate blackhole stall refuse"
#define TOKENS_MAX 64

static int __attribute__((format(printf, 3, 4)))
errorf(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int
netem_settings_apply(struct netem_settings *s, const char *args, char *err,
                     size_t errlen)
{
	char buf[1024];
	char *tok[TOKENS_MAX];
	int ntok = 0;
	if (strlen(args) >= sizeof buf)
		return errorf(err, errlen, "set: too long (max %zu bytes)",
		              sizeof buf - 1);
	strcpy(buf, args);
	char *save = NULL;
	for (char *p = strtok_r(buf, " \t\r\n", &save); p;
	     p = strtok_r(NULL, " \t\r\n", &save)) {
		if (ntok == TOKENS_MAX)
			return errorf(err, errlen, "set: too many words (max %d)",
			              TOKENS_MAX);
		tok[ntok++] = p;
	}

	/* the scope first: it applies to every key=value of the command */
	int dirs[2] = { 0, 0 }, protos[2] = { 0, 0 }, pairs = 0;
	for (int i = 0; i < ntok; i++) {
		const char *t = tok[i];
		if (strchr(t, '='))
			pairs++;
		else if (!strcmp(t, "up"))
			dirs[NETEM_UP] = 1;
		else if (!strcmp(t, "down"))
			dirs[NETEM_DOWN] = 1;
		else if (!strcmp(t, "both"))
			dirs[NETEM_UP] = dirs[NETEM_DOWN] = 1;
		else if (!strcmp(t, "udp"))
			protos[NETEM_UDP] = 1;
		else if (!strcmp(t, "tcp"))
			protos[NETEM_TCP] = 1;
		else
			return errorf(err, errlen, "unknown word '%s' (scope: up down "
			              "both udp tcp; then key=value with keys: %s)", t,
			              KEY_NAMES);
	}
	if (!pairs)
		return errorf(err, errlen, "set: nothing to set (key=value with "
		              "keys: %s)", KEY_NAMES);
	int proto_given = protos[0] || protos[1];
	if (!dirs[0] && !dirs[1])
		dirs[0] = dirs[1] = 1;
	if (!proto_given)
		protos[0] = protos[1] = 1;

	struct netem_settings n = *s;
	for (int i = 0; i < ntok; i++) {
		char *eq = strchr(tok[i], '=');
		if (!eq)
			continue;
		*eq = 0;
		const char *name = tok[i], *v = eq + 1;
		const struct key *k = NULL;
		for (size_t j = 0; j < NKEYS; j++)
			if (!strcmp(keys[j].name, name))
				k = &keys[j];
		if (!k)
			return errorf(err, errlen, "unknown key '%s' (keys: %s)", name,
			              KEY_NAMES);
		double x = 0;
		int f = 0, bad;
		switch (k->kind) {
		case PROB: bad = probability(v, &x); break;
		case DUR: bad = duration(v, &x); break;
		case RATE: bad = rate(v, &x); break;
		default: bad = flag(v, &f); break;
		}
		if (bad)
			return errorf(err, errlen, "%s: '%.40s' is not %s", name, v,
			              k->want);
		if (k->where == GLOBAL) {
			if (!protos[NETEM_TCP])
				return errorf(err, errlen, "%s: a tcp setting (the scope "
				              "is udp only)", name);
			if (!strcmp(name, "stall"))
				n.stall = f;
			else
				n.refuse = f;
			continue;
		}
		if (k->where == UDP_ONLY && proto_given && protos[NETEM_TCP])
			return errorf(err, errlen, "%s: udp only (a tcp stream loses, "
			              "duplicates and reorders nothing)", name);
		for (int p = 0; p < 2; p++) {
			if (!protos[p] || (k->where == UDP_ONLY && p == NETEM_TCP))
				continue;
			for (int d = 0; d < 2; d++) {
				if (!dirs[d])
					continue;
				char *field = (char *)&n.imp[p][d] + k->off;
				if (k->kind == FLAG)
					*(int *)field = f;
				else
					*(double *)field = x;
			}
		}
	}
	*s = n;
	return 0;
}

int
netem_settings_format(const struct netem_settings *s, char *buf, size_t n)
{
	static const char *pname[2] = { "udp", "tcp" }, *dname[2] = { "up", "down" };
	size_t len = 0;
	for (int p = 0; p < 2; p++) {
		for (int d = 0; d < 2; d++) {
			const struct netem_imp *m = &s->imp[p][d];
			char pre[16];
			snprintf(pre, sizeof pre, "%s_%s_", pname[p], dname[d]);
			int w;
			if (p == NETEM_UDP)
				w = snprintf(buf + len, len < n ? n - len : 0,
				             "%sloss=%g %sdup=%g %sreorder=%g %sreorder_ms=%g ",
				             pre, m->loss, pre, m->dup, pre, m->reorder, pre,
				             m->reorder_ms);
			else
				w = 0;
			len += (size_t)w;
			w = snprintf(buf + len, len < n ? n - len : 0,
			             "%sdelay=%g %sjitter=%g %srate=%.0f %sblackhole=%d ",
			             pre, m->delay_ms, pre, m->jitter_ms, pre, m->rate, pre,
			             m->blackhole);
			len += (size_t)w;
		}
	}
	len += (size_t)snprintf(buf + len, len < n ? n - len : 0,
	                        "stall=%d refuse=%d", s->stall, s->refuse);
	return (int)len;
}

/* ---- PRNG --------------------------------------------------------------- */

void
netem_rng_seed(struct netem_rng *r, uint64_t seed)
{
	r->s = seed;
}

double
netem_rng_next(struct netem_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- decisions ---------------------------------------------------------- */

static double
delay_s(const struct netem_imp *imp, struct netem_rng *r)
{
	double ms = imp->delay_ms;
	if (imp->jitter_ms > 0)
		ms += (2 * netem_rng_next(r) - 1) * imp->jitter_ms;
	return ms > 0 ? ms / 1000 : 0;
}

void
netem_udp(const struct netem_imp *imp, struct netem_link *l,
          struct netem_rng *r, double now, size_t len, size_t queue_max,
          struct netem_verdict *v)
{
	memset(v, 0, sizeof *v);
	if (imp->blackhole || (imp->loss > 0 && netem_rng_next(r) < imp->loss)) {
		v->dropped = 1;
		return;
	}
	int copies = 1;
	if (imp->dup > 0 && netem_rng_next(r) < imp->dup) {
		copies = 2;
		v->duplicated = 1;
	}
	for (int i = 0; i < copies; i++) {
		double t = now;
		if (imp->rate > 0) {
			double start = l->free_at > now ? l->free_at : now;
			if ((start - now) * imp->rate + (double)len > (double)queue_max) {
				v->overflow++;
				continue;
			}
			l->free_at = start + (double)len / imp->rate;
			t = l->free_at;
		}
		t += delay_s(imp, r);
		if (imp->reorder > 0 && netem_rng_next(r) < imp->reorder) {
			t += imp->reorder_ms / 1000;
			v->reordered++;
		}
		v->at[v->n++] = t;
	}
}

double
netem_tcp_release(const struct netem_imp *imp, struct netem_rng *r,
                  double now, double last)
{
	double t = now + delay_s(imp, r);
	return t > last ? t : last;
}

/* ---- the TCP token bucket ----------------------------------------------- */

static double
depth(double rate)
{
	double d = rate * 0.02;
	return d > 1460 ? d : 1460;
}

size_t
netem_bucket_avail(struct netem_bucket *b, double rate, double now)
{
	if (rate <= 0)
		return SIZE_MAX;
	if (b->t == 0 || now < b->t) {  /* new: full */
		b->tokens = depth(rate);
	} else {
		b->tokens += (now - b->t) * rate;
		if (b->tokens > depth(rate))
			b->tokens = depth(rate);
	}
	b->t = now;
	return b->tokens >= 1 ? (size_t)b->tokens : 0;
}

void
netem_bucket_take(struct netem_bucket *b, double rate, size_t n)
{
	if (rate > 0)
		b->tokens -= (double)n;
}

double
netem_bucket_wait(const struct netem_bucket *b, double rate, size_t want)
{
	if (rate <= 0)
		return 0;
	/* wait for about 10 ms worth, or want, not for every byte */
	double q = rate / 100;
	if (q < 1)
		q = 1;
	if ((double)want < q)
		q = (double)want;
	if (q > depth(rate))
		q = depth(rate);
	return b->tokens >= q ? 0 : (q - b->tokens) / rate;
}
