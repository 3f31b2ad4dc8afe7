/* fuzz_range: the Range header of a blob request (shared/httpd_range.c), against blobs of
 * several sizes. Input: one byte choosing the size, then the header value. Beyond not crashing,
 * an accepted range must lie inside the blob: start <= end < size. */
#include <stdint.h>

#include "fuzz.h"
#include "httpd_range.h"

static off_t blob_size(uint8_t sel, const uint8_t **data, size_t *size)
{
	static const off_t sizes[] = {0, 1, 2, 100, 1 << 20, 104877007, INT64_MAX - 1, INT64_MAX};
	uint64_t v = 0;

	if (sel < 0xf0)
		return sizes[sel % (sizeof(sizes) / sizeof(sizes[0]))];
	/* 0xf0..0xff: the next 8 bytes are the size */
	for (int i = 0; i < 8 && *size > 0; i++, (*data)++, (*size)--)
		v = v << 8 | **data;
	return (off_t)(v & INT64_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	off_t total, start = -1, end = -1;
	enum httpd_range_result r;
	uint8_t sel;
	char *hdr;

	if (size < 1)
		return 0;
	sel = data[0];
	data++, size--;
	total = blob_size(sel, &data, &size);
	hdr = fuzz_strdup(data, size);
	r = httpd_range_parse(hdr, total, &start, &end);
	FUZZ_ASSERT(r == HTTPD_RANGE_NONE || r == HTTPD_RANGE_OK || r == HTTPD_RANGE_INVALID ||
		    r == HTTPD_RANGE_UNSATISFIABLE);
	if (r == HTTPD_RANGE_OK)
		FUZZ_ASSERT(start >= 0 && start <= end && end < total);
	free(hdr);
	return 0;
}
