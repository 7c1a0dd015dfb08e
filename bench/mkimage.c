/*
 * mkimage: deterministic synthetic disk images for the snapzone benchmark.
 *
 *   mkimage create PATH [--size SIZE] [--seed N] [--no-sync]
 *   mkimage mutate PATH --percent P [--seed N] [--no-sync]
 *
 * create writes SIZE bytes (default 1 GiB; suffixes K, M, G, T are powers of
 * 1024) as interleaved regions of 1-16 MiB, each a multiple of 64 KiB and
 * starting at a 64 KiB-aligned offset.  Region kinds, by target share of
 * bytes:
 *
 *   random  ~30%  xoshiro256** output, unique per region (incompressible)
 *   zero    ~20%  real zero bytes (written, so the file is not sparse)
 *   repeat  ~20%  exact copies of one of the first few random regions
 *   text    ~30%  pseudo-English from a fixed word list (~3-4x under zstd -1)
 *
 * The kind of each region is drawn at random, weighted by how far each kind
 * lags its target share, so the mix converges on the targets while staying
 * irregular.  The output depends only on SIZE and the seed.  create prints
 * one JSON line of statistics; unique_bytes is the ideal deduplicated size:
 * the raw bytes of unique non-zero content (random + text; repeat copies
 * count once, as their source random region already does).
 *
 * mutate overwrites ~P% of PATH (rounded to 64 KiB) with fresh random data in
 * a handful of contiguous 64 KiB-aligned regions that do not overlap, and
 * prints one JSON line with the bytes changed.
 *
 * Standalone C11, libc only.  Exit 0 on success, 1 on an I/O error, 2 on
 * bad usage.
 */
#if !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KIB ((uint64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define DEFAULT_ALIGN (64 * KIB)
#define DEFAULT_BLOCK (256 * KIB) /* snapzone's default block size */
#define REGION_MIN (1 * MIB)
#define REGION_MAX (16 * MIB)
#define REPEAT_SOURCES 4 /* repeats copy one of the first this-many random regions */
#define MAX_MUTATE_REGIONS 6

enum kind { K_RANDOM = 0, K_ZERO, K_REPEAT, K_TEXT, K_COUNT };
static const char *const kind_name[K_COUNT] = {"random", "zero", "repeat", "text"};
static const double kind_target[K_COUNT] = {0.30, 0.20, 0.20, 0.30};

/* ---- PRNG: splitmix64 seeds xoshiro256** -------------------------------- */

typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * UINT64_C(0xD1B54A32D192ED03));
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* uniform in [0, n), n > 0 (multiply-shift; bias is negligible here) */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 u128;
    return (uint64_t)(((u128)rng_next(r) * n) >> 64);
#else
    return rng_next(r) % n;
#endif
}

static double rng_unit(rng_t *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- content generators ------------------------------------------------- */

static void fill_random(uint8_t *buf, size_t len, rng_t *r)
{
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t v[4] = {rng_next(r), rng_next(r), rng_next(r), rng_next(r)};
        memcpy(buf + i, v, 32);
    }
    for (; i < len; i += 8) {
        uint64_t v = rng_next(r);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

static const char *const words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but",
    "have", "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her",
    "has", "there", "been", "if", "more", "when", "will", "would", "who", "so", "no",
    "she", "other", "its", "may", "these", "what", "them", "than", "some", "him", "time",
    "into", "only", "do", "could", "new", "about", "two", "then", "any", "first", "also",
    "after", "made", "like", "well", "our", "between", "years", "over", "many", "such",
    "where", "most", "through", "world", "before", "must", "state", "back", "being",
    "under", "people", "those", "same", "water", "while", "might", "great", "year",
    "system", "under", "power", "number", "place", "work", "life", "small", "found",
    "still", "house", "during", "another", "every", "should", "because", "general",
    "government", "thought", "against", "without", "country", "although", "problem",
    "however", "important", "children", "question", "different", "following", "between",
    "something", "development", "information", "particular", "experience", "community",
    "national", "education", "hand", "part", "course", "school", "order", "point",
    "company", "group", "case", "family", "service", "market", "process", "result",
    "change", "level", "public", "report", "member", "business", "control", "history",
    "interest", "policy", "program", "research", "support", "disk", "block", "snapshot",
    "replica", "storage", "network", "cluster", "volume", "image", "backup", "restore",
    "window", "river", "mountain", "garden", "winter", "summer", "morning", "evening",
    "letter", "message", "station", "village", "engine", "machine", "silver", "golden",
    "ancient", "modern", "quiet", "bright", "narrow", "heavy", "gentle", "careful",
    "strange", "simple", "certain", "private", "central", "special", "natural", "early",
    "recent", "final", "local", "social", "human", "major", "whole", "clear", "strong",
    "young", "black", "white", "green", "light", "night", "north", "south", "table",
    "paper", "money", "music", "field", "voice", "story", "power", "court", "street",
    "reason", "moment", "figure", "matter", "nature", "office", "energy", "method",
    "series", "theory", "value", "across", "toward", "within", "around", "almost",
    "always", "often", "perhaps", "rather", "quickly", "slowly", "together", "nothing",
};
#define NWORDS (sizeof words / sizeof words[0])
#define TEXT_FOLLOW 8 /* out of 16: chance that the next word continues a phrase */

static uint8_t word_len[NWORDS];

/*
 * Text: sentences of 5-20 words, separated by ", " now and then, ended by
 * ". ", with a newline every few sentences and a record number every eighth
 * sentence.  Half the words continue a "phrase" (the next word of the list),
 * the others are drawn with a skew towards the front of the list (min of two
 * uniform draws).  That measured ~3.4x under zstd -1 and ~3.7x under zstd -3.
 * Generated sentence by sentence into a small staging area, then copied.
 */
static void fill_text(uint8_t *buf, size_t len, rng_t *r)
{
    size_t pos = 0;
    char stage[512];
    unsigned sentence = 0;
    unsigned idx = 0;
    while (pos < len) {
        size_t n = 0;
        uint64_t bits = rng_next(r);
        unsigned nbits = 60;
        unsigned nw = 5 + (unsigned)(bits % 16);
        bits >>= 4;
        if ((sentence++ & 7) == 0) {
            /* a record number: a little entropy that zstd cannot strip */
            n += (size_t)snprintf(stage + n, sizeof stage - n, "%" PRIu64 " ",
                                  rng_next(r) % 1000000);
        }
        for (unsigned w = 0; w < nw; w++) {
            if (nbits < 24) {
                bits = rng_next(r);
                nbits = 64;
            }
            unsigned a = (unsigned)(bits & 0xFF) % NWORDS;
            unsigned b = (unsigned)((bits >> 8) & 0xFF) % NWORDS;
            unsigned c = (unsigned)((bits >> 16) & 0x0F);
            unsigned follow = (unsigned)((bits >> 20) & 0x0F);
            bits >>= 24;
            nbits -= 24;
            /* often continue a fixed phrase (the next word of the list), else
             * draw a fresh word skewed towards the front of the list */
            if (w > 0 && follow < TEXT_FOLLOW)
                idx = (idx + 1) % NWORDS;
            else
                idx = a < b ? a : b;
            memcpy(stage + n, words[idx], word_len[idx]);
            if (w == 0 && stage[n] >= 'a' && stage[n] <= 'z')
                stage[n] = (char)(stage[n] - 'a' + 'A');
            n += word_len[idx];
            if (w + 1 < nw) {
                if (c == 0)
                    stage[n++] = ',';
                stage[n++] = ' ';
            }
        }
        stage[n++] = '.';
        stage[n++] = (sentence % 5 == 0) ? '\n' : ' ';
        size_t take = n < len - pos ? n : len - pos;
        memcpy(buf + pos, stage, take);
        pos += take;
    }
}

/* ---- helpers ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    uint64_t mul = 1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mul = KIB; end++; break;
    case 'm': case 'M': mul = MIB; end++; break;
    case 'g': case 'G': mul = GIB; end++; break;
    case 't': case 'T': mul = GIB * 1024; end++; break;
    default: return -1;
    }
    if (*end == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end)
        return -1;
    *out = (uint64_t)(v * (double)mul + 0.5);
    return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    while (len) {
        ssize_t w = pwrite(fd, buf, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* print s as a JSON string (quotes included) */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void usage(void)
{
    fprintf(stderr,
            "usage: mkimage create PATH [--size SIZE] [--seed N] [--align A] [--block-size B]\n"
            "                           [--no-sync]\n"
            "       mkimage mutate PATH --percent P [--seed N] [--align A] [--no-sync]\n"
            "Sizes take K/M/G/T suffixes (powers of 1024).  Defaults: --size 1G, --seed 1,\n"
            "--align 64K (region alignment, a power of two, 4K-1M), --block-size 256K\n"
            "(also report the ideal stored size for fixed blocks of B bytes; 0: skip).\n");
}

struct opts {
    const char *path;
    uint64_t size;
    uint64_t seed;
    double percent;
    int have_percent;
    int sync;
    uint64_t align;
    uint64_t block;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
    if (argc < 3)
        return -1;
    o->path = argv[2];
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--size") && v) {
            if (parse_size(v, &o->size))
                return -1;
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            if (parse_u64(v, &o->seed))
                return -1;
            i++;
        } else if (!strcmp(a, "--percent") && v) {
            char *end;
            o->percent = strtod(v, &end);
            if (end == v || *end || o->percent < 0 || o->percent > 100)
                return -1;
            o->have_percent = 1;
            i++;
        } else if (!strcmp(a, "--align") && v) {
            /* a power of two from 4 KiB to 1 MiB, so regions stay 1-16 MiB */
            if (parse_size(v, &o->align) || o->align < 4 * KIB || o->align > REGION_MIN ||
                (o->align & (o->align - 1)))
                return -1;
            i++;
        } else if (!strcmp(a, "--block-size") && v) {
            if (parse_size(v, &o->block) || o->block > 64 * MIB || (o->block && o->block < 512))
                return -1;
            i++;
        } else if (!strcmp(a, "--no-sync")) {
            o->sync = 0;
        } else {
            return -1;
        }
    }
    return 0;
}

/* ---- fixed-block ideal --------------------------------------------------- */

/*
 * What a store with fixed B-byte blocks at B-aligned offsets could at best
 * keep: distinct non-zero blocks.  Blocks are told apart by a 64-bit hash
 * (4 independent multiply-xorshift lanes), kept in an open-addressing set.
 */
struct blkacc {
    uint64_t bsize;
    uint8_t *blk;
    uint64_t fill;
    uint64_t *set;
    uint64_t cap; /* power of two */
    uint64_t blocks, zero_blocks, unique_blocks, unique_bytes;
};

static int blk_init(struct blkacc *a, uint64_t bsize, uint64_t image_size)
{
    memset(a, 0, sizeof *a);
    a->bsize = bsize;
    if (!bsize)
        return 0;
    uint64_t n = image_size / bsize + 1;
    a->cap = 16;
    while (a->cap < 2 * n)
        a->cap <<= 1;
    a->blk = malloc(bsize);
    a->set = calloc(a->cap, sizeof *a->set);
    return a->blk && a->set ? 0 : -1;
}

static uint64_t blk_hash(const uint8_t *p, uint64_t len, int *is_zero)
{
    const uint64_t K = UINT64_C(0x9E3779B97F4A7C15);
    uint64_t h[4] = {1, 2, 3, 4}, any = 0, i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        for (int l = 0; l < 4; l++) {
            any |= w[l];
            h[l] = (h[l] ^ w[l]) * K;
            h[l] ^= h[l] >> 29;
        }
    }
    for (; i < len; i++) {
        any |= p[i];
        h[0] = (h[0] ^ p[i]) * K;
    }
    *is_zero = any == 0;
    uint64_t x = len;
    for (int l = 0; l < 4; l++)
        x = (x ^ h[l]) * UINT64_C(0xBF58476D1CE4E5B9), x ^= x >> 31;
    return x ? x : 1;
}

static void blk_finish_one(struct blkacc *a)
{
    int zero;
    uint64_t h = blk_hash(a->blk, a->fill, &zero);
    a->blocks++;
    if (zero) {
        a->zero_blocks++;
    } else {
        uint64_t i = h & (a->cap - 1);
        while (a->set[i] && a->set[i] != h)
            i = (i + 1) & (a->cap - 1);
        if (!a->set[i]) {
            a->set[i] = h;
            a->unique_blocks++;
            a->unique_bytes += a->fill;
        }
    }
    a->fill = 0;
}

static void blk_feed(struct blkacc *a, const uint8_t *p, uint64_t len)
{
    if (!a->bsize)
        return;
    while (len) {
        uint64_t take = a->bsize - a->fill < len ? a->bsize - a->fill : len;
        memcpy(a->blk + a->fill, p, take);
        a->fill += take;
        p += take;
        len -= take;
        if (a->fill == a->bsize)
            blk_finish_one(a);
    }
}

static void blk_free(struct blkacc *a)
{
    free(a->blk);
    free(a->set);
}

/* ---- create ------------------------------------------------------------- */

struct region {
    uint64_t off, len;
    int kind;
    uint64_t stream; /* PRNG stream of the content (for repeat: the source's) */
};

static int cmd_create(const struct opts *o)
{
    double t0 = now_s();
    int fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "mkimage: open %s: %s\n", o->path, strerror(errno));
        return 1;
    }
    uint8_t *buf = malloc(REGION_MAX);
    if (!buf) {
        fprintf(stderr, "mkimage: out of memory\n");
        close(fd);
        return 1;
    }

    const uint64_t al = o->align;
    struct blkacc acc;
    if (blk_init(&acc, o->block, o->size)) {
        fprintf(stderr, "mkimage: out of memory\n");
        blk_free(&acc);
        free(buf);
        close(fd);
        return 1;
    }
    rng_t layout;
    rng_seed(&layout, o->seed, 0);
    uint64_t bytes[K_COUNT] = {0}, regions[K_COUNT] = {0};
    struct region src[REPEAT_SOURCES];
    unsigned nsrc = 0;
    uint64_t src_used = 0; /* bitmask of sources actually copied */
    uint64_t off = 0, index = 0;

    while (off < o->size) {
        uint64_t len = (REGION_MIN / al + rng_below(&layout, (REGION_MAX - REGION_MIN) / al + 1)) * al;
        /* weight each kind by how far it lags its target after this region */
        double w[K_COUNT], total = 0;
        for (int k = 0; k < K_COUNT; k++) {
            double d = kind_target[k] * (double)(off + len) - (double)bytes[k];
            w[k] = d > 0 ? d : 0;
            if (k == K_REPEAT && nsrc == 0)
                w[k] = 0;
            total += w[k];
        }
        int kind = K_RANDOM;
        if (total > 0) {
            double x = rng_unit(&layout) * total;
            for (kind = 0; kind < K_COUNT - 1; kind++) {
                if (x < w[kind])
                    break;
                x -= w[kind];
            }
            while (w[kind] <= 0 && kind > 0) /* rounding at the top end */
                kind--;
        }
        struct region rg = {off, len, kind, ++index};
        if (kind == K_REPEAT) {
            unsigned s = (unsigned)rng_below(&layout, nsrc);
            rg.len = src[s].len;
            rg.stream = src[s].stream;
            src_used |= UINT64_C(1) << s;
        }
        if (rg.off + rg.len > o->size)
            rg.len = o->size - rg.off;
        if (kind == K_RANDOM && nsrc < REPEAT_SOURCES && rg.len == len)
            src[nsrc++] = rg;

        rng_t content;
        rng_seed(&content, o->seed, rg.stream);
        switch (kind) {
        case K_RANDOM:
        case K_REPEAT: fill_random(buf, rg.len, &content); break;
        case K_ZERO: memset(buf, 0, rg.len); break;
        default: fill_text(buf, rg.len, &content); break;
        }
        if (write_all(fd, buf, rg.len, rg.off)) {
            fprintf(stderr, "mkimage: write %s: %s\n", o->path, strerror(errno));
            blk_free(&acc);
            free(buf);
            close(fd);
            return 1;
        }
        blk_feed(&acc, buf, rg.len);
        bytes[kind] += rg.len;
        regions[kind]++;
        off += rg.len;
    }
    if (acc.fill)
        blk_finish_one(&acc);
    blk_free(&acc);
    free(buf);
    double t_gen = now_s() - t0;
    if (o->sync && fdatasync(fd)) {
        fprintf(stderr, "mkimage: fdatasync %s: %s\n", o->path, strerror(errno));
        close(fd);
        return 1;
    }
    if (close(fd)) {
        fprintf(stderr, "mkimage: close %s: %s\n", o->path, strerror(errno));
        return 1;
    }
    double t_all = now_s() - t0;

    unsigned nused = 0;
    for (unsigned s = 0; s < nsrc; s++)
        nused += (src_used >> s) & 1;
    uint64_t unique = bytes[K_RANDOM] + bytes[K_TEXT];
    printf("{\"op\":\"create\",\"path\":");
    json_str(o->path);
    printf(",\"size\":%" PRIu64 ",\"seed\":%" PRIu64 ",\"align\":%" PRIu64
           ",\"regions\":%" PRIu64,
           o->size, o->seed, al, index);
    for (int k = 0; k < K_COUNT; k++)
        printf(",\"%s_bytes\":%" PRIu64 ",\"%s_regions\":%" PRIu64, kind_name[k], bytes[k],
               kind_name[k], regions[k]);
    printf(",\"repeat_sources\":%u,\"unique_bytes\":%" PRIu64, nused, unique);
    if (o->block)
        printf(",\"fixed_block_size\":%" PRIu64 ",\"fixed_blocks\":%" PRIu64
               ",\"fixed_zero_blocks\":%" PRIu64 ",\"fixed_unique_blocks\":%" PRIu64
               ",\"fixed_unique_bytes\":%" PRIu64,
               acc.bsize, acc.blocks, acc.zero_blocks, acc.unique_blocks, acc.unique_bytes);
    printf(",\"gen_seconds\":%.3f,\"seconds\":%.3f,\"gen_mib_per_s\":%.1f}\n", t_gen, t_all,
           t_gen > 0 ? (double)o->size / MIB / t_gen : 0.0);
    return 0;
}

/* ---- mutate ------------------------------------------------------------- */

static int cmd_mutate(const struct opts *o)
{
    double t0 = now_s();
    int fd = open(o->path, O_WRONLY);
    if (fd < 0) {
        fprintf(stderr, "mkimage: open %s: %s\n", o->path, strerror(errno));
        return 1;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        fprintf(stderr, "mkimage: stat %s: %s\n", o->path, strerror(errno));
        close(fd);
        return 1;
    }
    uint64_t size = (uint64_t)st.st_size;
    const uint64_t al = o->align;
    uint64_t nblocks = size / al; /* whole aligned blocks available */
    uint64_t want = (uint64_t)((double)size * o->percent / 100.0 / (double)al + 0.5);
    if (o->percent > 0 && want == 0)
        want = 1;
    if (want > nblocks)
        want = nblocks;

    rng_t r;
    rng_seed(&r, o->seed, UINT64_C(0x6D7574617465)); /* "mutate" */
    uint64_t k = want < MAX_MUTATE_REGIONS ? want : 3 + rng_below(&r, MAX_MUTATE_REGIONS - 2);
    if (k > want)
        k = want;
    /* k disjoint slots of the file; region i lies inside slot i */
    uint64_t changed = 0;
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    printf("{\"op\":\"mutate\",\"path\":");
    json_str(o->path);
    printf(",\"size\":%" PRIu64 ",\"seed\":%" PRIu64 ",\"percent\":%g,\"regions\":[", size,
           o->seed, o->percent);
    uint64_t left = want;
    for (uint64_t i = 0; i < k; i++) {
        uint64_t slot_lo = nblocks * i / k, slot_hi = nblocks * (i + 1) / k;
        uint64_t nb = left / (k - i);
        if (nb > slot_hi - slot_lo)
            nb = slot_hi - slot_lo;
        left -= nb;
        uint64_t start = slot_lo + rng_below(&r, slot_hi - slot_lo - nb + 1);
        uint64_t len = nb * al, roff = start * al;
        if (len > bufcap) {
            free(buf);
            buf = malloc(len);
            bufcap = len;
            if (!buf) {
                fprintf(stderr, "mkimage: out of memory\n");
                close(fd);
                return 1;
            }
        }
        fill_random(buf, len, &r);
        if (write_all(fd, buf, len, roff)) {
            fprintf(stderr, "mkimage: write %s: %s\n", o->path, strerror(errno));
            free(buf);
            close(fd);
            return 1;
        }
        printf("%s{\"offset\":%" PRIu64 ",\"length\":%" PRIu64 "}", i ? "," : "", roff, len);
        changed += len;
    }
    free(buf);
    if (o->sync && fdatasync(fd)) {
        fprintf(stderr, "mkimage: fdatasync %s: %s\n", o->path, strerror(errno));
        close(fd);
        return 1;
    }
    close(fd);
    printf("],\"bytes_changed\":%" PRIu64 ",\"seconds\":%.3f}\n", changed, now_s() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    for (size_t i = 0; i < NWORDS; i++)
        word_len[i] = (uint8_t)strlen(words[i]);
    struct opts o = {NULL, GIB, 1, 0, 0, 1, DEFAULT_ALIGN, DEFAULT_BLOCK};
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage();
        return 0;
    }
    if (argc < 3 || parse_opts(argc, argv, &o)) {
        usage();
        return 2;
    }
    if (!strcmp(argv[1], "create")) {
        if (o.have_percent) {
            usage();
            return 2;
        }
        return cmd_create(&o);
    }
    if (!strcmp(argv[1], "mutate")) {
        if (!o.have_percent) {
            fprintf(stderr, "mkimage: mutate needs --percent P\n");
            return 2;
        }
        return cmd_mutate(&o);
    }
    usage();
    return 2;
}
