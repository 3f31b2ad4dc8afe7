/* verify: `microscale-registry verify [--root DIR | -c FILE]` re-hashes every blob and manifest in
 * the store; one whose bytes do not match its name is moved aside to ROOT/quarantine/ (never
 * served again, kept for a post-mortem) and the command exits 1. Safe beside a running daemon: it
 * only reads, and a rename is atomic. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "registry.h"

#define VERIFY_CHUNK (1 << 20)

struct verify {
	const char *root;
	struct digest_ctx *dg;
	char *buf;
	long long files, bytes;
	int bad, errors;
};

/* Hashes FILE (a manifest's bytes start after its media-type line) into got. */
static int hash_file(struct verify *v, const char *file, int manifest, char got[DIGEST_STR_SIZE])
{
	int fd = open(file, O_RDONLY | O_CLOEXEC), skip = manifest, rc = -1;
	ssize_t n;

	if (fd < 0 || digest_reset(v->dg) < 0)
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

static void quarantine(struct verify *v, const char *file, const char *hex)
{
	char dst[PATH_MAX];

	snprintf(dst, sizeof(dst), "%s/quarantine", v->root);
	mkdir(dst, 0755);
	snprintf(dst, sizeof(dst), "%s/quarantine/%.64s.%lld", v->root, hex, (long long)time(NULL));
	if (rename(file, dst) == 0)
		log_error("verify_bad", "file=%s moved_to=%s", file, dst);
	else
		log_error("verify_bad", "file=%s error=\"cannot move aside: %s\"", file,
			  strerror(errno));
}

static void check_file(struct verify *v, const char *dir, const char *hex, int manifest)
{
	char file[PATH_MAX + 80], want[DIGEST_STR_SIZE], got[DIGEST_STR_SIZE];

	snprintf(file, sizeof(file), "%s/%.64s", dir, hex);
	snprintf(want, sizeof(want), "sha256:%.64s", hex);
	v->files++;
	if (hash_file(v, file, manifest, got) < 0) {
		log_error("verify_unreadable", "file=%s error=\"%s\"", file, strerror(errno));
		v->errors++;
	} else if (strcmp(got, want) != 0) {
		v->bad++;
		quarantine(v, file, hex);
	}
}

/* KIND/sha256/<2 hex>/<64 hex>: anything else in there is not ours and is left alone. */
static void check_kind(struct verify *v, const char *kind)
{
	char dir[PATH_MAX];
	int i;

	for (i = 0; i < 256; i++) {
		DIR *d;
		struct dirent *de;

		snprintf(dir, sizeof(dir), "%s/%s/sha256/%02x", v->root, kind, i);
		if (!(d = opendir(dir)))
			continue;
		while ((de = readdir(d)))
			if (strlen(de->d_name) == DIGEST_HEX_LEN &&
			    strspn(de->d_name, "0123456789abcdef") == DIGEST_HEX_LEN)
				check_file(v, dir, de->d_name, kind[0] == 'm');
		closedir(d);
	}
}

static int verify_usage(FILE *out)
{
	fprintf(out, "usage: microscale-registry verify [--root DIR | -c FILE]\n");
	return out == stdout ? 0 : 2;
}

int verify_main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"root", required_argument, NULL, 'R'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *config = NULL, *root = NULL;
	struct verify v = {0};
	struct store s = {0};
	char err[512];
	int ch;

	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'R':
			root = optarg;
			break;
		case 'h':
			return verify_usage(stdout);
		default:
			return verify_usage(stderr);
		}
	}
	if (optind != argc)
		return verify_usage(stderr);
	if (archive_store_open(&s, config, root, err, sizeof(err)) != 0) {
		fprintf(stderr, "microscale-registry verify: %s\n", err);
		return 1;
	}
	v.root = s.root;
	v.dg = digest_new();
	v.buf = malloc(VERIFY_CHUNK);
	if (v.dg && v.buf) {
		check_kind(&v, "blobs");
		check_kind(&v, "manifests");
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
