/* verify: `microscale-registry verify [--root DIR | -c FILE]` re-hashes every blob and manifest in
 * the store; one whose bytes do not match its name, or that is not a regular file at all (a
 * symbolic link, a FIFO: never followed nor waited on), is moved aside to ROOT/quarantine/
 * (never served again, kept for a post-mortem) and the command exits 1. Safe beside a running
 * daemon: it only reads, and a rename is atomic. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry.h"

#define VERIFY_CHUNK (1 << 20)

struct verify {
	struct store *s;
	struct digest_ctx *dg;
	char *buf;
	long long files, bytes;
	int bad, errors;
};

/* Hashes FILE (a manifest's bytes start after its media-type line) into got. -1 with errno;
 * *foreign when FILE turned out not to be a regular file (it is then not read). */
static int hash_file(struct verify *v, const char *file, int manifest, char got[DIGEST_STR_SIZE],
		     int *foreign)
{
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), skip = manifest,
	    rc = -1;
	struct stat st;
	ssize_t n;

	*foreign = fd < 0 && errno == ELOOP;
	if (fd < 0 || fstat(fd, &st) != 0)
		goto out;
	if (!S_ISREG(st.st_mode)) { /* replaced since it was listed */
		*foreign = 1;
		goto out;
	}
	if (digest_reset(v->dg) < 0)
		goto out;
	while ((n = read(fd, v->buf, VERIFY_CHUNK)) > 0) {
		char *p = v->buf;

		if (skip) { /* the first line is the media type, not content */
			char *nl = memchr(p, '\n', (size_t)n);

			if (!nl)
				continue;
			skip = 0;
			n -= nl + 1 - p;
			p = nl + 1;
		}
		v->bytes += n;
		if (digest_update(v->dg, p, (size_t)n) < 0)
			goto out;
	}
	rc = n == 0 && !skip ? digest_final(v->dg, got) : -1;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static void quarantine(struct verify *v, const struct store_object *o, const char *why)
{
	char dst[PATH_MAX];

	v->bad++;
	if (store_quarantine(v->s, o, dst) == 0)
		log_error("verify_bad", "file=%s reason=\"%s\" moved_to=%s", o->path, why, dst);
	else
		log_error("verify_bad", "file=%s reason=\"%s\" error=\"cannot move aside: %s\"",
			  o->path, why, strerror(errno));
}

static int check_object(void *arg, const struct store_object *o)
{
	struct verify *v = arg;
	char got[DIGEST_STR_SIZE];
	int foreign = o->foreign;

	v->files++;
	if (!foreign && hash_file(v, o->path, o->kind == STORE_MANIFEST, got, &foreign) < 0 &&
	    !foreign) {
		log_error("verify_unreadable", "file=%s error=\"%s\"", o->path, strerror(errno));
		v->errors++;
	} else if (foreign) {
		quarantine(v, o, "not a regular file");
	} else if (strcmp(got, o->digest) != 0) {
		quarantine(v, o, "digest mismatch");
	}
	return 0;
}

static int verify_usage(FILE *out)
{
	fprintf(out, "usage: microscale-registry verify [--root DIR | -c FILE]\n");
	return out == stdout ? 0 : 2;
}

int verify_main(int argc, char **argv)
{
	struct archive_opts o = {0};
	struct verify v = {0};
	struct store s = {0};
	char err[512];
	int ch = archive_getopt(argc, argv, "", NULL, &o);

	if (ch != -1)
		return verify_usage(ch == 'h' ? stdout : stderr);
	if (optind != argc)
		return verify_usage(stderr);
	if (archive_store_open(&s, o.config, o.root, err, sizeof(err)) != 0) {
		fprintf(stderr, "microscale-registry verify: %s\n", err);
		return 1;
	}
	v.s = &s;
	v.dg = digest_new();
	v.buf = malloc(VERIFY_CHUNK);
	if (v.dg && v.buf) {
		store_each(&s, STORE_BLOB, check_object, &v);
		store_each(&s, STORE_MANIFEST, check_object, &v);
	} else {
		v.errors++;
	}
	log_info("verify_done", "root=%s files=%lld bytes=%lld bad=%d unreadable=%d", s.root,
		 v.files, v.bytes, v.bad, v.errors);
	printf("verify: %lld files, %lld bytes, %d bad, %d unreadable\n", v.files, v.bytes, v.bad,
	       v.errors);
	digest_free(v.dg);
	free(v.buf);
	store_close(&s);
	return v.bad || v.errors ? 1 : 0;
}
