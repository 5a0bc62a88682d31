/*
 * fuzz_raw.c - libFuzzer harness for the RAW reader and writer.
 *
 * Each input goes through the real path (a memfd opened by name, so the reader maps
 * it) and through ngs_raw_open_memory. Every plot and vector is read, in whole and in
 * odd chunks, and every readable plot is written back (binary and ASCII) and read
 * again: the binary copy must give the same bits, the ASCII copy the same values to
 * ngspice's 16 significant digits. Any crash, leak, sanitizer report or mismatch
 * (abort) is a finding.
 *
 * Built with clang -fsanitize=fuzzer, or with tests/fuzz/fuzz_driver.c (gcc), which
 * replays a corpus and deterministic mutations of it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "storage/raw.h"

#define MAX_CHUNK_DOUBLES (1u << 16) /* keep each read buffer small */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_raw: property failed: %s\n", what);
        abort();
    }
}

static int memfd_with(const void *data, size_t size)
{
    int fd = memfd_create("fuzz_raw", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t k = write(fd, (const char *)data + off, size - off);
        if (k <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)k;
    }
    return fd;
}

/* Reads every vector and all rows of every plot; returns the number of plots read. */
static size_t read_all(ngs_raw_reader *r)
{
    size_t ok = 0;
    double *buf = malloc(MAX_CHUNK_DOUBLES * sizeof *buf);
    if (!buf)
        return 0;
    for (size_t i = 0; i < ngs_raw_nplots(r); i++) {
        const ngs_raw_plot *p;
        if (ngs_raw_plot_info(r, i, &p) != NGS_OK)
            continue;
        check(p->npoints <= ngs_raw_info(r)->size, "more points than bytes");
        check(p->data_offset <= ngs_raw_info(r)->size, "data offset past the end");
        int failed = 0;
        if (p->row_doubles > 0 && (size_t)p->row_doubles <= MAX_CHUNK_DOUBLES) {
            size_t chunk = MAX_CHUNK_DOUBLES / (size_t)p->row_doubles;
            if (chunk > 97)
                chunk = 97; /* odd chunks: cross index entries and pages */
            for (uint64_t k = 0; k < p->npoints && !failed; k += chunk) {
                size_t n = p->npoints - k < chunk ? (size_t)(p->npoints - k) : chunk;
                failed = ngs_raw_read_rows(r, i, k, n, buf) != NGS_OK;
            }
        }
        for (int v = 0; v < p->nvars && v < 64 && !failed; v++) {
            for (uint64_t k = 0; k < p->npoints && !failed; k += 1000) {
                size_t n = p->npoints - k < 1000 ? (size_t)(p->npoints - k) : 1000;
                failed = ngs_raw_read_vector(r, i, v, k, n, buf) != NGS_OK;
            }
            if (p->npoints > 2 && !failed) /* backwards: the index, not the cursor */
                failed = ngs_raw_read_vector(r, i, v, p->npoints / 2, 1, buf) != NGS_OK ||
                         ngs_raw_read_vector(r, i, v, 1, 1, buf) != NGS_OK;
        }
        /* Out-of-range requests must be refused, not read. */
        check(ngs_raw_read_rows(r, i, p->npoints, 1, buf) == NGS_ERR_ARG, "read past the end");
        ok += !failed;
    }
    free(buf);
    return ok;
}

static int same_value(double a, double b, int exact)
{
    if (exact)
        return memcmp(&a, &b, sizeof a) == 0;
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    if (a == b)
        return 1;
    return fabs(a - b) <= 1e-15 * fmax(fabs(a), fabs(b)) + 1e-300;
}

/* Writes the readable plots of r to a memfd, reads them back and compares. */
static void write_back(ngs_raw_reader *r, ngs_raw_encoding enc)
{
    int fd = memfd_create("fuzz_raw_out", MFD_CLOEXEC);
    if (fd < 0)
        return;
    char path[64], err[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ngs_raw_writer *w;
    if (ngs_raw_writer_open(&w, path, 0, err, sizeof err) != NGS_OK) {
        close(fd);
        return;
    }
    size_t written[64], nw = 0;
    for (size_t i = 0; i < ngs_raw_nplots(r) && nw < 64; i++) {
        const ngs_raw_plot *p;
        if (ngs_raw_plot_info(r, i, &p) != NGS_OK ||
            (size_t)p->row_doubles * p->npoints > MAX_CHUNK_DOUBLES)
            continue;
        if (p->encoding == NGS_RAW_NODATA) {
            if (ngs_raw_writer_begin_plot(w, p, NGS_RAW_NODATA) == NGS_OK) {
                check(ngs_raw_writer_end_plot(w) == NGS_OK, "end_plot (no data)");
                written[nw++] = i;
            }
            continue;
        }
        double *rows = malloc(((size_t)p->row_doubles * p->npoints + 1) * sizeof *rows);
        if (!rows)
            break;
        if (ngs_raw_read_rows(r, i, 0, (size_t)p->npoints, rows) == NGS_OK &&
            ngs_raw_writer_begin_plot(w, p, enc) == NGS_OK) {
            check(ngs_raw_writer_write_rows(w, rows, (size_t)p->npoints) == NGS_OK, "write_rows");
            check(ngs_raw_writer_end_plot(w) == NGS_OK, "end_plot");
            written[nw++] = i;
        }
        free(rows);
    }
    check(ngs_raw_writer_close(w) == NGS_OK, "writer close");
    if (nw == 0) {
        close(fd);
        return;
    }
    ngs_raw_reader *r2;
    int rc = ngs_raw_open(&r2, path, err, sizeof err);
    if (rc != NGS_OK)
        fprintf(stderr, "fuzz_raw: re-read failed: %s\n", err);
    check(rc == NGS_OK, "the writer's output opens");
    check(ngs_raw_nplots(r2) == nw, "the writer's output has every plot");
    double *a = malloc(MAX_CHUNK_DOUBLES * 2 * sizeof *a), *b = malloc(MAX_CHUNK_DOUBLES * 2 * sizeof *b);
    for (size_t k = 0; k < nw && a && b; k++) {
        const ngs_raw_plot *p, *q;
        check(ngs_raw_plot_info(r, written[k], &p) == NGS_OK, "plot info");
        check(ngs_raw_plot_info(r2, k, &q) == NGS_OK, "plot info of the copy");
        check(q->npoints == p->npoints && q->nvars == p->nvars, "same shape");
        check(!q->truncated && !q->in_progress, "the copy is complete");
        check(strcmp(q->plotname, p->plotname) == 0, "same plotname");
        check((q->encoding == NGS_RAW_NODATA) == (p->encoding == NGS_RAW_NODATA), "same kind");
        for (int v = 0; v < p->nvars; v++) {
            size_t n = (size_t)p->npoints;
            check(strcmp(q->vars[v].name, p->vars[v].name) == 0, "same variable name");
            check(ngs_raw_read_vector(r, written[k], v, 0, n, a) == NGS_OK, "read original");
            check(ngs_raw_read_vector(r2, k, v, 0, n, b) == NGS_OK, "read copy");
            int wa = p->vars[v].is_complex ? 2 : 1, wb = q->vars[v].is_complex ? 2 : 1;
            for (size_t j = 0; j < n; j++) {
                check(same_value(a[j * (size_t)wa], b[j * (size_t)wb], enc == NGS_RAW_BINARY),
                      "same real part");
                if (wa == 2)
                    check(same_value(a[j * 2 + 1], b[j * 2 + 1], enc == NGS_RAW_BINARY),
                          "same imaginary part");
                else if (wb == 2)
                    check(b[j * 2 + 1] == 0.0, "zero imaginary part");
            }
        }
    }
    free(a);
    free(b);
    ngs_raw_close(r2);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    ngs_raw_reader *r = NULL;
    int rc = ngs_raw_open_memory(&r, data, size, "fuzz.raw", err, sizeof err);
    check((rc == NGS_OK) == (r != NULL), "reader set iff NGS_OK");
    if (rc == NGS_OK) {
        read_all(r);
        write_back(r, NGS_RAW_BINARY);
        write_back(r, NGS_RAW_ASCII);
        ngs_raw_close(r);
    } else {
        check(rc == NGS_ERR_FORMAT || rc == NGS_ERR_NOMEM, "open fails with FORMAT");
        check(strlen(err) > 0, "a failure has a message");
    }

    /* The mapped path must agree with the memory path. */
    int fd = memfd_with(data, size);
    if (fd >= 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ngs_raw_reader *m = NULL;
        int rc2 = ngs_raw_open(&m, path, err, sizeof err);
        check(rc2 == rc, "mapped and memory open agree");
        if (rc2 == NGS_OK) {
            read_all(m);
            ngs_raw_close(m);
        }
        close(fd);
    }
    return 0;
}
