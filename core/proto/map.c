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
	m->slots = NULL;
	m->cap = m->count = m->used = 0;
}

void
map_clear(struct map *m)
{
	free(m->slots);
	map_init(m);
}

void *
map_get(const struct map *m, uint64_t key)
{
	if (!m->cap || !key)
		return NULL;
	for (uint32_t i = slot(key, m->cap), n = 0; n < m->cap;
	     i = (i + 1) & (m->cap - 1), n++) {
		if (m->slots[i].key == 0)
			return NULL;
		if (m->slots[i].key == key && m->slots[i].val)
			return m->slots[i].val;
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
	struct map_slot *slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -1;
	for (uint32_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].key || !m->slots[i].val)
			continue;
		uint32_t j = slot(m->slots[i].key, cap);
		while (slots[j].key)
			j = (j + 1) & (cap - 1);
		slots[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = slots;
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
		if (m->slots[i].key == 0)
			break;
		if (m->slots[i].key == key && m->slots[i].val) {
			m->slots[i].val = val;
			return 0;
		}
		if (!m->slots[i].val && tomb == UINT32_MAX)
			tomb = i;
	}
	if (tomb != UINT32_MAX) {
		i = tomb;
	} else {
		m->used++;
	}
	m->slots[i].key = key;
	m->slots[i].val = val;
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
		if (m->slots[i].key == 0)
			return -1;
		if (m->slots[i].key == key && m->slots[i].val) {
			m->slots[i].val = val;
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
		if (m->slots[i].key == 0)
			return NULL;
		if (m->slots[i].key == key && m->slots[i].val) {
			void *v = m->slots[i].val;
			m->slots[i].val = NULL; /* tombstone; the key stays */
			m->count--;
			return v;
		}
	}
	return NULL;
}

size_t
map_memsize(const struct map *m)
{
	return (size_t)m->cap * sizeof *m->slots;
}
