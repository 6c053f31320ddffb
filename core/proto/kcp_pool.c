/*
 * kcp_pool.c - payload buffers for core/proto/kcp.c, by size class, recycled
 * through free lists that belong to the calling thread.
 *
 * Classes are 64, 96, 128, 192, 256, ... 65536 bytes (powers of two and
 * the midpoints between them: at most a third wasted), so a busy KCP
 * object does not go through malloc and free for every segment. The lists
 * belong to the thread, not to an object: a buffer one object has just
 * freed (still in cache) is what the next object gets, and an idle object
 * holds nothing. A list is an array of pointers, not links through the
 * buffers, so freeing a buffer does not touch its (cold) memory. The lists
 * hold at most POOL_MAX bytes; kcp_pool_trim() releases them.
 */
#include "kcp_pool.h"

#include <stdlib.h>

#define NCLASS 21           /* 64 B .. 64 KiB */
#define POOL_MAX (4u << 20) /* bytes kept in the free lists, per thread */

struct pool {
	size_t bytes;           /* held in the lists */
	char **list[NCLASS];
	uint32_t n[NCLASS], cap[NCLASS];
};

static _Thread_local struct pool pool;

char *
kcp_pool_get(int c)
{
	if (pool.n[c]) {
		pool.bytes -= kcp_pool_class_bytes(c);
		return pool.list[c][--pool.n[c]];
	}
	return malloc(kcp_pool_class_bytes(c));
}

void
kcp_pool_put(char *p, int c)
{
	uint32_t size = kcp_pool_class_bytes(c);
	if (pool.n[c] < pool.cap[c] && pool.bytes + size <= POOL_MAX) {
		pool.list[c][pool.n[c]++] = p;
		pool.bytes += size;
		return;
	}
	if (pool.bytes + size > POOL_MAX)
		goto drop;
	uint32_t cap = pool.cap[c] ? 2 * pool.cap[c] : 64;
	char **l = realloc(pool.list[c], cap * sizeof(*l));
	if (!l)
		goto drop;
	pool.list[c] = l;
	pool.cap[c] = cap;
	pool.list[c][pool.n[c]++] = p;
	pool.bytes += size;
	return;
drop:
	free(p);
}

size_t
kcp_pool_size(void)
{
	size_t n = pool.bytes;
	for (int c = 0; c < NCLASS; c++)
		n += pool.cap[c] * sizeof(char *);
	return n;
}

void
kcp_pool_trim(void)
{
	for (int c = 0; c < NCLASS; c++) {
		while (pool.n[c])
			free(pool.list[c][--pool.n[c]]);
		free(pool.list[c]);
		pool.list[c] = NULL;
		pool.cap[c] = 0;
	}
	pool.bytes = 0;
}
