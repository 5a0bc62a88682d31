/* Unit tests: cache keys, recordings and replay, the local store, and the Redis tier
 * (against a redis-server this test starts on a free loopback port; those tests
 * print SKIP and pass when /usr/bin/redis-server is absent). */
#include <check.h>
#include "tests/unit/ngs_check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "cache/cache.h"
#include "cache/cache_key.h"
#include "cache/record.h"
#include "hooks/dispatch.h"

#define REDIS_SERVER "/usr/bin/redis-server"

/* ------------------------------------------------------------------ helpers -- */

/* snprintf that fails the test instead of truncating */
__attribute__((format(printf, 3, 4))) static void fmt(char *out, size_t n, const char *f, ...)
{
    va_list ap;
    int r;
    va_start(ap, f);
    r = vsnprintf(out, n, f, ap);
    va_end(ap);
    ck_assert(r >= 0 && (size_t)r < n);
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/ngsc-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return strdup(d);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void rm_rf(char *dir)
{
    if (!dir) return;
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static void mkdirs(const char *path)
{
    char tmp[4096];
    fmt(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

/* Writes dir/name (creating subdirectories). */
static void put(const char *dir, const char *name, const char *text)
{
    char path[4096], sub[4096];
    FILE *f;
    fmt(path, sizeof path, "%s/%s", dir, name);
    fmt(sub, sizeof sub, "%s", path);
    *strrchr(sub, '/') = '\0';
    mkdirs(sub);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* Key of the netlist dir/top.cir holding text. */
static ngs_cache_key key_in(const char *dir, const char *text, const char *const *search,
                            const char *const *strings, const char *const *files)
{
    ngs_cache_key k;
    char path[4096], err[256];
    put(dir, "top.cir", text);
    fmt(path, sizeof path, "%s/top.cir", dir);
    ck_assert_int_eq(ngs_cache_key_compute(&k, path, NULL, NULL, search, strings, files, err, sizeof err), NGS_OK);
    return k;
}

static ngs_cache_key key_of(const char *dir, const char *text)
{
    return key_in(dir, text, NULL, NULL, NULL);
}

static void assert_cacheable(const ngs_cache_key *k)
{
    ck_assert_msg(k->cacheable, "unexpectedly uncacheable: %s", k->reason);
    ck_assert(ngs_cache_key_valid_hex(k->hex));
}

static void assert_uncacheable(const ngs_cache_key *k, const char *word)
{
    ck_assert_msg(!k->cacheable, "should not be cacheable (reason expected: %s)", word);
    ck_assert_str_eq(k->hex, "");
    ck_assert_msg(strstr(k->reason, word) != NULL, "reason '%s' lacks '%s'", k->reason, word);
}

/* A key for a store test, named by some text. */
static ngs_cache_key text_key(const char *text)
{
    ngs_cache_key k;
    ck_assert_int_eq(ngs_cache_key_compute(&k, NULL, text, "/", NULL, NULL, NULL, NULL, 0), NGS_OK);
    assert_cacheable(&k);
    return k;
}

/* ------------------------------------------------------ event transcripts -- */

/* Everything a hook can observe, as bytes: consecutive ROWS events merge, so two
 * transcripts are equal when the events are the same up to batching. */
typedef struct {
    unsigned char *b;
    size_t n, cap;
    int last;
    uint64_t next_row;
    int bad_first_row;
    size_t events, stop_after;
} tscript;

static void tput(tscript *t, const void *p, size_t n)
{
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->n + n) cap *= 2;
        t->b = realloc(t->b, cap);
        ck_assert_ptr_nonnull(t->b);
        t->cap = cap;
    }
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

static void tint(tscript *t, long long v) { tput(t, &v, sizeof v); }
static void tstr(tscript *t, const char *s)
{
    if (s) tput(t, s, strlen(s) + 1);
    else tput(t, "\xff", 1);
}

static int collect(const ngs_event *ev, void *user)
{
    tscript *t = user;
    const ngs_plot_desc *p = ev->plot;
    t->events++;
    switch (ev->kind) {
    case NGS_EV_PLOT_BEGIN:
        tput(t, "B", 1);
        tstr(t, p->name), tstr(t, p->plotname), tstr(t, p->analysis), tstr(t, p->title), tstr(t, p->date);
        tint(t, p->index), tint(t, p->nvectors), tint(t, p->scale_index), tint(t, p->is_complex);
        tint(t, p->row_doubles);
        for (int i = 0; i < p->nvectors; i++) {
            const ngs_vector_desc *v = &p->vectors[i];
            tstr(t, v->name), tstr(t, v->ngspice_name), tint(t, v->type), tstr(t, v->type_name);
            tstr(t, v->unit), tint(t, v->is_complex), tint(t, v->is_scale), tint(t, v->column);
        }
        t->next_row = 0;
        break;
    case NGS_EV_ROWS:
        if (t->last != NGS_EV_ROWS) tput(t, "R", 1);
        if (ev->first_row != t->next_row) t->bad_first_row = 1;
        t->next_row += ev->nrows;
        tput(t, ev->rows, ev->nrows * (size_t)p->row_doubles * sizeof(double));
        break;
    case NGS_EV_PLOT_END:
        tput(t, "E", 1);
        tstr(t, p->name), tint(t, ev->status), tint(t, (long long)ev->total_rows), tstr(t, ev->text);
        break;
    case NGS_EV_MESSAGE:
        tput(t, "M", 1);
        tint(t, ev->is_error), tstr(t, ev->text);
        break;
    default:
        tput(t, "?", 1);
    }
    t->last = ev->kind;
    return t->stop_after && t->events >= t->stop_after;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void send_ev(ngs_hook_fn fn, void *user, const ngs_event *ev)
{
    ck_assert_int_eq(fn(ev, user), 0);
}

static void send_msg(ngs_hook_fn fn, void *user, const char *text, int is_error)
{
    ngs_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = NGS_EV_MESSAGE;
    ev.text = text;
    ev.is_error = is_error;
    send_ev(fn, user, &ev);
}

/* Rows in batches of `batch`: raw random bit patterns (NaN payloads, denormals,
 * infinities all occur) and explicit special values. */
static void send_plot(ngs_hook_fn fn, void *user, ngs_plot_desc *p, size_t nrows, size_t batch, uint64_t *seed,
                      int status, const char *end_text)
{
    static const double specials[] = {-0.0, INFINITY, -INFINITY, DBL_MIN / 3, DBL_MAX, 1.0};
    ngs_event ev;
    size_t rd = (size_t)p->row_doubles;
    double *rows = malloc((batch ? batch : 1) * (rd ? rd : 1) * sizeof(double));
    ck_assert_ptr_nonnull(rows);
    memset(&ev, 0, sizeof ev);
    ev.kind = NGS_EV_PLOT_BEGIN;
    ev.plot = p;
    send_ev(fn, user, &ev);
    for (size_t done = 0; done < nrows;) {
        size_t n = nrows - done < batch ? nrows - done : batch;
        for (size_t i = 0; i < n * rd; i++) {
            uint64_t bits = xorshift(seed);
            if (i % rd == 0) rows[i] = (double)(done + i / rd) * 1e-9;
            else if (i % 7 == 3) rows[i] = specials[bits % 6];
            else memcpy(&rows[i], &bits, sizeof bits);
        }
        if (rd > 1 && done == 0) { /* a NaN with a payload, bit for bit */
            uint64_t nan = 0x7ff4000000c0ffeeULL;
            memcpy(&rows[1], &nan, sizeof nan);
        }
        ev.kind = NGS_EV_ROWS;
        ev.rows = rows;
        ev.nrows = n;
        ev.first_row = done;
        send_ev(fn, user, &ev);
        done += n;
    }
    memset(&ev, 0, sizeof ev);
    ev.kind = NGS_EV_PLOT_END;
    ev.plot = p;
    ev.status = status;
    ev.total_rows = nrows;
    ev.text = end_text;
    send_ev(fn, user, &ev);
    free(rows);
    ngs_plot_desc_free(p);
}

/* A run: messages, a real transient plot, a complex AC plot that failed, an OP. */
static void gen_run(ngs_hook_fn fn, void *user, uint64_t seed, size_t tran_rows)
{
    ngs_vector_desc tv[] = {{"time", "time", 1, "time", "s", 0, 1, 0},
                            {"v(out)", "out", 3, "voltage", "V", 0, 0, 0},
                            {"i(v1)", "v1#branch", 4, "current", "A", 0, 0, 0}};
    ngs_vector_desc av[] = {{"frequency", "frequency", 2, "frequency", "Hz", 1, 1, 0},
                            {"v(out)", "out", 3, "voltage", "V", 1, 0, 0},
                            {"v(in)", "in", 3, "voltage", "V", 0, 0, 0}};
    ngs_vector_desc ov[] = {{"v(a)", "a", 3, "voltage", "V", 0, 0, 0}, {"v(b)", "b", 3, "voltage", "V", 0, 0, 0}};
    uint64_t s = seed * 2654435761u + 1;
    send_msg(fn, user, "Circuit: test circuit", 0);
    send_plot(fn, user, ngs_plot_desc_new("tran1", "Transient Analysis", "tran", "test circuit", "Thu Jan  1 2026", 0, tv, 3),
              tran_rows, 50000, &s, NGS_OK, NULL); /* 1.2 MB events: replay splits them */
    send_msg(fn, user, "Warning: something on stderr", 1);
    send_plot(fn, user, ngs_plot_desc_new("ac1", "AC Analysis", "ac", "test circuit", "Thu Jan  1 2026", 1, av, 3), 300,
              64, &s, NGS_ERR_SIMULATION, "timestep too small");
    send_plot(fn, user, ngs_plot_desc_new("op1", "Operating Point", "op", NULL, "", 2, ov, 2), 1, 1, &s, NGS_OK, "");
    send_msg(fn, user, "", 0);
}

/* One plot of 4 random vectors: size ~ rows * 32 bytes (incompressible). */
static void gen_big(ngs_hook_fn fn, void *user, uint64_t seed, size_t rows)
{
    ngs_vector_desc v[] = {{"time", "time", 1, "time", "s", 0, 1, 0},
                           {"v(a)", "a", 3, "voltage", "V", 0, 0, 0},
                           {"v(b)", "b", 3, "voltage", "V", 0, 0, 0},
                           {"v(c)", "c", 3, "voltage", "V", 0, 0, 0}};
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 7;
    send_plot(fn, user, ngs_plot_desc_new("tran1", "Transient Analysis", "tran", "big", "", 0, v, 4), rows, 4096, &s,
              NGS_OK, NULL);
}

static int rec_checked(const ngs_event *ev, void *user)
{
    ck_assert_int_eq(ngs_recorder_event(user, ev), NGS_OK);
    return 0;
}

static void record_run(const char *path, uint64_t seed, size_t tran_rows)
{
    ngs_recorder *r;
    char err[256];
    ck_assert_int_eq(ngs_recorder_open(&r, path, 0, err, sizeof err), NGS_OK);
    gen_run(rec_checked, r, seed, tran_rows);
    ck_assert_int_eq(ngs_recorder_finish(r, err, sizeof err), NGS_OK);
}

static void record_big(const char *path, uint64_t seed, size_t rows)
{
    ngs_recorder *r;
    char err[256];
    ck_assert_int_eq(ngs_recorder_open(&r, path, 0, err, sizeof err), NGS_OK);
    gen_big(rec_checked, r, seed, rows);
    ck_assert_int_eq(ngs_recorder_finish(r, err, sizeof err), NGS_OK);
}

static void expect_run(tscript *t, uint64_t seed, size_t tran_rows)
{
    memset(t, 0, sizeof *t);
    gen_run(collect, t, seed, tran_rows);
}

static void replay_into(const char *path, tscript *t)
{
    char err[256];
    memset(t, 0, sizeof *t);
    ck_assert_int_eq(ngs_replay(path, collect, t, err, sizeof err), NGS_OK);
    ck_assert(!t->bad_first_row);
}

static void assert_same(const tscript *a, const tscript *b)
{
    ck_assert_uint_eq(a->n, b->n);
    ck_assert_msg(memcmp(a->b, b->b, a->n) == 0, "replayed events differ from the recorded ones");
}

/* =============================================================== cache keys == */

START_TEST(key_identical_input_and_trailing_whitespace)
{
    char *d = make_tmpdir();
    const char *a = "test\nR1 a b 1k\n.tran 1n 1u\n.end\n";
    const char *b = "test  \r\nR1 a b 1k\t\r\n.tran 1n 1u   \r\n.end\n\n\n  \n";
    const char *c = "test\nr1 a b 1k\n.tran 1n 1u\n.end\n"; /* case is kept */
    const char *e = "test\nR1 a b 1k\n\n.tran 1n 1u\n.end\n"; /* an inner empty line is kept */
    ngs_cache_key k1 = key_of(d, a), k2 = key_of(d, a), k3 = key_of(d, b), k4 = key_of(d, c), k5 = key_of(d, e), kt;
    assert_cacheable(&k1);
    ck_assert_str_eq(k1.hex, k2.hex);
    ck_assert_str_eq(k1.hex, k3.hex);
    ck_assert_str_ne(k1.hex, k4.hex);
    ck_assert_str_ne(k1.hex, k5.hex);
    /* text given directly gives the same key as the same text in a file */
    ck_assert_int_eq(ngs_cache_key_compute(&kt, NULL, a, d, NULL, NULL, NULL, NULL, 0), NGS_OK);
    ck_assert_str_eq(k1.hex, kt.hex);
    ck_assert_int_eq(ngs_cache_key_compute(NULL, NULL, a, d, NULL, NULL, NULL, NULL, 0), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_cache_key_compute(&kt, NULL, NULL, d, NULL, NULL, NULL, NULL, 0), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_cache_key_compute(&kt, "/nonexistent/x.cir", NULL, NULL, NULL, NULL, NULL, NULL, 0),
                     NGS_ERR_IO);
    rm_rf(d);
}
END_TEST

START_TEST(key_follows_two_levels_of_include)
{
    char *d = make_tmpdir();
    const char *top = "test\n.include models/a.inc\nD1 a 0 d1\n.op\n.end\n";
    ngs_cache_key k1, k2, k3, k4;
    put(d, "models/a.inc", "* level one\n.INCLUDE sub/b.inc ; relative to models/\n");
    put(d, "models/sub/b.inc", ".model d1 d(is=1e-14)\n");
    put(d, "sub/b.inc", ".model d1 d(is=2e-14)\n"); /* decoy: not the file ngspice opens */
    k1 = key_of(d, top);
    assert_cacheable(&k1);
    ck_assert_int_eq(k1.nfiles, 2);
    put(d, "models/sub/b.inc", ".model d1 d(is=1.1e-14)\n");
    k2 = key_of(d, top);
    assert_cacheable(&k2);
    ck_assert_str_ne(k1.hex, k2.hex);
    put(d, "models/sub/b.inc", ".model d1 d(is=1e-14)   \r\n"); /* back, with trailing blanks */
    k3 = key_of(d, top);
    ck_assert_str_eq(k1.hex, k3.hex);
    put(d, "sub/b.inc", ".model d1 d(is=3e-14)\n");
    k4 = key_of(d, top);
    ck_assert_str_eq(k1.hex, k4.hex);
    put(d, "models/a.inc", "* level one, edited\n.INCLUDE sub/b.inc\n");
    k4 = key_of(d, top);
    ck_assert_str_ne(k1.hex, k4.hex);
    rm_rf(d);
}
END_TEST

START_TEST(key_follows_an_include_among_commands)
{
    /* ngspice splices an .include in a .control block (or a script) in as it reads
     * the file: its lines run as commands */
    char *d = make_tmpdir();
    const char *top = "test\nR1 a 0 1k\n.control\n.include ctl.inc\nop\n.endc\n.end\n";
    ngs_cache_key k1, k2, k3;
    put(d, "ctl.inc", "alter R1 1k\n");
    k1 = key_of(d, top);
    assert_cacheable(&k1);
    ck_assert_int_eq(k1.nfiles, 1);
    put(d, "ctl.inc", "alter R1 3k\n");
    k2 = key_of(d, top);
    assert_cacheable(&k2);
    ck_assert_str_ne(k1.hex, k2.hex);
    put(d, "ctl.inc", "shell touch x\n"); /* read as a command, not as a card */
    k3 = key_of(d, top);
    assert_uncacheable(&k3, "shell");
    put(d, "run.cmd", "*ng_script\n.include ctl.inc\n");
    k3 = key_of(d, "test\nR1 a 0 1k\n.control\nsource run.cmd\n.endc\n.end\n");
    assert_uncacheable(&k3, "shell");
    k3 = key_of(d, "test\nR1 a 0 1k\n.control\n.include gone.inc\n.endc\n.end\n");
    assert_uncacheable(&k3, "not found");
    rm_rf(d);
}
END_TEST

START_TEST(key_follows_lib_sections_only)
{
    char *d = make_tmpdir();
    const char *top = "test\n.LIB 'models.lib' TT\nM1 d g 0 0 nch\n.op\n.end\n";
    const char *lib_tt = "* corners\n.lib tt\n.include tt_extra.inc\n.model nch nmos(vth0=0.4)\n.endl tt\n"
                         ".lib ff\n.model nch nmos(vth0=0.3)\n.endl ff\n";
    const char *lib_ff = "* corners\n.lib tt\n.include tt_extra.inc\n.model nch nmos(vth0=0.4)\n.endl tt\n"
                         ".lib ff\n.model nch nmos(vth0=0.35)\n.endl ff\n";
    const char *lib_tt2 = "* corners\n.lib tt\n.include tt_extra.inc\n.model nch nmos(vth0=0.41)\n.endl tt\n"
                          ".lib ff\n.model nch nmos(vth0=0.3)\n.endl ff\n";
    ngs_cache_key k1, k2, k3, k4;
    put(d, "models.lib", lib_tt);
    put(d, "tt_extra.inc", ".param extra=1\n");
    k1 = key_of(d, top);
    assert_cacheable(&k1);
    put(d, "models.lib", lib_ff); /* another section changed: same key */
    k2 = key_of(d, top);
    ck_assert_str_eq(k1.hex, k2.hex);
    put(d, "models.lib", lib_tt2); /* the section used changed */
    k3 = key_of(d, top);
    ck_assert_str_ne(k1.hex, k3.hex);
    put(d, "models.lib", lib_tt);
    put(d, "tt_extra.inc", ".param extra=2\n"); /* included from the section */
    k4 = key_of(d, top);
    ck_assert_str_ne(k1.hex, k4.hex);
    k4 = key_of(d, "test\n.lib models.lib ss\n.op\n.end\n");
    assert_uncacheable(&k4, "section");
    /* a section defined in the netlist itself and not used is not scanned */
    k4 = key_of(d, "test\n.lib unused\n.control\nshell ls\n.endc\n.endl\n.op\n.end\n");
    assert_cacheable(&k4);
    rm_rf(d);
}
END_TEST

START_TEST(key_reads_an_old_style_lib_file_as_an_include)
{
    /* with ngbehavior lt or ps (set in a .spiceinit) `.lib file` is `.include file` */
    char *d = make_tmpdir();
    const char *top = "test\n.lib parts.lib\n.include after.inc\nV1 in 0 1\nR1 in out 1k\n.op\n.end\n";
    ngs_cache_key k1, k2, k3;
    put(d, "parts.lib", "R2 out 0 1k\n");
    put(d, "after.inc", "R3 out 0 1k\n");
    k1 = key_of(d, top);
    assert_cacheable(&k1);
    ck_assert_int_eq(k1.nfiles, 2);
    put(d, "parts.lib", "R2 out 0 3k\n");
    k2 = key_of(d, top);
    ck_assert_str_ne(k1.hex, k2.hex);
    put(d, "after.inc", "R3 out 0 3k\n"); /* what follows is not a skipped section */
    k3 = key_of(d, top);
    ck_assert_str_ne(k2.hex, k3.hex);
    rm_rf(d);
}
END_TEST

START_TEST(key_follows_parameters_analyses_and_options)
{
    char *d = make_tmpdir();
    const char *base = "test\n.param w=1u\nR1 a 0 {w*1e9}\n.options reltol=1e-3\n.tran 1n 1u\n"
                       ".control\nrun\nmeas tran x max v(a)\n.endc\n.end\n";
    const char *variants[] = {
        "test\n.param w=2u\nR1 a 0 {w*1e9}\n.options reltol=1e-3\n.tran 1n 1u\n.control\nrun\nmeas tran x max v(a)\n.endc\n.end\n",
        "test\n.param w=1u\nR1 a 0 {w*1e9}\n.options reltol=1e-4\n.tran 1n 1u\n.control\nrun\nmeas tran x max v(a)\n.endc\n.end\n",
        "test\n.param w=1u\nR1 a 0 {w*1e9}\n.options reltol=1e-3\n.tran 1n 2u\n.control\nrun\nmeas tran x max v(a)\n.endc\n.end\n",
        "test\n.param w=1u\nR1 a 0 {w*1e9}\n.options reltol=1e-3\n.tran 1n 1u\n.control\nrun\nmeas tran x min v(a)\n.endc\n.end\n",
        "test\n.param w=1u\nR1 a 0 {w*1e9}\n+ tc1=0\n.options reltol=1e-3\n.tran 1n 1u\n.control\nrun\nmeas tran x max v(a)\n.endc\n.end\n",
    };
    ngs_cache_key k0 = key_of(d, base);
    assert_cacheable(&k0);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        ngs_cache_key k = key_of(d, variants[i]);
        assert_cacheable(&k);
        ck_assert_msg(strcmp(k.hex, k0.hex) != 0, "variant %zu has the same key", i);
    }
    rm_rf(d);
}
END_TEST

/* ngspice reads "$name" from the environment when no variable of its own has it */
START_TEST(key_follows_environment_variables_a_control_block_reads)
{
    char *d = make_tmpdir();
    const char *text = "env\nV1 in 0 1\nR1 in out 1k\nR2 out 0 1k\n.control\nalter r2 = $NGS_TEST_RVAL\nop\n"
                       "echo $&v(out) $?NGS_TEST_FLAG\n.endc\n.end\n";
    unsetenv("NGS_TEST_RVAL");
    unsetenv("NGS_TEST_FLAG");
    ngs_cache_key unset = key_of(d, text);
    setenv("NGS_TEST_RVAL", "3k", 1);
    ngs_cache_key k3 = key_of(d, text);
    setenv("NGS_TEST_RVAL", "9k", 1);
    ngs_cache_key k9 = key_of(d, text);
    setenv("NGS_TEST_FLAG", "", 1);
    ngs_cache_key flag = key_of(d, text);
    setenv("NGS_TEST_RVAL", "3k", 1);
    unsetenv("NGS_TEST_FLAG");
    ngs_cache_key again = key_of(d, text);
    assert_cacheable(&unset);
    ck_assert_str_ne(unset.hex, k3.hex);
    ck_assert_str_ne(k3.hex, k9.hex);
    ck_assert_str_ne(k9.hex, flag.hex); /* set but empty is not unset */
    ck_assert_str_eq(k3.hex, again.hex);
    unsetenv("NGS_TEST_RVAL");
    rm_rf(d);
}
END_TEST

START_TEST(key_follows_extra_strings_and_files)
{
    char *d = make_tmpdir();
    const char *net = "test\nR1 a 0 1k\n.op\n.end\n";
    char cm[4096], missing[4096];
    const char *s1[] = {"ngspice-39", "format=1", NULL}, *s2[] = {"ngspice-40", "format=1", NULL};
    const char *s3[] = {"format=1", "ngspice-39", NULL}, *s4[] = {"ngspice-39format=1", NULL};
    const char *f1[] = {cm, NULL}, *f2[] = {missing, NULL};
    ngs_cache_key k0, k1, k2, k3, k4, k5, k6, k7, k8;
    fmt(cm, sizeof cm, "%s/lib/analog.cm", d);
    fmt(missing, sizeof missing, "%s/.spiceinit", d);
    put(d, "lib/analog.cm", "\x7f" "ELF binary 1");
    k0 = key_in(d, net, NULL, NULL, NULL);
    k1 = key_in(d, net, NULL, s1, NULL);
    k2 = key_in(d, net, NULL, s2, NULL);
    k3 = key_in(d, net, NULL, s3, NULL);
    k4 = key_in(d, net, NULL, s4, NULL);
    k5 = key_in(d, net, NULL, s1, f1);
    put(d, "lib/analog.cm", "\x7f" "ELF binary 2");
    k6 = key_in(d, net, NULL, s1, f1);
    k7 = key_in(d, net, NULL, s1, f2); /* absent .spiceinit */
    put(d, ".spiceinit", "");
    k8 = key_in(d, net, NULL, s1, f2); /* now present and empty */
    assert_cacheable(&k7);
    ck_assert_str_ne(k0.hex, k1.hex);
    ck_assert_str_ne(k1.hex, k2.hex);
    ck_assert_str_ne(k1.hex, k3.hex);
    ck_assert_str_ne(k1.hex, k4.hex);
    ck_assert_str_ne(k1.hex, k5.hex);
    ck_assert_str_ne(k5.hex, k6.hex);
    ck_assert_str_ne(k7.hex, k8.hex);
    ck_assert_str_ne(k1.hex, k7.hex);
    k8 = key_in(d, net, NULL, s1, f1);
    ck_assert_str_eq(k6.hex, k8.hex);
    rm_rf(d);
}
END_TEST

START_TEST(key_reads_spiceinit_as_commands)
{
    /* ngspice runs .spiceinit as commands before the deck: what it sources, loads
     * or runs counts, and its first line is a command too */
    char *d = make_tmpdir();
    const char *net = "test\nR1 a 0 1k tc1=0.01\n.op\n.end\n";
    char init[4096];
    const char *files[] = {init, NULL};
    ngs_cache_key k1, k2, k3;
    fmt(init, sizeof init, "%s/.spiceinit", d);
    put(d, ".spiceinit", "* init\nsource other.cmd\n");
    put(d, "other.cmd", "*ng_script\noption temp=27\n");
    k1 = key_in(d, net, NULL, NULL, files);
    assert_cacheable(&k1);
    put(d, "other.cmd", "*ng_script\noption temp=100\n");
    k2 = key_in(d, net, NULL, NULL, files);
    assert_cacheable(&k2);
    ck_assert_str_ne(k1.hex, k2.hex);
    put(d, ".spiceinit", "codemodel my.cm\n");
    put(d, "my.cm", "\x7f" "ELF 1");
    k1 = key_in(d, net, NULL, NULL, files);
    assert_cacheable(&k1);
    put(d, "my.cm", "\x7f" "ELF 2");
    k2 = key_in(d, net, NULL, NULL, files);
    ck_assert_str_ne(k1.hex, k2.hex);
    put(d, ".spiceinit", "shell date > when.txt\n"); /* no title: the first line runs */
    k3 = key_in(d, net, NULL, NULL, files);
    assert_uncacheable(&k3, "shell");
    ck_assert_msg(strstr(k3.reason, ".spiceinit") != NULL, "reason '%s' names no file", k3.reason);
    put(d, ".spiceinit", "* init\nsource gone.cmd\n");
    k3 = key_in(d, net, NULL, NULL, files);
    assert_uncacheable(&k3, "not found");
    /* a sourced file named like an init file is read as one (com_source) */
    put(d, "team.spiceinit", "shell date > when.txt\n");
    k3 = key_of(d, "test\nR1 a 0 1k\n.control\nsource team.spiceinit\nop\n.endc\n.end\n");
    assert_uncacheable(&k3, "shell");
    rm_rf(d);
}
END_TEST

START_TEST(key_disabling_constructs)
{
    static const struct { const char *net, *word; } cases[] = {
        {"t\n.control\nshell ls\n.endc\n", "shell"},
        {"t\n*# shell ls\n.op\n", "shell"},
        {"t\n.control\nrun ; shell rm x\n.endc\n", "shell"},
        {"t\n.control\npre_shell ls\n.endc\n", "shell"},
        {"t\n.control\necho `date`\n.endc\n", "backquote"},
        {"t\n.control\nset unixcom\n.endc\n", "unixcom"},
        {"t\n.include missing.inc\n", "not found"},
        {"t\na1 %v([out]) src\n.model src filesource (file=\"missing.txt\" amploffset=[0])\n", "not found"},
        {"t\nV1 a 0 PWL\n+ file=missing.txt\n", "not found"},
        {"t\n.model src filesource (file={fname})\n", "run time"},
        {"t\nR1 a 0 {agauss(1k, 100, 1)}\n.op\n", "agauss"},
        {"t\n.param r = 'gauss(1, 0.1, 3)'\n", "gauss"},
        {"t\n.param r = unif(1, 0.1)\n", "unif"},
        {"t\n.options seed=random\nR1 a 0 {agauss(1k, 100, 1)}\n", "seed=random"},
        {"t\nV1 a 0 dc 0 trnoise(1m 1n 0 0)\n.tran 1n 1u\n", "trnoise"},
        /* measured with ngspice 39: a seeded TRNOISE run still differs each time */
        {"t\n.option\n+ seed = 7\nV1 a 0 dc 0 trnoise(1m 1n 0 0)\n", "no seed reaches"},
        {"t\nR1 a 0 {agauss(1k, 100, 1)}\nV1 a 0 dc 0 TRNOISE(1m 1n 0 0)\n.options seed=3\n", "trnoise"},
        {"t\nV1 a 0 dc 0 TRRANDOM(2 10m 0 1 0)\n", "trrandom"},
        {"t\n.control\nlet x = sgauss(0)\n.endc\n", "sgauss"},
        {"t\n.control\nlet x = rnd(10)\n.endc\n", "rnd"},
        /* measured with ngspice 39: the netlist's values are drawn before .control runs */
        {"t\nR1 a 0 {agauss(1k, 100, 1)}\n.control\nsetseed 7\nrun\n.endc\n", "before the seed is set"},
        {"t\nR1 a 0 {agauss(1k, 100, 1)}\n.control\noption seed=7\nrun\n.endc\n", "agauss"},
        {"t\n.control\nlet x = sgauss(0)\nsetseed 7\n.endc\n", "before the seed is set"},
        {"t\n.control\nrun\nwrdata out.txt v(a)\n.endc\n", "wrdata"},
        {"t\n.control\nrun\nwrite out.raw\n.endc\n", "write"},
        {"t\n.control\nrun\nprint v(a) > out.txt\n.endc\n", "redirect"},
        {"t\n.control\nrun\nprint v(a)>out.txt\n.endc\n", "redirect"},
        {"t\n.control\nalias mysave write out.raw\nrun\nmysave\n.endc\n", "alias"},
        {"t\n.control\nsource missing.cir\n.endc\n", "not found"},
        {"t\n.control\nosdi missing.osdi\n.endc\n", "not found"},
        {"t\n.control\npre_osdi missing.osdi\n.endc\n", "not found"},
        {"t\n.control\ncodemodel /nonexistent/x.cm\n.endc\n", "not found"},
        {"t\n.control\nload missing.raw\n.endc\n", "not found"},
        {"t\n.control\ncd /tmp\n.endc\n", "cd"},
        {"t\n.control\nset sourcepath = ( /nowhere )\nsource lib.cir\n.endc\n", "sourcepath"},
        {"t\n.control\naltermod nch file=missing.lib\n.endc\n", "not found"},
    };
    char *d = make_tmpdir();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ngs_cache_key k = key_of(d, cases[i].net);
        ck_assert_msg(!k.cacheable, "case %zu should be uncacheable: %s", i, cases[i].net);
        ck_assert_str_eq(k.hex, "");
        ck_assert_msg(strstr(k.reason, cases[i].word) != NULL, "case %zu: reason '%s' lacks '%s'", i, k.reason,
                      cases[i].word);
    }
    rm_rf(d);
}
END_TEST

START_TEST(key_constructs_that_stay_cacheable)
{
    static const char *const ok[] = {
        "shell title line is never a command\nR1 a 0 1k\n",
        "t\n* shell rm -rf / (a comment)\nR1 a 0 1k\n",
        "t\nR1 a 0 1k ; agauss(1, 2, 3) in a comment\n",
        "t\na1 a b lim\n.model lim limit (gain=1 out_lower_limit=-1 out_upper_limit=1)\n",
        "t\n.param profile=3\n",
        "t\nR1 a 0 {agauss(1k, 100, 1)}\n.options seed=42\n",
        "t\n.option\n+ seed = 7\nV1 a 0 dc 0 trrandom(2 10m 0 1 0)\n",
        "t\nR1 a 0 {agauss(1k, 100, 1)}\n.control\npre_setseed 7\nrun\n.endc\n",
        "t\n.control\nsetseed 7\nlet x = sgauss(0)\n.endc\n",
        "t\n.control\nset rndseed=3\nlet x = sgauss(0)\n.endc\n",
        "t\n.control\nif length(x) > 1\necho big\nend\n.endc\n",
        "t\n.control\necho \"a>b\" 'c<d'\n.endc\n",
        "t\n.control\nrun\nplot v(a)\nprint v(a)\n.endc\n",
    };
    char *d = make_tmpdir();
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ngs_cache_key k = key_of(d, ok[i]);
        ck_assert_msg(k.cacheable, "case %zu should be cacheable: %s", i, k.reason);
    }
    rm_rf(d);
}
END_TEST

START_TEST(key_follows_files_read_by_commands_and_models)
{
    char *d = make_tmpdir();
    const char *fs = "t\na1 %v([out]) src\n.model src filesource (file=\"wave.txt\" amploffset=[0])\n.tran 1n 1u\n";
    const char *os = "t\n.control\npre_osdi lib/bsimcmg.osdi\n.endc\nN1 d g s b nmos\n";
    const char *sc = "t\n.control\nsource sub.cir\nrun\n.endc\n";
    ngs_cache_key a, b;
    put(d, "wave.txt", "0 0\n1e-9 1\n");
    a = key_of(d, fs);
    assert_cacheable(&a);
    put(d, "wave.txt", "0 0\n1e-9 2\n");
    b = key_of(d, fs);
    assert_cacheable(&b);
    ck_assert_str_ne(a.hex, b.hex);

    put(d, "lib/bsimcmg.osdi", "osdi v1");
    a = key_of(d, os);
    assert_cacheable(&a);
    put(d, "lib/bsimcmg.osdi", "osdi v2");
    b = key_of(d, os);
    ck_assert_str_ne(a.hex, b.hex);

    put(d, "sub.cir", "sub title\nR1 a 0 1k\n.tran 1n 1u\n");
    a = key_of(d, sc);
    assert_cacheable(&a);
    put(d, "sub.cir", "sub title\nR1 a 0 2k\n.tran 1n 1u\n");
    b = key_of(d, sc);
    ck_assert_str_ne(a.hex, b.hex);
    put(d, "sub.cir", "sub title\n.control\nshell ls\n.endc\n"); /* scanned too */
    b = key_of(d, sc);
    assert_uncacheable(&b, "shell");
    rm_rf(d);
}
END_TEST

START_TEST(key_search_dirs_quotes_and_comments)
{
    char *d = make_tmpdir(), lib[4096];
    const char *search[] = {lib, NULL};
    const char *net = "t\n.include shared.inc\n";
    ngs_cache_key a, b;
    fmt(lib, sizeof lib, "%s/pdk", d);
    put(d, "pdk/shared.inc", ".param x=1\n");
    a = key_in(d, net, NULL, NULL, NULL);
    assert_uncacheable(&a, "not found");
    a = key_in(d, net, search, NULL, NULL);
    assert_cacheable(&a);
    put(d, "pdk/shared.inc", ".param x=2\n");
    b = key_in(d, net, search, NULL, NULL);
    ck_assert_str_ne(a.hex, b.hex);

    put(d, "my models/x.inc", ".param y=1\n");
    a = key_of(d, "t\n.include \"my models/x.inc\" ; a comment\n");
    assert_cacheable(&a);
    ck_assert_int_eq(a.nfiles, 1);
    put(d, "my models/x.inc", ".param y=2\n");
    b = key_of(d, "t\n.include \"my models/x.inc\" ; a comment\n");
    ck_assert_str_ne(a.hex, b.hex);
    /* an include loop is refused, not followed forever */
    put(d, "loop.inc", ".include loop.inc\n");
    a = key_of(d, "t\n.include loop.inc\n");
    assert_uncacheable(&a, "nested");
    {
        /* a name found both beside the netlist and in the current directory: which
         * one ngspice opens depends on how the deck is run, so both count */
        char cwd[4096];
        int here = open(".", O_RDONLY);
        ck_assert_int_ge(here, 0);
        fmt(cwd, sizeof cwd, "%s/elsewhere", d);
        put(d, "both.inc", ".param z=1\n");
        put(cwd, "both.inc", ".param z=2\n");
        ck_assert_int_eq(chdir(cwd), 0);
        a = key_of(d, "t\n.include both.inc\n");
        assert_cacheable(&a);
        ck_assert_int_eq(a.nfiles, 2);
        put(cwd, "both.inc", ".param z=3\n");
        b = key_of(d, "t\n.include both.inc\n");
        ck_assert_str_ne(a.hex, b.hex);
        put(d, "both.inc", ".param z=4\n");
        a = key_of(d, "t\n.include both.inc\n");
        ck_assert_str_ne(a.hex, b.hex);
        /* and a loop that fans out over two directories still ends */
        put(cwd, "loop.inc", ".include loop.inc\n* other copy\n");
        a = key_of(d, "t\n.include loop.inc\n");
        ck_assert(!a.cacheable);
        ck_assert_int_eq(fchdir(here), 0);
        close(here);
    }
    rm_rf(d);
}
END_TEST

/* A deck that sets its own sourcepath has ngspice look for what it sources there
 * (the run's list is replaced): a script found both beside the netlist and there
 * gave a stale hit when only the second one changed. */
START_TEST(key_follows_a_sourcepath_the_deck_sets)
{
    char *d = make_tmpdir(), net[8192];
    ngs_cache_key a, b;
    put(d, "foo.sp", "*ng_script\nalter r1 = 1k\n");
    put(d, "scripts/foo.sp", "*ng_script\nalter r1 = 3k\n");
    fmt(net, sizeof net, "t\nR1 a 0 1k\n.control\nset sourcepath = ( \"%s/scripts\" $sourcepath )\nsource foo.sp\nop\n.endc\n", d);
    a = key_of(d, net);
    assert_cacheable(&a);
    ck_assert_int_eq(a.nfiles, 2);
    put(d, "scripts/foo.sp", "*ng_script\nalter r1 = 9k\n");
    b = key_of(d, net);
    assert_cacheable(&b);
    ck_assert_str_ne(a.hex, b.hex);
    /* a single directory, no parentheses */
    fmt(net, sizeof net, "t\nR1 a 0 1k\n.control\nset sourcepath=%s/scripts\nsource foo.sp\n.endc\n", d);
    a = key_of(d, net);
    put(d, "scripts/foo.sp", "*ng_script\nalter r1 = 5k\n");
    b = key_of(d, net);
    ck_assert_str_ne(a.hex, b.hex);
    /* a directory known only when ngspice runs */
    b = key_of(d, "t\n.control\nset sourcepath = ( $mydir )\nsource foo.sp\n.endc\n");
    assert_uncacheable(&b, "only known at run time");
    /* ~ is the home directory, as ngspice reads it */
    {
        char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
        setenv("HOME", d, 1);
        a = key_of(d, "t\n.control\nset sourcepath = ( ~/scripts )\nsource foo.sp\n.endc\n");
        if (home) setenv("HOME", home, 1);
        else unsetenv("HOME");
        free(home);
        assert_cacheable(&a);
        ck_assert_int_eq(a.nfiles, 2);
    }
    rm_rf(d);
}
END_TEST

/* ============================================================== recordings == */

START_TEST(record_replay_round_trip_is_bit_exact)
{
    char *d = make_tmpdir(), path[4096];
    tscript want, got, again;
    ngs_recording_info info;
    fmt(path, sizeof path, "%s/run.ngsc", d);
    record_run(path, 1, 100000); /* > one replay batch: re-batched, first_row checked */
    expect_run(&want, 1, 100000);
    replay_into(path, &got);
    assert_same(&want, &got);
    replay_into(path, &again);
    assert_same(&want, &again);
    ck_assert_int_eq(ngs_recording_verify(path, &info, NULL, 0), NGS_OK);
    ck_assert_uint_eq(info.file_bytes, (uint64_t)file_size(path));
    ck_assert_uint_gt(info.events, 10);
    /* another run gives another recording */
    free(got.b);
    record_run(path, 2, 1000);
    replay_into(path, &got);
    ck_assert(got.n != want.n || memcmp(got.b, want.b, got.n) != 0);
    free(want.b), free(got.b), free(again.b);
    rm_rf(d);
}
END_TEST

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    ck_assert(a && b);
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    fclose(b);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

START_TEST(record_damaged_files_are_refused_before_any_event)
{
    char *d = make_tmpdir(), good[4096], bad[4096], err[256];
    off_t size;
    tscript t;
    fmt(good, sizeof good, "%s/good.ngsc", d);
    fmt(bad, sizeof bad, "%s/bad.ngsc", d);
    record_run(good, 3, 5000);
    size = file_size(good);
    ck_assert_int_gt(size, 1000);
    {
        off_t cuts[] = {0, 10, 16, 80, size / 2, size - 64, size - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            copy_file(good, bad);
            ck_assert_int_eq(truncate(bad, cuts[i]), 0);
            memset(&t, 0, sizeof t);
            ck_assert_int_eq(ngs_replay(bad, collect, &t, err, sizeof err), NGS_ERR_FORMAT);
            ck_assert_uint_eq(t.events, 0);
            ck_assert_str_ne(err, "");
        }
    }
    {
        off_t flips[] = {3, 9, 20, size / 3, size / 2, size - 60, size - 50, size - 40, size - 1};
        for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
            copy_file(good, bad);
            flip_byte(bad, flips[i]);
            memset(&t, 0, sizeof t);
            ck_assert_int_eq(ngs_replay(bad, collect, &t, err, sizeof err), NGS_ERR_FORMAT);
            ck_assert_uint_eq(t.events, 0);
        }
    }
    { /* appended garbage */
        FILE *f;
        copy_file(good, bad);
        f = fopen(bad, "ab");
        fputs("x", f);
        fclose(f);
        memset(&t, 0, sizeof t);
        ck_assert_int_eq(ngs_replay(bad, collect, &t, err, sizeof err), NGS_ERR_FORMAT);
        ck_assert_uint_eq(t.events, 0);
    }
    ck_assert_int_eq(ngs_replay("/nonexistent/x.ngsc", collect, &t, err, sizeof err), NGS_ERR_IO);
    rm_rf(d);
}
END_TEST

START_TEST(record_replay_stops_when_the_hook_says_so)
{
    char *d = make_tmpdir(), path[4096];
    tscript t;
    fmt(path, sizeof path, "%s/run.ngsc", d);
    record_run(path, 4, 3000);
    memset(&t, 0, sizeof t);
    t.stop_after = 3;
    ck_assert_int_eq(ngs_replay(path, collect, &t, NULL, 0), NGS_ERR_INTERRUPTED);
    ck_assert_uint_eq(t.events, 3);
    free(t.b);
    rm_rf(d);
}
END_TEST

static int count_named(const char *dir, const char *pattern)
{
    char cmd[4200];
    FILE *p;
    int n = -1;
    fmt(cmd, sizeof cmd, "find '%s' -type f -name '%s' | wc -l", dir, pattern);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static int count_files(const char *dir) { return count_named(dir, "*"); }

START_TEST(record_abort_and_failures_leave_no_file)
{
    char *d = make_tmpdir(), path[4096], err[256];
    ngs_recorder *r;
    ngs_vector_desc v[] = {{"time", "time", 1, "time", "s", 0, 1, 0}, {"v(a)", "a", 3, "voltage", "V", 0, 0, 0}};
    ngs_plot_desc *p = ngs_plot_desc_new("tran1", "Transient Analysis", "tran", "t", "", 0, v, 2);
    ngs_vector_desc bad_v[2];
    ngs_plot_desc bad;
    ngs_event ev;
    double row[2] = {0, 1};
    fmt(path, sizeof path, "%s/run.ngsc", d);

    ck_assert_int_eq(ngs_recorder_open(&r, path, 0, err, sizeof err), NGS_OK);
    memset(&ev, 0, sizeof ev);
    ev.kind = NGS_EV_PLOT_BEGIN;
    ev.plot = p;
    ck_assert_int_eq(ngs_recorder_event(r, &ev), NGS_OK);
    ck_assert_int_eq(count_files(d), 1); /* the temporary file */
    ngs_recorder_abort(r);
    ck_assert_int_eq(count_files(d), 0);

    /* a plot whose columns are not the computed ones cannot be replayed: refused */
    ck_assert_int_eq(ngs_recorder_open(&r, path, 0, err, sizeof err), NGS_OK);
    bad = *p;
    memcpy(bad_v, p->vectors, sizeof bad_v);
    bad_v[1].column = 5;
    bad.vectors = bad_v;
    ev.plot = &bad;
    ck_assert_int_eq(ngs_recorder_event(r, &ev), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_recorder_sink(&ev, r), 0); /* the sink never stops a run */
    ck_assert_int_ne(ngs_recorder_finish(r, err, sizeof err), NGS_OK);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(count_files(d), 0);

    /* rows for a plot never begun */
    ck_assert_int_eq(ngs_recorder_open(&r, path, 0, err, sizeof err), NGS_OK);
    ev.kind = NGS_EV_ROWS;
    ev.plot = p;
    ev.rows = row;
    ev.nrows = 1;
    ck_assert_int_eq(ngs_recorder_event(r, &ev), NGS_ERR_ARG);
    ck_assert_int_ne(ngs_recorder_finish(r, err, sizeof err), NGS_OK);
    ck_assert_int_eq(count_files(d), 0);

    ck_assert_int_eq(ngs_recorder_open(&r, "/nonexistent/dir/x.ngsc", 0, err, sizeof err), NGS_ERR_IO);
    ck_assert_int_eq(ngs_recorder_open(&r, path, 99, err, sizeof err), NGS_ERR_ARG);
    ngs_plot_desc_free(p);
    rm_rf(d);
}
END_TEST

/* ============================================================= local store == */

static ngs_cache *open_local(const char *dir, uint64_t cap, int grace)
{
    ngs_cache *c;
    ngs_cache_options o;
    char err[256];
    ngs_cache_options_init(&o);
    o.max_bytes = cap;
    o.tmp_grace_s = grace;
    ck_assert_int_eq(ngs_cache_open(&c, dir, NULL, &o, err, sizeof err), NGS_OK);
    return c;
}

/* The cap comes from the options, else from NGSCALE_CACHE_SIZE, else 10 GiB; a
 * value that is not a size is refused, naming it. */
START_TEST(size_cap_from_options_environment_or_default)
{
    static const struct { const char *env; uint64_t cap; } ok[] = {
        {"20G", (uint64_t)20 << 30}, {"500MiB", (uint64_t)500 << 20}, {"1.5k", 1536},
        {"4096", 4096}, {"2TB", (uint64_t)2 << 40}, {"", (uint64_t)10 << 30}};
    static const char *const bad[] = {"abc", "0", "-5", "10X", "5 G", "1e30"};
    char *d = make_tmpdir(), err[256];
    ngs_cache *c;
    ngs_cache_stats st;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        setenv("NGSCALE_CACHE_SIZE", ok[i].env, 1);
        c = open_local(d, 0, 0);
        ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
        ck_assert_msg(st.max_bytes == ok[i].cap, "%s: %llu", ok[i].env, (unsigned long long)st.max_bytes);
        ngs_cache_close(c);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("NGSCALE_CACHE_SIZE", bad[i], 1);
        ck_assert_int_eq(ngs_cache_open(&c, d, NULL, NULL, err, sizeof err), NGS_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(err, "NGSCALE_CACHE_SIZE"));
        c = open_local(d, 12345, 0); /* the options win */
        ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
        ck_assert_uint_eq(st.max_bytes, 12345);
        ngs_cache_close(c);
    }
    unsetenv("NGSCALE_CACHE_SIZE");
    rm_rf(d);
}
END_TEST

START_TEST(store_lookup_hit_and_stats)
{
    char *d = make_tmpdir(), rec[4096], cdir[4096], hit[4096];
    ngs_cache *c;
    ngs_cache_key k = text_key("store 1"), k2 = text_key("store 2"), nk;
    ngs_cache_hit_info info;
    ngs_cache_stats st;
    tscript want, got;
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    fmt(cdir, sizeof cdir, "%s/cache", d);
    record_run(rec, 5, 20000);
    c = open_local(cdir, 0, 0);
    ck_assert_str_eq(ngs_cache_dir(c), cdir);
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, &info), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_store(c, &k, rec, 12.5, "ngspice-39 test\nbuild"), NGS_OK);
    unlink(rec); /* the cache has its own copy */
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, &info), NGS_OK);
    ck_assert_int_eq(info.tier, 1);
    ck_assert_uint_eq(info.bytes, (uint64_t)file_size(hit));
    ck_assert(info.sim_seconds == 12.5);
    ck_assert_str_eq(info.ngspice_version, "ngspice-39 test build");
    ck_assert_int_le(llabs(info.created - (int64_t)time(NULL)), 5);
    ck_assert_ptr_nonnull(strstr(hit, k.hex));
    expect_run(&want, 5, 20000);
    replay_into(hit, &got);
    assert_same(&want, &got);
    ck_assert_int_eq(ngs_cache_lookup(c, &k2, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, 10, NULL), NGS_ERR_ARG); /* path buffer too small */
    nk = k;
    nk.cacheable = 0;
    ck_assert_int_eq(ngs_cache_lookup(c, &nk, hit, sizeof hit, NULL), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_cache_store(c, &nk, rec, 1, NULL), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.misses, 2);
    ck_assert_uint_eq(st.stores, 1);
    ck_assert_uint_eq(st.bytes_served, info.bytes);
    ck_assert(st.sim_seconds_saved == 12.5);
    ck_assert_uint_ge(st.bytes, info.bytes);
    ngs_cache_close(c);
    /* counters persist across opens (and processes) */
    c = open_local(cdir, 0, 0);
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
    ck_assert_uint_eq(st.hits, 2);
    ck_assert(st.sim_seconds_saved == 25.0);
    /* a damaged recording is refused by store */
    record_run(rec, 6, 100);
    flip_byte(rec, file_size(rec) / 2);
    ck_assert_int_eq(ngs_cache_store(c, &k2, rec, 1, NULL), NGS_ERR_FORMAT);
    ck_assert_int_eq(ngs_cache_lookup(c, &k2, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ngs_cache_close(c);
    free(want.b), free(got.b);
    rm_rf(d);
}
END_TEST

START_TEST(store_lru_eviction_under_a_small_cap)
{
    char *d = make_tmpdir(), rec[4096], cdir[4096], hit[4096];
    ngs_cache *c;
    ngs_cache_key ka = text_key("A"), kb = text_key("B"), kc = text_key("C");
    ngs_cache_stats st;
    off_t one;
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    fmt(cdir, sizeof cdir, "%s/cache", d);
    record_big(rec, 1, 4000); /* ~128 KB */
    one = file_size(rec);
    c = open_local(cdir, (uint64_t)one * 5 / 2 + 8192, 0); /* room for two entries */
    ck_assert_int_eq(ngs_cache_store(c, &ka, rec, 1, NULL), NGS_OK);
    sleep_ms(30);
    record_big(rec, 2, 4000);
    ck_assert_int_eq(ngs_cache_store(c, &kb, rec, 1, NULL), NGS_OK);
    sleep_ms(30);
    ck_assert_int_eq(ngs_cache_lookup(c, &ka, hit, sizeof hit, NULL), NGS_OK); /* A is now the most recent */
    sleep_ms(30);
    record_big(rec, 3, 4000);
    ck_assert_int_eq(ngs_cache_store(c, &kc, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_lookup(c, &kb, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_lookup(c, &ka, hit, sizeof hit, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_lookup(c, &kc, hit, sizeof hit, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_uint_eq(st.evictions, 1);
    ck_assert_uint_le(st.bytes, st.max_bytes);
    ngs_cache_close(c);
    /* an entry larger than the cap is not kept locally */
    c = open_local(cdir, (uint64_t)one / 2, 0);
    ck_assert_int_eq(ngs_cache_store(c, &kb, rec, 1, NULL), NGS_CACHE_NOT_STORED);
    ck_assert_int_eq(ngs_cache_take_warning(c, hit, sizeof hit), 1);
    ck_assert_ptr_nonnull(strstr(hit, "not stored: entry of "));
    ck_assert_ptr_nonnull(strstr(hit, "bytes is over the cache's size cap of "));
    ck_assert_int_eq(ngs_cache_lookup(c, &kb, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ngs_cache_close(c);
    rm_rf(d);
}
END_TEST

static void entry_file(const char *cdir, const ngs_cache_key *k, const char *ext, char *out, size_t n)
{
    fmt(out, n, "%s/%.2s/%s.%s", cdir, k->hex, k->hex, ext);
}

START_TEST(store_corrupt_entries_are_misses_and_gc_cleans_up)
{
    char *d = make_tmpdir(), rec[4096], cdir[4096], hit[4096], p[4096], q[4096];
    ngs_cache *c;
    ngs_cache_key k1 = text_key("k1"), k2 = text_key("k2"), k3 = text_key("k3"), k4 = text_key("k4"),
                  k5 = text_key("k5");
    ngs_cache_gc_result g;
    ngs_cache_stats st;
    int held;
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    fmt(cdir, sizeof cdir, "%s/cache", d);
    record_run(rec, 7, 3000);
    c = open_local(cdir, 0, -1);
    ck_assert_int_eq(ngs_cache_store(c, &k1, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_store(c, &k2, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_store(c, &k3, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_store(c, &k4, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_store(c, &k5, rec, 1, NULL), NGS_OK);

    /* bit flip in k1's recording: a miss, and the entry is gone */
    entry_file(cdir, &k1, "ngsc", p, sizeof p);
    flip_byte(p, file_size(p) / 2);
    ck_assert_int_eq(ngs_cache_lookup(c, &k1, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(access(p, F_OK), -1);
    ck_assert_int_eq(ngs_cache_take_warning(c, hit, sizeof hit), 1);
    ck_assert_ptr_nonnull(strstr(hit, "corrupt"));
    /* truncated k2: a miss */
    entry_file(cdir, &k2, "ngsc", p, sizeof p);
    ck_assert_int_eq(truncate(p, file_size(p) - 10), 0);
    ck_assert_int_eq(ngs_cache_lookup(c, &k2, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
    ck_assert_uint_eq(st.corrupt, 2);

    /* left for gc: k3 metadata damaged, k4 without metadata, k5 bit flip (found by
     * verify_data only), stray temp files, one of them still being written */
    entry_file(cdir, &k3, "meta", p, sizeof p);
    flip_byte(p, 30);
    entry_file(cdir, &k4, "meta", p, sizeof p);
    unlink(p);
    entry_file(cdir, &k5, "ngsc", p, sizeof p);
    flip_byte(p, file_size(p) / 2);
    fmt(p, sizeof p, "%s/%.2s/.tmp-dead01", cdir, k5.hex);
    put("/", p + 1, "partial");
    fmt(q, sizeof q, "%s/%.2s/.tmp-live01", cdir, k5.hex);
    put("/", q + 1, "being written");
    held = open(q, O_RDONLY);
    ck_assert_int_eq(flock(held, LOCK_EX), 0);
    ck_assert_int_eq(ngs_cache_gc(c, 0, &g), NGS_OK);
    ck_assert_uint_eq(g.temp_removed, 1);
    ck_assert_uint_eq(g.corrupt_removed, 2);
    ck_assert_uint_eq(g.entries, 1);
    ck_assert_int_eq(access(p, F_OK), -1);
    ck_assert_int_eq(access(q, F_OK), 0); /* its writer is alive */
    close(held);
    ck_assert_int_eq(ngs_cache_gc(c, 1, &g), NGS_OK);
    ck_assert_uint_eq(g.temp_removed, 1);
    ck_assert_uint_eq(g.corrupt_removed, 1); /* k5 */
    ck_assert_uint_eq(g.entries, 0);
    ck_assert_uint_eq(g.bytes, 0);
    ck_assert_int_eq(ngs_cache_lookup(c, &k5, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ngs_cache_close(c);
    rm_rf(d);
}
END_TEST

static int list_cb(const ngs_cache_entry *e, void *user)
{
    char (*keys)[65] = user;
    int i = 0;
    while (keys[i][0]) i++;
    memcpy(keys[i], e->key, 65);
    ck_assert_uint_gt(e->bytes, 0);
    ck_assert(e->sim_seconds == 3.0);
    ck_assert_int_ge(e->last_used, e->created - 1);
    return 0;
}

START_TEST(store_list_and_clear)
{
    char *d = make_tmpdir(), rec[4096], cdir[4096], hit[4096];
    char keys[8][65];
    ngs_cache *c;
    ngs_cache_key k1 = text_key("l1"), k2 = text_key("l2");
    ngs_cache_stats st;
    uint64_t removed = 0;
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    fmt(cdir, sizeof cdir, "%s/cache", d);
    record_run(rec, 8, 100);
    c = open_local(cdir, 0, 0);
    ck_assert_int_eq(ngs_cache_store(c, &k1, rec, 3, "v"), NGS_OK);
    sleep_ms(30);
    ck_assert_int_eq(ngs_cache_store(c, &k2, rec, 3, "v"), NGS_OK);
    sleep_ms(30);
    ck_assert_int_eq(ngs_cache_store(c, &k2, rec, 3, "v"), NGS_OK); /* again: still one entry */
    ck_assert_int_eq(ngs_cache_lookup(c, &k1, hit, sizeof hit, NULL), NGS_OK);
    memset(keys, 0, sizeof keys);
    ck_assert_int_eq(ngs_cache_list(c, list_cb, keys), NGS_OK);
    ck_assert_str_eq(keys[0], k1.hex); /* most recently used first */
    ck_assert_str_eq(keys[1], k2.hex);
    ck_assert_str_eq(keys[2], "");
    ck_assert_int_eq(ngs_cache_clear(c, 0, &removed), NGS_OK);
    ck_assert_uint_eq(removed, 2);
    ck_assert_int_eq(ngs_cache_lookup(c, &k1, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_int_eq(ngs_cache_clear(c, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
    ck_assert_uint_eq(st.hits, 0);
    ck_assert_uint_eq(st.misses, 0);
    ck_assert_int_eq(ngs_cache_remove(c, k1.hex), NGS_OK);
    ck_assert_int_eq(ngs_cache_remove(c, "nothex"), NGS_ERR_ARG);
    ngs_cache_close(c);
    rm_rf(d);
}
END_TEST

START_TEST(store_same_key_from_several_processes)
{
    enum { NPROC = 6 };
    char *d = make_tmpdir(), cdir[4096], hit[4096], shard[4096];
    ngs_cache_key k = text_key("contended");
    pid_t pids[NPROC];
    int go[2];
    tscript got, want[NPROC];
    int match = 0;
    fmt(cdir, sizeof cdir, "%s/cache", d);
    for (int i = 0; i < NPROC; i++) { /* different contents under one key: worst case */
        char rec[4096];
        fmt(rec, sizeof rec, "%s/run%d.ngsc", d, i);
        record_run(rec, 100 + (uint64_t)i, 20000 + (size_t)i * 1000);
        expect_run(&want[i], 100 + (uint64_t)i, 20000 + (size_t)i * 1000);
    }
    ck_assert_int_eq(pipe(go), 0);
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            char rec[4096], b;
            ngs_cache *c;
            close(go[1]);
            fmt(rec, sizeof rec, "%s/run%d.ngsc", d, i);
            if (ngs_cache_open(&c, cdir, NULL, NULL, NULL, 0) != NGS_OK) _exit(2);
            if (read(go[0], &b, 1) < 0) _exit(3); /* all start together */
            _exit(ngs_cache_store(c, &k, rec, 1, NULL) == NGS_OK ? 0 : 1);
        }
    }
    close(go[0]);
    close(go[1]); /* releases every child at once */
    for (int i = 0; i < NPROC; i++) {
        int status;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    {
        ngs_cache *c = open_local(cdir, 0, 0);
        ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, NULL), NGS_OK);
        replay_into(hit, &got);
        for (int i = 0; i < NPROC; i++) match += got.n == want[i].n && memcmp(got.b, want[i].b, got.n) == 0;
        ck_assert_int_eq(match, 1);
        ngs_cache_close(c);
    }
    fmt(shard, sizeof shard, "%s/%.2s", cdir, k.hex);
    ck_assert_int_eq(count_files(shard), 2); /* one .ngsc, one .meta, no temporary file */
    for (int i = 0; i < NPROC; i++) free(want[i].b);
    free(got.b);
    rm_rf(d);
}
END_TEST

/* Processes that open a new cache directory at the same moment (a team's batch
 * jobs starting) all get it: one sees the tag another just wrote, not a stranger's
 * directory. Before the fix, about one open in eight was refused. */
START_TEST(first_opens_side_by_side_all_succeed)
{
    enum { NPROC = 8, ROUNDS = 25 };
    char *d = make_tmpdir();
    int failed = 0;
    for (int r = 0; r < ROUNDS; r++) {
        char cdir[4096];
        pid_t pids[NPROC];
        int go[2];
        fmt(cdir, sizeof cdir, "%s/cache%d", d, r);
        ck_assert_int_eq(pipe(go), 0);
        for (int i = 0; i < NPROC; i++) {
            pids[i] = fork();
            ck_assert_int_ge(pids[i], 0);
            if (pids[i] == 0) {
                ngs_cache *c = NULL;
                char b;
                int rc;
                close(go[1]);
                if (read(go[0], &b, 1) < 0) _exit(3); /* all start together */
                rc = ngs_cache_open(&c, cdir, NULL, NULL, NULL, 0);
                ngs_cache_close(c);
                _exit(rc == NGS_OK ? 0 : 1);
            }
        }
        close(go[0]);
        close(go[1]);
        for (int i = 0; i < NPROC; i++) {
            int status;
            ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
            failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
    }
    ck_assert_int_eq(failed, 0);
    rm_rf(d);
}
END_TEST

typedef struct {
    ngs_cache *c;
    const char *rec;
    int id, failures;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *a = p;
    char hit[4096], name[64];
    for (int i = 0; i < 20; i++) {
        ngs_cache_key k;
        fmt(name, sizeof name, "thread key %d", (a->id + i) % 7);
        if (ngs_cache_key_compute(&k, NULL, name, "/", NULL, NULL, NULL, NULL, 0) != NGS_OK) a->failures++;
        if (ngs_cache_lookup(a->c, &k, hit, sizeof hit, NULL) == NGS_OK) {
            if (ngs_recording_verify(hit, NULL, NULL, 0) != NGS_OK && access(hit, F_OK) == 0) a->failures++;
        } else if (ngs_cache_store(a->c, &k, a->rec, 1, NULL) != NGS_OK) {
            a->failures++;
        }
    }
    return NULL;
}

START_TEST(store_one_cache_shared_by_threads)
{
    char *d = make_tmpdir(), rec[4096], cdir[4096];
    ngs_cache *c;
    pthread_t t[4];
    thread_arg a[4];
    ngs_cache_stats st;
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    fmt(cdir, sizeof cdir, "%s/cache", d);
    record_run(rec, 9, 2000);
    c = open_local(cdir, 0, 0);
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){c, rec, i, 0};
        ck_assert_int_eq(pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(a[i].failures, 0);
    }
    ck_assert_int_eq(ngs_cache_get_stats(c, &st), NGS_OK);
    ck_assert_uint_eq(st.entries, 7);
    ck_assert_uint_eq(st.hits + st.misses, 80);
    ngs_cache_close(c);
    rm_rf(d);
}
END_TEST

/* =================================================================== Redis == */

typedef struct {
    pid_t pid;
    int port;
    char *dir;
} redis_server;

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int s = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(s);
    return port;
}

static int have_redis(void)
{
    if (access(REDIS_SERVER, X_OK) == 0) return 1;
    printf("SKIP: %s not found: Redis tier not tested\n", REDIS_SERVER);
    return 0;
}

/* Our own redis-server on 127.0.0.1 and a free port, killed with this process. */
static void redis_start(redis_server *r, const char *password)
{
    char port[16];
    r->dir = make_tmpdir();
    r->port = free_port();
    fmt(port, sizeof port, "%d", r->port);
    r->pid = fork();
    ck_assert_int_ge(r->pid, 0);
    if (r->pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(null, 1);
        dup2(null, 2);
        if (password)
            execl(REDIS_SERVER, REDIS_SERVER, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
                  "no", "--dir", r->dir, "--requirepass", password, (char *)NULL);
        else
            execl(REDIS_SERVER, REDIS_SERVER, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
                  "no", "--dir", r->dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250; i++) { /* up to 5 s */
        redisContext *c = redisConnect("127.0.0.1", r->port);
        if (c && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            int ok = rep != NULL; /* PONG, or NOAUTH: it is up */
            if (rep) freeReplyObject(rep);
            redisFree(c);
            if (ok) return;
        } else if (c) {
            redisFree(c);
        }
        sleep_ms(20);
    }
    ck_abort_msg("redis-server did not start");
}

static void redis_stop(redis_server *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
    rm_rf(r->dir);
    r->dir = NULL;
}

static redisContext *redis_admin(const redis_server *r, const char *password)
{
    redisContext *c = redisConnect("127.0.0.1", r->port);
    ck_assert(c && !c->err);
    if (password) {
        redisReply *rep = redisCommand(c, "AUTH %s", password);
        ck_assert(rep && rep->type != REDIS_REPLY_ERROR);
        freeReplyObject(rep);
    }
    return c;
}

static ngs_cache *open_tiered(const char *dir, const char *url, int retry_s)
{
    ngs_cache *c;
    ngs_cache_options o;
    char err[256];
    ngs_cache_options_init(&o);
    o.redis_retry_s = retry_s;
    o.redis_command_timeout_ms = 1000;
    ck_assert_int_eq(ngs_cache_open(&c, dir, url, &o, err, sizeof err), NGS_OK);
    return c;
}

/* Two machines' cache directories sharing one redis-server (database db). */
typedef struct {
    redis_server r;
    char *d, a[4096], b[4096], url[128];
} two_machines;

static int two_machines_start(two_machines *t, int db)
{
    if (!have_redis()) return 0;
    redis_start(&t->r, NULL);
    t->d = make_tmpdir();
    fmt(t->a, sizeof t->a, "%s/machine-a", t->d);
    fmt(t->b, sizeof t->b, "%s/machine-b", t->d);
    fmt(t->url, sizeof t->url, "redis://127.0.0.1:%d/%d", t->r.port, db);
    return 1;
}

static void two_machines_stop(two_machines *t)
{
    rm_rf(t->d);
    redis_stop(&t->r);
}

START_TEST(redis_hit_on_a_second_machine)
{
    two_machines t;
    char rec[4096], *a = t.a, *b = t.b, *url = t.url, hit[4096], w[512];
    ngs_cache *ca, *cb;
    ngs_cache_key k = text_key("shared run");
    ngs_cache_hit_info info;
    ngs_cache_stats st;
    tscript want, got;
    if (!two_machines_start(&t, 3)) return;
    fmt(rec, sizeof rec, "%s/run.ngsc", t.d);
    record_run(rec, 11, 30000);
    ca = open_tiered(a, url, 0);
    cb = open_tiered(b, url, 0);
    ck_assert_int_eq(ngs_cache_store(ca, &k, rec, 4.0, "ngspice-39"), NGS_OK);
    ck_assert_int_eq(ngs_cache_take_warning(ca, w, sizeof w), 0);
    ck_assert_int_eq(ngs_cache_lookup(cb, &k, hit, sizeof hit, &info), NGS_OK);
    ck_assert_int_eq(info.tier, 2);
    ck_assert(info.sim_seconds == 4.0);
    ck_assert_str_eq(info.ngspice_version, "ngspice-39");
    ck_assert_ptr_nonnull(strstr(hit, b));
    expect_run(&want, 11, 30000);
    replay_into(hit, &got);
    assert_same(&want, &got);
    ck_assert_int_eq(ngs_cache_lookup(cb, &k, hit, sizeof hit, &info), NGS_OK);
    ck_assert_int_eq(info.tier, 1); /* now local */
    ck_assert_int_eq(ngs_cache_get_stats(cb, &st), NGS_OK);
    ck_assert_uint_eq(st.redis_hits, 1);
    ck_assert_uint_eq(st.hits, 2);
    { /* db 3 was selected: db 0 is empty */
        redisContext *adm = redis_admin(&t.r, NULL);
        redisReply *rep = redisCommand(adm, "DBSIZE");
        ck_assert_int_eq(rep->integer, 0);
        freeReplyObject(rep);
        rep = redisCommand(adm, "SELECT 3");
        freeReplyObject(rep);
        rep = redisCommand(adm, "TTL ngscale:v1:%s", k.hex);
        ck_assert_int_gt(rep->integer, 3600);
        freeReplyObject(rep);
        redisFree(adm);
    }
    ck_assert_int_eq(ngs_cache_take_warning(cb, w, sizeof w), 0);
    ngs_cache_close(ca);
    ngs_cache_close(cb);
    free(want.b), free(got.b);
    two_machines_stop(&t);
}
END_TEST

/* A teammate's entry larger than this machine's local cap: a hit, served through a
 * directory of the handle's own. Installed locally, it evicted every other entry
 * and left the store over its cap. */
START_TEST(redis_hit_over_the_local_cap_is_not_kept_locally)
{
    two_machines t;
    char rec[4096], small[4096], *b = t.b, hit[4096], w[512], staged[4096];
    ngs_cache *ca, *cb;
    ngs_cache_key big = text_key("big shared run"), mine = text_key("my small run");
    ngs_cache_options o;
    ngs_cache_hit_info info;
    ngs_cache_stats st;
    tscript want, got;
    if (!two_machines_start(&t, 0)) return;
    fmt(rec, sizeof rec, "%s/big.ngsc", t.d);
    fmt(small, sizeof small, "%s/small.ngsc", t.d);
    record_run(rec, 5, 30000);
    record_run(small, 6, 10);
    ca = open_tiered(t.a, t.url, 0);
    ck_assert_int_eq(ngs_cache_store(ca, &big, rec, 1.0, NULL), NGS_OK);
    ngs_cache_options_init(&o);
    o.max_bytes = (uint64_t)file_size(rec) / 2;
    ck_assert_int_lt(file_size(small) * 2, o.max_bytes);
    ck_assert_int_eq(ngs_cache_open(&cb, b, t.url, &o, w, sizeof w), NGS_OK);
    ck_assert_int_eq(ngs_cache_store(cb, &mine, small, 1.0, NULL), NGS_OK);

    ck_assert_int_eq(ngs_cache_lookup(cb, &big, hit, sizeof hit, &info), NGS_OK);
    ck_assert_int_eq(info.tier, 2);
    ck_assert_msg(strncmp(hit, b, strlen(b)) != 0, "staged in the local store: %s", hit);
    expect_run(&want, 5, 30000);
    replay_into(hit, &got);
    assert_same(&want, &got);
    ck_assert_int_eq(ngs_cache_take_warning(cb, w, sizeof w), 1);
    ck_assert_msg(strstr(w, "size cap") && strstr(w, "not kept locally"), "%s", w);
    ck_assert_int_eq(ngs_cache_get_stats(cb, &st), NGS_OK);
    ck_assert_uint_eq(st.entries, 1); /* my own entry is still there */
    ck_assert_uint_le(st.bytes, o.max_bytes);
    ck_assert_int_eq(ngs_cache_lookup(cb, &mine, hit, sizeof hit, &info), NGS_OK);
    ck_assert_int_eq(info.tier, 1);
    ck_assert_int_eq(ngs_cache_lookup(cb, &big, staged, sizeof staged, &info), NGS_OK);
    ngs_cache_close(cb);
    ck_assert_int_eq(access(staged, F_OK), -1); /* the staging directory went with the handle */
    ngs_cache_close(ca);
    free(want.b), free(got.b);
    two_machines_stop(&t);
}
END_TEST

/* A manifest key holding something else (another type, text that is not ours) is
 * that entry's miss, removed so that the next store shares the run again. A
 * WRONGTYPE reply had Redis skipped as if the server were down, stores included,
 * and text that is not a manifest stayed forever: every store found the key
 * "already shared". */
START_TEST(redis_foreign_value_at_a_key_is_replaced_by_the_next_store)
{
    static const char *const poison[] = {"RPUSH %s x", "SET %s junk"};
    two_machines t;
    char rec[4096], dir[4096], hit[4096], w[512];
    ngs_cache_key k = text_key("poisoned run");
    ngs_cache_hit_info info;
    if (!two_machines_start(&t, 0)) return;
    fmt(rec, sizeof rec, "%s/run.ngsc", t.d);
    record_run(rec, 8, 100);
    for (size_t i = 0; i < sizeof poison / sizeof poison[0]; i++) {
        redisContext *adm = redis_admin(&t.r, NULL);
        ngs_cache *cb, *cc;
        char mkey[128];
        fmt(mkey, sizeof mkey, "ngscale:v1:%s", k.hex);
        freeReplyObject(redisCommand(adm, "DEL %s", mkey));
        freeReplyObject(redisCommand(adm, poison[i], mkey));
        redisFree(adm);
        fmt(dir, sizeof dir, "%s/b%zu", t.d, i);
        cb = open_tiered(dir, t.url, 30);
        ck_assert_int_eq(ngs_cache_lookup(cb, &k, hit, sizeof hit, &info), NGS_CACHE_MISS);
        ck_assert_int_eq(ngs_cache_take_warning(cb, w, sizeof w), 1);
        ck_assert_msg(strstr(w, "bad manifest") && !strstr(w, "failed"), "%s: %s", poison[i], w);
        ck_assert_int_eq(ngs_cache_store(cb, &k, rec, 1.0, NULL), NGS_OK);
        ck_assert_msg(!ngs_cache_take_warning(cb, w, sizeof w), "%s: %s", poison[i], w);
        ngs_cache_close(cb);
        fmt(dir, sizeof dir, "%s/c%zu", t.d, i);
        cc = open_tiered(dir, t.url, 30);
        ck_assert_msg(ngs_cache_lookup(cc, &k, hit, sizeof hit, &info) == NGS_OK, "%s: not shared again", poison[i]);
        ck_assert_int_eq(info.tier, 2);
        ngs_cache_close(cc);
    }
    two_machines_stop(&t);
}
END_TEST

/* A machine whose cache directory cannot be made (a read-only or missing home in a
 * container) still gets Redis hits, staged in a directory removed at close. */
START_TEST(redis_alone_when_the_local_directory_is_unusable)
{
    redis_server r;
    char *d, rec[4096], a[4096], blocker[4096], b[4096], url[128], hit[4096], w[512], staged[4096];
    ngs_cache *ca, *cb;
    ngs_cache_key k = text_key("run seen from a read-only home");
    ngs_cache_hit_info info;
    tscript want, got;
    struct stat st;
    if (!have_redis()) return;
    redis_start(&r, NULL);
    d = make_tmpdir();
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    fmt(a, sizeof a, "%s/machine-a", d);
    fmt(blocker, sizeof blocker, "%s/a-file", d);
    fmt(b, sizeof b, "%s/cache", blocker); /* under a file: cannot be created */
    put(d, "a-file", "not a directory\n");
    fmt(url, sizeof url, "redis://127.0.0.1:%d/0", r.port);
    record_run(rec, 5, 2000);
    ca = open_tiered(a, url, 0);
    ck_assert_int_eq(ngs_cache_store(ca, &k, rec, 1.5, NULL), NGS_OK);
    cb = open_tiered(b, url, 0);
    ck_assert_int_eq(ngs_cache_take_warning(cb, w, sizeof w), 1);
    ck_assert_ptr_nonnull(strstr(w, "Redis alone"));
    ck_assert_int_eq(ngs_cache_lookup(cb, &k, hit, sizeof hit, &info), NGS_OK);
    ck_assert_int_eq(info.tier, 2);
    expect_run(&want, 5, 2000);
    replay_into(hit, &got);
    assert_same(&want, &got);
    fmt(staged, sizeof staged, "%s", ngs_cache_dir(cb));
    ck_assert_int_eq(stat(staged, &st), 0);
    ngs_cache_close(cb);
    ck_assert_int_ne(stat(staged, &st), 0); /* nothing left behind */
    { /* Redis down as well: a store says it kept nothing */
        ngs_cache_key k2 = text_key("another run");
        redis_stop(&r);
        cb = open_tiered(b, url, 0);
        ck_assert_int_eq(ngs_cache_store(cb, &k2, rec, 1.0, NULL), NGS_CACHE_NOT_STORED);
        ck_assert_int_eq(ngs_cache_take_warning(cb, w, sizeof w), 1);
        ck_assert_ptr_nonnull(strstr(w, "no cache is used"));
        ngs_cache_close(cb);
    }
    { /* without Redis the same directory is an error, as before */
        ngs_cache *c = NULL;
        char err[256];
        ck_assert_int_eq(ngs_cache_open(&c, b, NULL, NULL, err, sizeof err), NGS_ERR_IO);
        ck_assert_ptr_null(c);
    }
    ngs_cache_close(ca);
    free(want.b), free(got.b);
    rm_rf(d);
}
END_TEST

static void sha_file(const char *path, unsigned char out[32])
{
    ngs_recording_info info;
    ck_assert_int_eq(ngs_recording_verify(path, &info, NULL, 0), NGS_OK);
    memcpy(out, info.sha256, 32);
}

START_TEST(redis_large_entry_in_chunks_and_a_corrupt_chunk)
{
    redis_server r;
    char *d, rec[4096], a[4096], b[4096], c2[4096], url[128], hit[4096], w[512];
    ngs_cache *ca, *cb, *cc;
    ngs_cache_key k = text_key("big run");
    ngs_cache_hit_info info;
    unsigned char s1[32], s2[32];
    redisContext *adm;
    redisReply *rep;
    off_t size;
    double t0, t_put, t_get;
    if (!have_redis()) return;
    redis_start(&r, NULL);
    d = make_tmpdir();
    fmt(rec, sizeof rec, "%s/big.ngsc", d);
    fmt(a, sizeof a, "%s/a", d);
    fmt(b, sizeof b, "%s/b", d);
    fmt(c2, sizeof c2, "%s/c", d);
    fmt(url, sizeof url, "redis://127.0.0.1:%d", r.port);
    record_big(rec, 5, (size_t)22 << 15); /* 720896 rows x 32 bytes, a bit over 20 MiB compressed */
    size = file_size(rec);
    ck_assert_int_gt(size, 20 << 20);
    ca = open_tiered(a, url, 0);
    cb = open_tiered(b, url, 0);
    t0 = now_ms();
    ck_assert_int_eq(ngs_cache_store(ca, &k, rec, 1, NULL), NGS_OK);
    t_put = now_ms() - t0;
    t0 = now_ms();
    ck_assert_int_eq(ngs_cache_lookup(cb, &k, hit, sizeof hit, &info), NGS_OK);
    t_get = now_ms() - t0;
    printf("redis: store (local + upload) of a %.1f MiB entry %.0f ms, lookup from an empty local tier "
           "(download + verify + install) %.0f ms\n", (double)size / 1048576.0, t_put, t_get);
    ck_assert_int_eq(info.tier, 2);
    sha_file(rec, s1);
    sha_file(hit, s2);
    ck_assert(memcmp(s1, s2, 32) == 0);
    adm = redis_admin(&r, NULL);
    rep = redisCommand(adm, "KEYS ngscale:v1:%s:*", k.hex);
    ck_assert_int_eq(rep->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(rep->elements, (size_t)((size + (4 << 20) - 1) / (4 << 20)));
    ck_assert_uint_ge(rep->elements, 5);
    {
        /* damage one byte of one chunk: a third machine misses, and the entry goes */
        redisReply *set = redisCommand(adm, "SETRANGE %s 1000 X", rep->element[2]->str);
        ck_assert_int_eq(set->type, REDIS_REPLY_INTEGER);
        freeReplyObject(set);
    }
    freeReplyObject(rep);
    cc = open_tiered(c2, url, 0);
    ck_assert_int_eq(ngs_cache_lookup(cc, &k, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_take_warning(cc, w, sizeof w), 1);
    ck_assert_ptr_nonnull(strstr(w, "corrupt"));
    rep = redisCommand(adm, "EXISTS ngscale:v1:%s", k.hex);
    ck_assert_int_eq(rep->integer, 0);
    freeReplyObject(rep);
    ck_assert_int_eq(count_named(c2, "*.ngsc"), 0);
    ck_assert_int_eq(count_named(c2, ".tmp-*"), 0); /* the download left nothing behind */
    redisFree(adm);
    ngs_cache_close(ca);
    ngs_cache_close(cb);
    ngs_cache_close(cc);
    rm_rf(d);
    redis_stop(&r);
}
END_TEST

START_TEST(redis_killed_or_absent_keeps_the_local_tier)
{
    redis_server r;
    char *d, rec[4096], a[4096], url[128], hit[4096], w[512];
    ngs_cache *c;
    ngs_cache_key k1 = text_key("before"), k2 = text_key("after"), k3 = text_key("never");
    double t0, dt;
    if (!have_redis()) return;
    redis_start(&r, NULL);
    d = make_tmpdir();
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    fmt(a, sizeof a, "%s/a", d);
    fmt(url, sizeof url, "redis://127.0.0.1:%d", r.port);
    record_run(rec, 12, 2000);
    c = open_tiered(a, url, 0);
    ck_assert_int_eq(ngs_cache_store(c, &k1, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_take_warning(c, w, sizeof w), 0);
    kill(r.pid, SIGKILL); /* mid-way: the connection is open */
    waitpid(r.pid, NULL, 0);
    r.pid = 0;
    t0 = now_ms();
    ck_assert_int_eq(ngs_cache_store(c, &k2, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_take_warning(c, w, sizeof w), 1);
    ck_assert_ptr_nonnull(strstr(w, "Redis"));
    ck_assert_int_eq(ngs_cache_lookup(c, &k2, hit, sizeof hit, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_lookup(c, &k1, hit, sizeof hit, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_lookup(c, &k3, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    dt = now_ms() - t0;
    ck_assert_msg(dt < 1500, "took %.0f ms", dt);
    ngs_cache_close(c);

    /* nobody listening on that port; retry on every call (no back-off) */
    fmt(a, sizeof a, "%s/b", d);
    c = open_tiered(a, url, -1);
    t0 = now_ms();
    ck_assert_int_eq(ngs_cache_lookup(c, &k3, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_take_warning(c, w, sizeof w), 1);
    ck_assert_ptr_nonnull(strstr(w, "connect"));
    ck_assert_int_eq(ngs_cache_store(c, &k3, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_lookup(c, &k3, hit, sizeof hit, NULL), NGS_OK);
    dt = now_ms() - t0;
    ck_assert_msg(dt < 1000, "took %.0f ms", dt);
    ngs_cache_close(c);
    rm_rf(d);
    redis_stop(&r);
}
END_TEST

static int warn_count;
static void count_warning(const char *msg, void *user)
{
    (void)msg;
    (void)user;
    warn_count++;
}

START_TEST(redis_silent_server_is_bounded_by_the_timeouts)
{
    /* accepts connections (the kernel's backlog) but never answers */
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    char *d = make_tmpdir(), rec[4096], url[128], hit[4096];
    ngs_cache *c;
    ngs_cache_options o;
    ngs_cache_key k = text_key("silent");
    double t0, dt;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(s, 8), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&addr, &len), 0);
    fmt(url, sizeof url, "redis://:pw@127.0.0.1:%d", ntohs(addr.sin_port));
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    record_run(rec, 13, 100);
    ngs_cache_options_init(&o);
    o.redis_command_timeout_ms = 300;
    o.warn = count_warning;
    warn_count = 0;
    fmt(hit, sizeof hit, "%s/cache", d); /* beside the recording: a cache takes no directory over */
    ck_assert_int_eq(ngs_cache_open(&c, hit, url, &o, NULL, 0), NGS_OK);
    t0 = now_ms();
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    dt = now_ms() - t0;
    ck_assert_msg(dt >= 250 && dt < 1500, "lookup took %.0f ms", dt);
    ck_assert_int_eq(warn_count, 1);
    /* Redis is now skipped for a while: the next calls do not wait */
    t0 = now_ms();
    ck_assert_int_eq(ngs_cache_store(c, &k, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, NULL), NGS_OK);
    dt = now_ms() - t0;
    ck_assert_msg(dt < 200, "took %.0f ms", dt);
    ck_assert_int_eq(warn_count, 1);
    ngs_cache_close(c);
    /* and so does every other cache of the process on that URL (a batch opens one a
     * job): it neither connects nor warns again */
    fmt(hit, sizeof hit, "%s/cache2", d);
    ck_assert_int_eq(ngs_cache_open(&c, hit, url, &o, NULL, 0), NGS_OK);
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(warn_count, 1);
    ngs_cache_close(c);
    close(s);
    rm_rf(d);
}
END_TEST

/* A "server" that answers the first command (EXISTS -> 0) and hangs up: the next
 * write (a 4 MiB chunk) meets a closed socket, which must not kill us with SIGPIPE. */
static void *hang_up_server(void *arg)
{
    int ls = *(int *)arg, s = accept(ls, NULL, NULL);
    char buf[256];
    size_t got = 0;
    if (s < 0) return NULL;
    while (got < sizeof buf) { /* "*2\r\n$6\r\nEXISTS\r\n$NN\r\n<key>\r\n" */
        ssize_t n = read(s, buf + got, sizeof buf - got);
        if (n <= 0) break;
        got += (size_t)n;
        if (got > 30 && memcmp(buf + got - 2, "\r\n", 2) == 0 && memmem(buf, got, "ngscale:v1:", 11) &&
            buf[got - 3] != ':') break;
    }
    if (write(s, ":0\r\n", 4) != 4) {}
    close(s);
    return NULL;
}

START_TEST(redis_server_hanging_up_mid_upload_is_a_warning)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    char *d = make_tmpdir(), rec[4096], url[128], hit[4096], w[512];
    ngs_cache *c;
    ngs_cache_key k = text_key("hang up");
    pthread_t t;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(listen(ls, 8), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&addr, &len), 0);
    ck_assert_int_eq(pthread_create(&t, NULL, hang_up_server, &ls), 0);
    fmt(url, sizeof url, "redis://127.0.0.1:%d", ntohs(addr.sin_port));
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    record_big(rec, 21, (size_t)1 << 18); /* 8 MiB: two chunks */
    fmt(hit, sizeof hit, "%s/cache", d); /* beside the recording: a cache takes no directory over */
    c = open_tiered(hit, url, 0);
    ck_assert_int_eq(ngs_cache_store(c, &k, rec, 1, NULL), NGS_OK); /* alive: no SIGPIPE */
    ck_assert_int_eq(ngs_cache_take_warning(c, w, sizeof w), 1);
    ck_assert_ptr_nonnull(strstr(w, "SET"));
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, NULL), NGS_OK);
    pthread_join(t, NULL);
    ngs_cache_close(c);
    close(ls);
    rm_rf(d);
}
END_TEST

START_TEST(redis_auth_good_and_bad_password)
{
    redis_server r;
    char *d, rec[4096], dir[4096], url[160], hit[4096], w[512];
    ngs_cache *c, *c2;
    ngs_cache_key k = text_key("auth");
    ngs_cache_hit_info info;
    if (!have_redis()) return;
    redis_start(&r, "s3cr:t@x");
    d = make_tmpdir();
    fmt(rec, sizeof rec, "%s/run.ngsc", d);
    record_run(rec, 14, 500);
    /* the password, %-escaped in the URL */
    fmt(dir, sizeof dir, "%s/a", d);
    fmt(url, sizeof url, "redis://:s3cr%%3At%%40x@127.0.0.1:%d", r.port);
    c = open_tiered(dir, url, 0);
    ck_assert_int_eq(ngs_cache_store(c, &k, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_take_warning(c, w, sizeof w), 0);
    ngs_cache_close(c);
    /* user and password (Redis 6 ACL, default user) on a second machine */
    fmt(dir, sizeof dir, "%s/b", d);
    fmt(url, sizeof url, "redis://default:s3cr%%3At%%40x@127.0.0.1:%d/0", r.port);
    c = open_tiered(dir, url, 0);
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, &info), NGS_OK);
    ck_assert_int_eq(info.tier, 2);
    ngs_cache_close(c);
    /* a wrong password, and none at all: warnings, local tier only */
    fmt(dir, sizeof dir, "%s/c", d);
    fmt(url, sizeof url, "redis://:badpassword123@127.0.0.1:%d", r.port);
    c = open_tiered(dir, url, 0);
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_take_warning(c, w, sizeof w), 1);
    ck_assert_ptr_nonnull(strstr(w, "AUTH"));
    ck_assert_ptr_null(strstr(w, "badpassword123")); /* never print the password */
    ck_assert_int_eq(ngs_cache_store(c, &k, rec, 1, NULL), NGS_OK);
    ck_assert_int_eq(ngs_cache_lookup(c, &k, hit, sizeof hit, &info), NGS_OK);
    ck_assert_int_eq(info.tier, 1);
    fmt(dir, sizeof dir, "%s/d", d);
    fmt(url, sizeof url, "redis://127.0.0.1:%d", r.port);
    c2 = open_tiered(dir, url, 0);
    ck_assert_int_eq(ngs_cache_lookup(c2, &k, hit, sizeof hit, NULL), NGS_CACHE_MISS);
    ck_assert_int_eq(ngs_cache_take_warning(c2, w, sizeof w), 1);
    ck_assert_ptr_nonnull(strstr(w, "NOAUTH"));
    ngs_cache_close(c);
    ngs_cache_close(c2);
    rm_rf(d);
    redis_stop(&r);
}
END_TEST

START_TEST(redis_url_parsing)
{
    ngs_cache *c;
    char *d = make_tmpdir(), err[256];
    static const char *const bad[] = {"http://x", "redis://", "redis://host:0", "redis://host:99999",
                                      "redis://host:12x", "redis://host/abc", "rediss://host", "redis://[::1"};
    static const char *const good[] = {"redis://localhost", "redis://h:1/2", "redis://:p@h", "redis://u:p@h:7/0",
                                       "redis://p@h", "redis://[::1]:6379/1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(ngs_cache_open(&c, d, bad[i], NULL, err, sizeof err) == NGS_ERR_ARG, "accepted %s", bad[i]);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        ck_assert_msg(ngs_cache_open(&c, d, good[i], NULL, err, sizeof err) == NGS_OK, "refused %s: %s", good[i], err);
        ngs_cache_close(c);
    }
    /* specs: DIR, URL, DIR,URL; anything else is refused before anything opens */
    {
        char dir[256], url[256];
        static const char *const bad_specs[] = {"", ",redis://h", "c1,,", "c1,http://h", "redis://h:99999",
                                                "c1,redis://h/x"};
        for (size_t i = 0; i < sizeof bad_specs / sizeof bad_specs[0]; i++)
            ck_assert_msg(ngs_cache_spec_parse(bad_specs[i], dir, sizeof dir, url, sizeof url, err, sizeof err) ==
                              NGS_ERR_ARG && err[0], "accepted '%s'", bad_specs[i]);
        ck_assert_int_eq(ngs_cache_spec_parse("c1,redis://h:7/1", dir, sizeof dir, url, sizeof url, err, sizeof err),
                         NGS_OK);
        ck_assert_str_eq(dir, "c1");
        ck_assert_str_eq(url, "redis://h:7/1");
        ck_assert_int_eq(ngs_cache_spec_parse("redis://h", dir, sizeof dir, url, sizeof url, err, sizeof err), NGS_OK);
        ck_assert_str_eq(dir, "");
        ck_assert_int_eq(ngs_cache_spec_parse("a dir", dir, sizeof dir, url, sizeof url, err, sizeof err), NGS_OK);
        ck_assert_str_eq(dir, "a dir");
        ck_assert_str_eq(url, "");
    }
    rm_rf(d);
}
END_TEST

/* --cache . in a project directory must not overwrite its "stats" nor tag it a cache */
START_TEST(store_never_takes_over_a_directory_with_other_files)
{
    ngs_cache *c = NULL;
    char *d = make_tmpdir(), sub[512], file[600], err[512], text[64] = "";
    FILE *f;
    fmt(sub, sizeof sub, "%s/project", d);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    fmt(file, sizeof file, "%s/stats", sub);
    f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("my numbers\n", f);
    fclose(f);
    ck_assert_int_eq(ngs_cache_open(&c, sub, NULL, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(err, "not an ngscale cache"));
    f = fopen(file, "r");
    ck_assert_ptr_nonnull(fgets(text, sizeof text, f));
    fclose(f);
    ck_assert_str_eq(text, "my numbers\n");
    fmt(file, sizeof file, "%s/CACHEDIR.TAG", sub);
    ck_assert_int_ne(access(file, F_OK), 0);
    /* an empty directory becomes a cache, and stays one when reopened */
    fmt(sub, sizeof sub, "%s/empty", d);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(ngs_cache_open(&c, sub, NULL, NULL, err, sizeof err), NGS_OK);
    ngs_cache_close(c);
    ck_assert_int_eq(ngs_cache_open(&c, sub, NULL, NULL, err, sizeof err), NGS_OK);
    ngs_cache_close(c);
    rm_rf(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *key = tcase_create("key"), *rec = tcase_create("record"), *store = tcase_create("store"),
          *redis = tcase_create("redis");
    tcase_set_timeout(key, 60);
    tcase_set_timeout(rec, 120);
    tcase_set_timeout(store, 120);
    tcase_set_timeout(redis, 120);
    tcase_add_test(key, key_identical_input_and_trailing_whitespace);
    tcase_add_test(key, key_follows_two_levels_of_include);
    tcase_add_test(key, key_follows_an_include_among_commands);
    tcase_add_test(key, key_follows_lib_sections_only);
    tcase_add_test(key, key_reads_an_old_style_lib_file_as_an_include);
    tcase_add_test(key, key_follows_parameters_analyses_and_options);
    tcase_add_test(key, key_follows_environment_variables_a_control_block_reads);
    tcase_add_test(key, key_follows_extra_strings_and_files);
    tcase_add_test(key, key_reads_spiceinit_as_commands);
    tcase_add_test(key, key_disabling_constructs);
    tcase_add_test(key, key_constructs_that_stay_cacheable);
    tcase_add_test(key, key_follows_files_read_by_commands_and_models);
    tcase_add_test(key, key_search_dirs_quotes_and_comments);
    tcase_add_test(key, key_follows_a_sourcepath_the_deck_sets);
    tcase_add_test(rec, record_replay_round_trip_is_bit_exact);
    tcase_add_test(store, store_never_takes_over_a_directory_with_other_files);
    tcase_add_test(rec, record_damaged_files_are_refused_before_any_event);
    tcase_add_test(rec, record_replay_stops_when_the_hook_says_so);
    tcase_add_test(rec, record_abort_and_failures_leave_no_file);
    tcase_add_test(store, store_lookup_hit_and_stats);
    tcase_add_test(store, store_lru_eviction_under_a_small_cap);
    tcase_add_test(store, store_corrupt_entries_are_misses_and_gc_cleans_up);
    tcase_add_test(store, store_list_and_clear);
    tcase_add_test(store, store_same_key_from_several_processes);
    tcase_add_test(store, first_opens_side_by_side_all_succeed);
    tcase_add_test(store, size_cap_from_options_environment_or_default);
    tcase_add_test(store, store_one_cache_shared_by_threads);
    tcase_add_test(redis, redis_url_parsing);
    tcase_add_test(redis, redis_hit_on_a_second_machine);
    tcase_add_test(redis, redis_hit_over_the_local_cap_is_not_kept_locally);
    tcase_add_test(redis, redis_foreign_value_at_a_key_is_replaced_by_the_next_store);
    tcase_add_test(redis, redis_alone_when_the_local_directory_is_unusable);
    tcase_add_test(redis, redis_large_entry_in_chunks_and_a_corrupt_chunk);
    tcase_add_test(redis, redis_killed_or_absent_keeps_the_local_tier);
    tcase_add_test(redis, redis_silent_server_is_bounded_by_the_timeouts);
    tcase_add_test(redis, redis_auth_good_and_bad_password);
    tcase_add_test(redis, redis_server_hanging_up_mid_upload_is_a_warning);
    suite_add_tcase(s, key);
    suite_add_tcase(s, rec);
    suite_add_tcase(s, store);
    suite_add_tcase(s, redis);
    return ngs_run_suite(s);
}
