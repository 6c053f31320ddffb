/*
 * kcp_pool.h - payload buffers for core/proto/kcp.c (internal), by size class:
 * get a buffer of class kcp_pool_class(len), give it back with the same
 * class. The public kcp_pool_size() and kcp_pool_trim() are in kcp.h.
 */
#ifndef MOONGATE_KCP_POOL_H
#define MOONGATE_KCP_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Size class of a len-byte payload: 64, 96, 128, 192, 256, ... 65536. */
static inline int
kcp_pool_class(uint32_t len)
{
	if (len <= 64)
		return 0;
	int b = 32 - __builtin_clz(len - 1); /* 2^(b-1) < len <= 2^b */
	return len <= 3u << (b - 2) ? 2 * (b - 7) + 1 : 2 * (b - 6);
}

/* Bytes a buffer of class c takes. */
static inline uint32_t
kcp_pool_class_bytes(int c)
{
	return (c & 1 ? 96u : 64u) << (c >> 1);
}

char *kcp_pool_get(int c);        /* NULL when out of memory */
void kcp_pool_put(char *p, int c);
size_t kcp_pool_size(void);
void kcp_pool_trim(void);

#endif
