/* fuzz_archive: "microscale-registry import" on a whole archive (registry/archive_import.c's
 * import_file): the tar reader and its decompression filters, member names ("../", absolute,
 * duplicates), symbolic and hard links, docker-archive and OCI layouts, digests and diff_ids.
 * The input is the archive file itself, imported with --name fuzz/named:latest into a scratch
 * store; fuzz_import.h checks that the import was all or nothing and left a sound store. */
#include "fuzz_import.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	import_setup();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	import_run(data, size, &import_name);
	return 0;
}
