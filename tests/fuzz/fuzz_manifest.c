/*
 * fuzz_manifest: libFuzzer-style target for the manifest decoder.
 *
 * Decodes the input without a parent and against a small fixed parent; on
 * success, re-encodes the result against the same parent and decodes it
 * again, which must give back the same entries.  Any failure aborts.
 * Built with tests/fuzz/replay_main.c to replay the corpus in
 * tests/fuzz/corpus/fuzz_manifest/.  Seeds (made with mf_encode): empty.szm
 * (n = 0), zeros.szm (300 zero entries), literal.szm (5 literals, no
 * parent), delta.szm and mixed.szm (ZERO/SAME/LIT runs against the parent
 * below, children longer than the parent).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "manifest.h"

#define FUZZ_PARENT_N 8
#define FUZZ_MAX_N 4096 /* keeps allocations small: 128 KiB */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parent entry i: byte j = i * 16 + j + 1 (never zero).  The seed files
 * were generated against this exact parent. */
static void make_parent(uint8_t parent[FUZZ_PARENT_N * MF_ID_BYTES])
{
    for (size_t i = 0; i < FUZZ_PARENT_N; i++)
        for (size_t j = 0; j < MF_ID_BYTES; j++)
            parent[i * MF_ID_BYTES + j] = (uint8_t)(i * 16 + j + 1);
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_manifest: %s\n", what);
        abort();
    }
}

static void one(const uint8_t *data, size_t size, const uint8_t *parent, size_t pn)
{
    uint8_t *ids = NULL, *buf = NULL, *again = NULL;
    size_t n = 0, len = 0, n2 = 0;
    int rc = mf_decode(data, size, parent, pn, FUZZ_MAX_N, &ids, &n);

    check(rc == 0 || rc == SZ_EPROTO || rc == SZ_ETOOBIG, "unexpected decode error");
    if (rc != 0) {
        check(ids == NULL && n == 0, "outputs set on failure");
        return;
    }
    check(ids != NULL && n <= FUZZ_MAX_N, "bad decode output");
    check(mf_encode(ids, n, parent, pn, &buf, &len) == 0, "re-encode failed");
    check(mf_decode(buf, len, parent, pn, FUZZ_MAX_N, &again, &n2) == 0, "re-decode failed");
    check(n2 == n && (n == 0 || memcmp(ids, again, n * MF_ID_BYTES) == 0),
          "round trip changed the entries");
    free(again);
    free(buf);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t parent[FUZZ_PARENT_N * MF_ID_BYTES];

    make_parent(parent);
    one(data, size, NULL, 0);
    one(data, size, parent, FUZZ_PARENT_N);
    return 0;
}
