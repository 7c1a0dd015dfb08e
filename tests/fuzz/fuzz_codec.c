/*
 * fuzz_codec: codec_decode must reject or accept any byte string without
 * crashing, and whatever it accepts must re-encode and decode again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sz_env *e = NULL, *e2 = NULL;
    char why[256];
    uint8_t *buf;
    size_t len;

    if (codec_decode(data, size, &e, why, sizeof(why)) != 0)
        return 0;
    if (codec_encode(e, &buf, &len) == 0) {
        if (codec_decode(buf, len, &e2, why, sizeof(why)) != 0)
            abort();
        if (e2->type != e->type || e2->req_id != e->req_id)
            abort();
        codec_free(e2);
        free(buf);
    }
    codec_free(e);
    return 0;
}
