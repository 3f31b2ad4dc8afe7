/* strhash: see strhash.h. */
#include "strhash.h"

uint32_t strhash(const char *s)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}
