/*
 * kcp_pool.h - payload buffers for core/kcp.c (internal). A buffer for
 * len bytes takes kcp_pool_bytes(len) bytes; give it back with the same
 * len. The public kcp_pool_size() and kcp_pool_trim() are in kcp.h.
 */
#ifndef MOONGATE_KCP_POOL_H
#define MOONGATE_KCP_POOL_H

#include <stddef.h>
#include <stdint.h>

uint32_t kcp_pool_bytes(uint32_t len);
char *kcp_pool_get(uint32_t len);        /* NULL when out of memory */
void kcp_pool_put(char *p, uint32_t len);
size_t kcp_pool_size(void);
void kcp_pool_trim(void);

#endif
