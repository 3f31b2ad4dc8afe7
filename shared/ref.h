/* ref: repository names, tags and references per the Distribution spec grammar. */
#ifndef MS_REF_H
#define MS_REF_H

#include <stddef.h>

#define REF_NAME_MAX 255
#define REF_TAG_MAX 128

/* path-component ("/" path-component)*, each [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, total <= 255. */
int ref_name_valid(const char *name, size_t len);
/* [A-Za-z0-9_][A-Za-z0-9._-]{0,127} */
int ref_tag_valid(const char *tag);
/* A registry host as used in "?ns=" and references: host[:port], DNS labels or an IP literal. */
int ref_host_valid(const char *host);

#endif
