/* fuzz.h: what the libFuzzer targets in tests/fuzz/ share. Each target is one file,
 * fuzz_<name>.c, that defines LLVMFuzzerTestOneInput; tests/fuzz/run.sh builds and runs them.
 *
 * Rules every target keeps: deterministic (no clock, no randomness that changes the outcome),
 * no network, no sleeps, nothing leaked between runs (the fuzzer reports leaks), and scratch
 * files only on tmpfs (/dev/shm when it exists), made once and reset per run. */
#ifndef MS_FUZZ_H
#define MS_FUZZ_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property the code under test promised and broke: a finding, like a crash. The message goes
 * through the sanitizer's report channel, which libFuzzer keeps open under -close_fd_mask=2
 * (run.sh closes the targets' own stderr: the daemon's logs would drown everything). */
#include <sanitizer/common_interface_defs.h>

#define FUZZ_ASSERT(cond)                                                                          \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail(__FILE__, __LINE__, #cond);                                      \
	} while (0)

static inline void fuzz_fail(const char *file, int line, const char *what)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "fuzz property failed: %s:%d: %s", file, line, what);
	fprintf(stderr, "%s\n", msg);
	__sanitizer_report_error_summary(msg);
	abort();
}

/* What shared/conf_secret.c promises of a "user:password" it built: NULL, or a non-empty user
 * without ':' and a non-empty password. */
static inline int fuzz_userpwd_ok(const char *userpwd)
{
	const char *colon = userpwd ? strchr(userpwd, ':') : NULL;

	return !userpwd || (colon && colon != userpwd && colon[1] != '\0');
}

/* The input as a NUL-terminated string (it may hold NULs of its own: C code then sees the part
 * before the first). Never NULL: out of memory aborts, it is not a finding. */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A file holding exactly the input, for code that reads from a path: an anonymous memory file
 * reached through /proc/self/fd, made once and rewritten per run (no disk, no litter). */
static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	size_t off = 0;

	if (fd < 0) {
		fd = memfd_create("fuzz-input", MFD_CLOEXEC);
		if (fd < 0) {
			perror("memfd_create");
			abort();
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0)
		abort();
	while (off < size) {
		ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);

		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	return path;
}

static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

/* Empties DIR (keeps DIR itself). */
static inline void fuzz_empty_dir(const char *dir)
{
	nftw(dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *fuzz_scratch_buf(void)
{
	static char path[256];

	return path;
}

static inline void fuzz_scratch_remove(void)
{
	char *path = fuzz_scratch_buf();

	if (path[0] != '\0') {
		fuzz_empty_dir(path);
		rmdir(path);
	}
}

/* A private scratch directory on tmpfs, made on the first call and removed at exit (a crashed
 * run cannot: run.sh points FUZZ_SCRATCH at a directory of its own and removes that). */
static inline const char *fuzz_scratch_dir(void)
{
	char *path = fuzz_scratch_buf();
	struct stat st;

	if (path[0] != '\0')
		return path;
	const char *parent = getenv("FUZZ_SCRATCH"); /* run.sh's, removed after each target */

	if (!parent)
		parent = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
	snprintf(path, 256, "%s/ms-fuzz.XXXXXX", parent);
	if (!mkdtemp(path)) {
		perror("mkdtemp");
		abort();
	}
	atexit(fuzz_scratch_remove);
	return path;
}

/* Whether any string in the JSON input names a device, /proc or /sys path. The config loaders
 * read the files their *_file keys name; the fuzzer must not make them read a terminal or a
 * pipe that never ends (a hang of the harness, not of the code). */
#include <jansson.h>

static inline int fuzz_json_names_device(json_t *v)
{
	static const char *const bad[] = {"dev", "proc", "sys", "fd", NULL};
	const char *key;
	json_t *child;
	size_t i;

	if (json_is_string(v)) {
		for (i = 0; bad[i]; i++)
			if (memmem(json_string_value(v), json_string_length(v), bad[i],
				   strlen(bad[i])) != NULL)
				return 1;
		return 0;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, child) if (fuzz_json_names_device(child)) return 1;
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, child) if (fuzz_json_names_device(child)) return 1;
	}
	return 0;
}

static inline int fuzz_input_names_device(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, 0, NULL);
	int rc = fuzz_json_names_device(doc);

	json_decref(doc);
	return rc;
}

#endif
