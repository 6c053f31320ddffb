/*
 * map.c - see map.h.
 */
#include "map.h"

#include <stdlib.h>

#define MIN_CAP 16

static inline uint32_t
slot(uint64_t key, uint32_t cap)
{
	return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

void
map_init(struct map *m)
{
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->count = m->used = 0;
}

void
map_clear(struct map *m)
{
	free(m->keys);
	free(m->vals);
	map_init(m);
}

void *
map_get(const struct map *m, uint64_t key)
{
	if (!m->cap || !key)
		return NULL;
	for (uint32_t i = slot(key, m->cap), n = 0; n < m->cap;
	     i = (i + 1) & (m->cap - 1), n++) {
		if (m->keys[i] == 0)
			return NULL;
		if (m->keys[i] == key && m->vals[i])
			return m->vals[i];
	}
	return NULL;
}

static int
grow(struct map *m)
{
	uint32_t cap = m->cap ? m->cap : MIN_CAP;
	while (m->count * 2 + 2 > cap)
		cap *= 2;
	if (cap == m->cap && m->used * 2 + 2 <= cap)
		return 0;
	uint64_t *keys = calloc(cap, sizeof *keys);
	void **vals = calloc(cap, sizeof *vals);
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -1;
	}
	for (uint32_t i = 0; i < m->cap; i++) {
		if (!m->keys[i] || !m->vals[i])
			continue;
		uint32_t j = slot(m->keys[i], cap);
		while (keys[j])
			j = (j + 1) & (cap - 1);
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	m->used = m->count;
	return 0;
}

int
map_put(struct map *m, uint64_t key, void *val)
{
	if (!key || !val)
		return -1;
	if ((m->used + 1) * 2 > m->cap && grow(m))
		return -1;
	uint32_t tomb = UINT32_MAX;
	uint32_t i = slot(key, m->cap);
	for (;; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == 0)
			break;
		if (m->keys[i] == key && m->vals[i]) {
			m->vals[i] = val;
			return 0;
		}
		if (!m->vals[i] && tomb == UINT32_MAX)
			tomb = i;
	}
	if (tomb != UINT32_MAX) {
		i = tomb;
	} else {
		m->used++;
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
	return 0;
}

int
map_replace(struct map *m, uint64_t key, void *val)
{
	if (!m->cap || !key || !val)
		return -1;
	for (uint32_t i = slot(key, m->cap), n = 0; n < m->cap;
	     i = (i + 1) & (m->cap - 1), n++) {
		if (m->keys[i] == 0)
			return -1;
		if (m->keys[i] == key && m->vals[i]) {
			m->vals[i] = val;
			return 0;
		}
	}
	return -1;
}

void *
map_del(struct map *m, uint64_t key)
{
	if (!m->cap || !key)
		return NULL;
	for (uint32_t i = slot(key, m->cap), n = 0; n < m->cap;
	     i = (i + 1) & (m->cap - 1), n++) {
		if (m->keys[i] == 0)
			return NULL;
		if (m->keys[i] == key && m->vals[i]) {
			void *v = m->vals[i];
			m->vals[i] = NULL; /* tombstone; the key stays */
			m->count--;
			return v;
		}
	}
	return NULL;
}

size_t
map_memsize(const struct map *m)
{
	return (size_t)m->cap * (sizeof *m->keys + sizeof *m->vals);
}
