/*
 * replay_main: runs a fuzz target over every file of its corpus directory,
 * so each fuzz target doubles as an ordinary unit test (built without a
 * fuzzer).  With libFuzzer, build the target without this file instead:
 *   clang -fsanitize=fuzzer,address tests/fuzz/fuzz_X.c ... 
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    struct dirent *de;
    DIR *d;
    int n = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    if ((d = opendir(argv[1])) == NULL) {
        fprintf(stderr, "cannot open corpus %s\n", argv[1]);
        return 1;
    }
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        uint8_t *buf;
        long len;
        FILE *f;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
        if ((f = fopen(path, "rb")) == NULL)
            continue;
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(len > 0 ? (size_t)len : 1);
        if (buf && fread(buf, 1, (size_t)len, f) == (size_t)len) {
            LLVMFuzzerTestOneInput(buf, (size_t)len);
            /* every prefix too: truncation is the commonest damage */
            for (long k = 0; k < len && k < 512; k++)
                LLVMFuzzerTestOneInput(buf, (size_t)k);
            n++;
        }
        free(buf);
        fclose(f);
    }
    closedir(d);
    printf("%d corpus inputs replayed\n", n);
    return n > 0 ? 0 : 1;
}
