/* fuzz_import_json: docker save's manifest.json and the OCI layout's index.json as an import
 * reads them (registry/archive_import.c's plan_docker and plan_oci, through import_file). The
 * archive around the document is fixed and sound: a config, a plain layer and a gzipped one
 * (docker-archive: named by digest, by a legacy layer directory and through a symbolic link; OCI:
 * under blobs/sha256/, with an image manifest and a nested index for linux/amd64). Input: one
 * byte (even: docker-archive, the rest is manifest.json; odd: OCI layout, the rest is
 * index.json). Run with FUZZ_FIXTURE=1 to print the fixture's names and digests for seeds. */
#include "fuzz_import.h"

#define TAR_MAX (1024 * 1024)
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
/* of an arm64 image the archive does not hold */
#define ABSENT_HEX "0000000000000000000000000000000000000000000000000000000000000001"

static const char layer1[] = "layer one\n";
/* gzip -n of "layer two\n" */
static const unsigned char layer2[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03,
				       0xcb, 0x49, 0xac, 0x4c, 0x2d, 0x52, 0x28, 0x29, 0xcf, 0xe7,
				       0x02, 0x00, 0x30, 0xa4, 0xa0, 0x39, 0x0a, 0x00, 0x00, 0x00};

static struct {
	char l1[DIGEST_STR_SIZE], l2[DIGEST_STR_SIZE], l2_diff[DIGEST_STR_SIZE];
	char cfg[DIGEST_STR_SIZE], man[DIGEST_STR_SIZE], idx[DIGEST_STR_SIZE];
	char config[512], manifest[1024], index[1024];
} fx;

static unsigned char *tar;

static void fixture(void)
{
	if (digest_buffer(layer1, strlen(layer1), fx.l1) != 0 ||
	    digest_buffer(layer2, sizeof(layer2), fx.l2) != 0 ||
	    digest_buffer("layer two\n", 10, fx.l2_diff) != 0)
		abort();
	snprintf(fx.config, sizeof(fx.config),
		 "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		 "\"diff_ids\":[\"%s\",\"%s\"]}}",
		 fx.l1, fx.l2_diff);
	if (digest_buffer(fx.config, strlen(fx.config), fx.cfg) != 0)
		abort();
	snprintf(fx.manifest, sizeof(fx.manifest),
		 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
		 "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":"
		 "\"%s\",\"size\":%zu},{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
		 MT_OCI_MANIFEST, MT_OCI_CONFIG, fx.cfg, strlen(fx.config), MT_OCI_LAYER, fx.l1,
		 strlen(layer1), MT_OCI_LAYER_GZIP, fx.l2, sizeof(layer2));
	if (digest_buffer(fx.manifest, strlen(fx.manifest), fx.man) != 0)
		abort();
	snprintf(fx.index, sizeof(fx.index),
		 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
		 "\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"architecture\":\"amd64\",\"os\":"
		 "\"linux\"}},{\"mediaType\":\"%s\",\"digest\":\"sha256:%s\",\"size\":558,"
		 "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}}]}",
		 MT_OCI_INDEX, MT_OCI_MANIFEST, fx.man, strlen(fx.manifest), MT_OCI_MANIFEST,
		 ABSENT_HEX);
	if (digest_buffer(fx.index, strlen(fx.index), fx.idx) != 0)
		abort();
	if (getenv("FUZZ_FIXTURE"))
		printf("layer1 %s %zu\nlayer2 %s %zu\nconfig %s %zu\nmanifest %s %zu\n"
		       "index %s %zu\n",
		       fx.l1, strlen(layer1), fx.l2, sizeof(layer2), fx.cfg, strlen(fx.config),
		       fx.man, strlen(fx.manifest), fx.idx, strlen(fx.index));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	import_setup();
	fixture();
	tar = malloc(TAR_MAX);
	if (!tar)
		abort();
	return 0;
}

static void add(struct archive *a, const char *name, const void *data, size_t len,
		const char *symlink)
{
	struct archive_entry *e = archive_entry_new();

	if (!e)
		abort();
	archive_entry_set_pathname(e, name);
	archive_entry_set_mtime(e, 0, 0);
	if (symlink) {
		archive_entry_set_filetype(e, AE_IFLNK);
		archive_entry_set_perm(e, 0777);
		archive_entry_set_symlink(e, symlink);
		archive_entry_set_size(e, 0);
	} else {
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0444);
		archive_entry_set_size(e, (la_int64_t)len);
	}
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (!symlink && len > 0 && archive_write_data(a, data, len) != (la_ssize_t)len)) {
		fprintf(stderr, "writing %s: %s\n", name, archive_error_string(a));
		abort();
	}
	archive_entry_free(e);
}

static void blob(struct archive *a, const char *digest, const void *data, size_t len)
{
	char name[128];

	snprintf(name, sizeof(name), "blobs/sha256/%s", digest_hex(digest));
	add(a, name, data, len, NULL);
}

/* The fixture and the fuzzed document as a tarball in tar[]; its length. */
static size_t build(int oci, const char *doc, size_t len)
{
	struct archive *a = archive_write_new();
	char name[128];
	size_t used = 0;

	if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open_memory(a, tar, TAR_MAX, &used) != ARCHIVE_OK)
		abort();
	if (oci) {
		add(a, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30, NULL);
		blob(a, fx.l1, layer1, strlen(layer1));
		blob(a, fx.l2, layer2, sizeof(layer2));
		blob(a, fx.cfg, fx.config, strlen(fx.config));
		blob(a, fx.man, fx.manifest, strlen(fx.manifest));
		blob(a, fx.idx, fx.index, strlen(fx.index));
		add(a, "index.json", doc, len, NULL);
	} else {
		snprintf(name, sizeof(name), "%s.tar", digest_hex(fx.l1));
		add(a, name, layer1, strlen(layer1), NULL);
		add(a, "legacy/layer.tar", layer2, sizeof(layer2), NULL);
		add(a, "shared/layer.tar", NULL, 0, "../legacy/layer.tar");
		snprintf(name, sizeof(name), "%s.json", digest_hex(fx.cfg));
		add(a, name, fx.config, strlen(fx.config), NULL);
		add(a, "manifest.json", doc, len, NULL);
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		abort();
	archive_write_free(a);
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;

	if (size < 1 || size > TAR_MAX / 4)
		return 0;
	len = build(data[0] & 1, (const char *)data + 1, size - 1);
	import_run(tar, len, &import_name);
	return 0;
}
