/*
 * map.h - an open-addressing hash map from a nonzero uint64 key to a
 * pointer, with linear probing and tombstones. Keys are expected to be
 * well mixed already (random ids, or a keyed hash such as SipHash for
 * anything derived from peer input); the map does no hashing of its own
 * beyond a multiplicative spread.
 *
 * The map grows at 50% load (counting tombstones) and never shrinks below
 * its initial capacity; map_clear frees everything.
 */
#ifndef MOONGATE_MAP_H
#define MOONGATE_MAP_H

#include <stddef.h>
#include <stdint.h>

/* A key and its value side by side: a lookup touches one cache line. */
struct map_slot {
	uint64_t key;   /* 0: empty */
	void *val;      /* NULL with a nonzero key: tombstone */
};

struct map {
	struct map_slot *slots;
	uint32_t cap;   /* power of two, or 0 before the first insert */
	uint32_t count; /* live entries */
	uint32_t used;  /* live entries plus tombstones */
};

void map_init(struct map *m);
void map_clear(struct map *m);
/* The value for key, or NULL. */
void *map_get(const struct map *m, uint64_t key);
/* Insert or replace; val must not be NULL. 0, or -1 out of memory. */
int map_put(struct map *m, uint64_t key, void *val);
/* Replace the value of a key already present, in place: never allocates
 * (map_put may grow first). 0, or -1 when key is absent or val NULL. */
int map_replace(struct map *m, uint64_t key, void *val);
/* Remove key; returns the value it had, or NULL. */
void *map_del(struct map *m, uint64_t key);
size_t map_memsize(const struct map *m);

#endif
