/*
 * fuzz_driver.c - a small stand-in for libFuzzer's main() where there is no libFuzzer
 * (gcc builds): replays every file of the corpus directories given, then a fixed number
 * of deterministic mutations of each (bit flips, cuts, inserted, deleted and duplicated
 * bytes, digits and separators changed), through LLVMFuzzerTestOneInput. The same seed
 * gives the same inputs, so a CI failure reproduces locally; the input that failed is
 * written to fuzz_raw_failure.bin first.
 *
 * usage: fuzz_raw_replay [-n mutations_per_file] [-s seed] dir_or_file...
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng(uint64_t *s)
{
    /* splitmix64: small, and identical everywhere */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int load(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                fclose(f);
                return -1;
            }
            b = nb;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    *data = b;
    *size = n;
    return 0;
}

static void run(const uint8_t *data, size_t size)
{
    /* Saved first so that a crash leaves the input behind. */
    FILE *f = fopen("fuzz_raw_failure.bin", "wb");
    if (f) {
        fwrite(data, 1, size, f);
        fclose(f);
    }
    LLVMFuzzerTestOneInput(data, size);
}

/* One mutation of in (size n) into out (capacity cap); returns the new size. */
static size_t mutate(const uint8_t *in, size_t n, uint8_t *out, size_t cap, uint64_t *s)
{
    static const char tokens[] = "0123456789\n\t :,.-+eE";
    memcpy(out, in, n);
    size_t m = n;
    int rounds = 1 + (int)(rng(s) % 4);
    for (int k = 0; k < rounds; k++) {
        uint64_t x = rng(s);
        size_t pos = m ? (size_t)(rng(s) % m) : 0;
        switch (x % 7) {
        case 0: /* flip bits */
            if (m)
                out[pos] ^= (uint8_t)(1u << (rng(s) % 8));
            break;
        case 1: /* cut */
            m = pos;
            break;
        case 2: { /* insert random bytes */
            size_t len = 1 + (size_t)(rng(s) % 16);
            if (m + len > cap)
                break;
            memmove(out + pos + len, out + pos, m - pos);
            for (size_t i = 0; i < len; i++)
                out[pos + i] = (uint8_t)rng(s);
            m += len;
            break;
        }
        case 3: { /* delete a range */
            size_t len = 1 + (size_t)(rng(s) % 32);
            if (pos + len > m)
                len = m - pos;
            memmove(out + pos, out + pos + len, m - pos - len);
            m -= len;
            break;
        }
        case 4: { /* duplicate a chunk */
            size_t len = 1 + (size_t)(rng(s) % 64);
            if (pos + len > m)
                len = m - pos;
            if (m + len > cap)
                break;
            memmove(out + pos + len, out + pos, m - pos);
            m += len;
            break;
        }
        case 5: /* a digit or a separator where the format is sensitive */
            if (m)
                out[pos] = (uint8_t)tokens[rng(s) % (sizeof tokens - 1)];
            break;
        default: /* interesting bytes */
            if (m) {
                static const uint8_t v[] = {0, 0xff, 0x7f, 0x80, '\n', '\r', 0xfe};
                out[pos] = v[rng(s) % sizeof v];
            }
            break;
        }
    }
    return m;
}

static int replay_file(const char *path, long nmut, uint64_t seed, long *count)
{
    uint8_t *data;
    size_t size;
    if (load(path, &data, &size) != 0) {
        fprintf(stderr, "fuzz_raw_replay: cannot read %s\n", path);
        return -1;
    }
    run(data, size);
    (*count)++;
    size_t cap = size * 2 + 1024;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        free(data);
        return -1;
    }
    uint64_t s = seed;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    /* per-file stream, independent of order and of where the checkout is: the whole
     * path made the inputs, and whether a bug was found, differ between clones */
    for (const char *p = name; *p; p++)
        s = s * 31 + (uint8_t)*p;
    for (long i = 0; i < nmut; i++) {
        size_t m = mutate(data, size, buf, cap, &s);
        run(buf, m);
        (*count)++;
    }
    free(buf);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    long nmut = 500, count = 0;
    uint64_t seed = 1;
    int files = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            nmut = strtol(argv[++i], NULL, 10);
            continue;
        }
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 10);
            continue;
        }
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz_raw_replay: no such file or directory: %s\n", argv[i]);
            return 2;
        }
        if (S_ISDIR(st.st_mode)) {
            struct dirent **list;
            int n = scandir(argv[i], &list, NULL, alphasort); /* sorted: reproducible */
            if (n < 0)
                return 2;
            for (int k = 0; k < n; k++) {
                if (list[k]->d_name[0] != '.') {
                    char path[4096];
                    snprintf(path, sizeof path, "%s/%s", argv[i], list[k]->d_name);
                    if (replay_file(path, nmut, seed, &count) != 0)
                        return 2;
                    files++;
                }
                free(list[k]);
            }
            free(list);
        } else {
            if (replay_file(argv[i], nmut, seed, &count) != 0)
                return 2;
            files++;
        }
    }
    if (files == 0) {
        fprintf(stderr, "usage: fuzz_raw_replay [-n mutations] [-s seed] dir_or_file...\n");
        return 2;
    }
    remove("fuzz_raw_failure.bin");
    printf("fuzz_raw_replay: %d files, %ld inputs, no failure\n", files, count);
    return 0;
}
