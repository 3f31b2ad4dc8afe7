/* strhash: FNV-1a of a NUL-terminated string, to pick a bucket or slot in the small in-memory
 * tables (memo, upstream misses, tracked images). Not keyed: every table that uses it bounds
 * its chains some other way, so chosen keys cost time, never memory. */
#ifndef STRHASH_H
#define STRHASH_H

#include <stdint.h>

uint32_t strhash(const char *s);

#endif
