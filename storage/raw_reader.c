/*
 * raw_reader.c - streaming reader for SPICE RAW files (see raw.h).
 *
 * Why it looks like this:
 * - The file is memory-mapped and only the plot headers are parsed at open. A binary
 *   plot's data length is No. Points x row size, so opening skips it without touching
 *   it; an ASCII plot has no length, so opening runs a cheap line scan (memchr) to find
 *   where the next header starts, and the first access to the plot tokenizes it once to
 *   count its points, check that every value is a number (a converter knows where the
 *   good points end before it writes anything: the plot ends at a bad one) and keep a
 *   sparse index (every Kth point, K doubling so the index never exceeds 16 Ki entries).
 * - Reads stream over the mapping in blocks and give the pages back (MADV_DONTNEED)
 *   behind them on large files, so the resident set stays a few MiB whatever the file
 *   size (the data stays in the page cache for the next reader).
 * - Files still being written (ngspice patches No. Points only at the end of a plot,
 *   so it reads 0 until then; Xyce leaves it blank) and cut files are clamped to their
 *   complete points and flagged, never refused. A count that runs past the next plot's
 *   header is cut there the same way (the header is searched for only when the declared
 *   data are not followed by a header or the end of the file, and in their last 64 KiB).
 * - Errors name the byte offset and a line number; nothing in the input can make the
 *   reader read outside the mapping or allocate more than the header text it holds.
 * - A file that another program cuts short while it is read fails the call that finds
 *   it ("shrank while being read") instead of killing the process with SIGBUS (see
 *   guarded()).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "storage/raw.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINE (1u << 20)          /* longest header line accepted */
#define MAX_VARS (1 << 24)           /* most variables in a plot */
#define IDX_CAP 16384                /* most entries in an ASCII plot's sparse index */
#define RELEASE_MIN (32ull << 20)    /* give pages back only in files larger than this */
#define BLOCK_BYTES (2u << 20)       /* bytes of file streamed between page releases */
#define ARENA_BLOCK 65536
#define HEADER_LOOKBACK 65536u       /* bytes before a binary plot's end checked for a header */

/* Positive results of the header parser (errors are negative ngs_status codes). */
enum { PARSE_EOF_CLEAN = 1, PARSE_EOF_IN_HEADER = 2, PARSE_NOT_HEADER = 3 };
/* Results of the ASCII point parser. */
enum { PT_OK = 0, PT_END = 1, PT_PARTIAL = 2 };

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

typedef struct plot_priv {
    ngs_raw_plot pub;
    ngs_raw_var *vars;
    ngs_raw_line *lines;
    size_t vars_cap, lines_cap;
    uint64_t data_end;       /* ASCII: end of the data region (next header or EOF) */
    /* ASCII state, built on first access */
    int indexed;
    int index_status;        /* status of the index pass, replayed on later calls */
    unsigned kshift;         /* index stride K = 1 << kshift points */
    uint64_t *idx;
    size_t idx_n;
    int cur_valid;           /* cursor: byte offset of point cur_point */
    uint64_t cur_point, cur_off;
} plot_priv;

struct ngs_raw_reader {
    char *path;
    const unsigned char *m;
    uint64_t size;
    int mapped;
    int fd;                  /* of a mapped file, kept to notice that it shrank; else -1 */
    int shrunk;              /* it did: every later call fails without touching the map */
    int parsing;             /* plots[nplots] holds a header being parsed */
    int step;                /* bytes per text unit: 1, or 2 for UTF-16LE */
    uint64_t text_start;     /* after a BOM */
    uint64_t text_limit;     /* everything before this offset is text (line numbers valid) */
    size_t page;
    locale_t cloc;
    plot_priv *plots;
    size_t nplots, plots_cap;
    ngs_raw_file_info info;
    char *line;              /* current header line, UTF-8, NUL-terminated */
    size_t line_len, line_cap;
    arena_block *arena;
    uint64_t fail_off;       /* line of the last header error (resume the scan after it) */
    char err[512];
    char bad_err[400];       /* info.bad_error */
};

/* ---- small helpers ------------------------------------------------------------------ */

static char *arena_dup(ngs_raw_reader *r, const char *s, size_t n)
{
    arena_block *b = r->arena;
    if (!b || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > ARENA_BLOCK ? n + 1 : ARENA_BLOCK;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->next = r->arena;
        b->used = 0;
        b->cap = cap;
        r->arena = b;
    }
    char *d = b->data + b->used;
    memcpy(d, s, n);
    d[n] = '\0';
    b->used += n + 1;
    return d;
}

/* Line number (1-based) of offset off, counting newline units from 'from'. */
static uint64_t count_lines(const ngs_raw_reader *r, uint64_t from, uint64_t off)
{
    uint64_t n = 1;
    if (off > r->size)
        off = r->size;
    const unsigned char *p = r->m + from, *end = r->m + off;
    while (p < end) {
        const unsigned char *q = memchr(p, '\n', (size_t)(end - p));
        if (!q)
            break;
        if (r->step == 1 || ((uint64_t)(q - r->m - r->text_start) % 2 == 0 &&
                             q + 1 < r->m + r->size && q[1] == 0))
            n++;
        p = q + 1;
    }
    return n;
}

/* Formats "<path>: byte N (line L): message" into r->err and returns code. base is the
 * header offset of the plot concerned (for line numbers after binary data). */
static int failv(ngs_raw_reader *r, int code, uint64_t off, uint64_t base, size_t plotno,
                 const char *fmt, va_list ap)
{
    char msg[384];
    vsnprintf(msg, sizeof msg, fmt, ap);
    r->fail_off = off;
    if (off <= r->text_limit)
        snprintf(r->err, sizeof r->err, "%s: byte %llu (line %llu): %s", r->path,
                 (unsigned long long)off,
                 (unsigned long long)count_lines(r, r->text_start, off), msg);
    else
        snprintf(r->err, sizeof r->err, "%s: byte %llu (plot %zu, line %llu of it): %s",
                 r->path, (unsigned long long)off, plotno + 1,
                 (unsigned long long)count_lines(r, base, off), msg);
    return code;
}

static int fail_at(ngs_raw_reader *r, int code, uint64_t off, uint64_t base, size_t plotno,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(r, code, off, base, plotno, fmt, ap);
    va_end(ap);
    return code;
}

static int fail_plain(ngs_raw_reader *r, int code, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, sizeof r->err, "%s: %s", r->path ? r->path : "raw", msg);
    return code;
}

/* Counts n bytes at off that are no plot (junk between plots, or after an ASCII plot's
 * declared points): the plots around them are read, the bytes reported as skipped. */
static void note_skipped(ngs_raw_reader *r, uint64_t off, uint64_t n)
{
    if (!r->info.skipped_gaps++ || off < r->info.trailing_offset)
        r->info.trailing_offset = off;
    r->info.trailing_bytes += n;
}

static int is_blank_str(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\f' || *s == '\v')
        s++;
    return *s == '\0';
}

/* Gives back the pages entirely before hi that lie at or after lo's page. */
static void release(ngs_raw_reader *r, uint64_t lo, uint64_t hi)
{
    if (!r->mapped || r->size < RELEASE_MIN || hi <= lo)
        return;
    uint64_t a = lo & ~(uint64_t)(r->page - 1), b = hi & ~(uint64_t)(r->page - 1);
    if (b > a)
        madvise((void *)(r->m + a), (size_t)(b - a), MADV_DONTNEED);
}

/* ---- a file that shrinks while it is read ------------------------------------------
 * Touching a page of a mapped file past its end raises SIGBUS: a program that truncates
 * the RAW file (a simulation writing it again) killed the converter, and the HDF5 file
 * it was writing was left unclosed. So every access to the mapping runs in guarded().
 * Meanwhile a SIGBUS handler is installed, by the first thread in; the last one out
 * puts the previous handler back, unless another program part has installed its own
 * since. The handler jumps back out of a fault inside the mapping of the reader guarded
 * by the faulting thread itself (a thread-local pointer: the converter reads on a helper
 * thread while encoder threads run), and the call fails; any other SIGBUS goes to the
 * previous handler, or takes the default action. A file cut inside a page reads zeros
 * there instead of faulting: an fstat after each guarded call catches that.
 * Why not pread: the parser works on the mapping throughout (headers, the search for
 * the next header, ASCII tokens), and the mapping costs no copy on the fast path. */
typedef struct bus_guard {
    sigjmp_buf env;
    uintptr_t lo, hi; /* the guarded mapping */
} bus_guard;

/* initial-exec: the handler reads it with a plain load, never allocating TLS */
static _Thread_local bus_guard *tls_guard __attribute__((tls_model("initial-exec")));
static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned bus_users;          /* threads inside guarded() */
static struct sigaction bus_prev;   /* what was installed before the first of them */

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    bus_guard *g = tls_guard;
    uintptr_t a = si ? (uintptr_t)si->si_addr : 0;
    if (g && a >= g->lo && a < g->hi) {
        tls_guard = NULL;
        siglongjmp(g->env, 1);
    }
    if (bus_prev.sa_flags & SA_SIGINFO) {
        bus_prev.sa_sigaction(sig, si, ctx);
    } else if (bus_prev.sa_handler != SIG_DFL && bus_prev.sa_handler != SIG_IGN) {
        bus_prev.sa_handler(sig);
    } else { /* a fault cannot be ignored: die as without this handler */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGBUS, &dfl, NULL);
        raise(SIGBUS);
    }
}

static void bus_enter(void)
{
    pthread_mutex_lock(&bus_lock);
    if (bus_users++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, &bus_prev);
    }
    pthread_mutex_unlock(&bus_lock);
}

static void bus_leave(void)
{
    pthread_mutex_lock(&bus_lock);
    if (--bus_users == 0) {
        struct sigaction cur;
        if (sigaction(SIGBUS, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
            cur.sa_sigaction == on_sigbus)
            sigaction(SIGBUS, &bus_prev, NULL);
    }
    pthread_mutex_unlock(&bus_lock);
}

/* Fails the reader for good when the file is shorter than when it was mapped (or a page
 * of it vanished: faulted). */
static int check_shrunk(ngs_raw_reader *r, int faulted)
{
    struct stat st;
    uint64_t now = fstat(r->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (!faulted && now >= r->size)
        return NGS_OK;
    r->shrunk = 1;
    snprintf(r->err, sizeof r->err,
             "%s shrank while being read (%llu bytes when opened, %llu now): another "
             "program truncated or rewrote it", r->path, (unsigned long long)r->size,
             (unsigned long long)now);
    return NGS_ERR_IO;
}

/* fn(r, arg), with a fault in r's mapping turned into NGS_ERR_IO (see above). */
static int guarded(ngs_raw_reader *r, int (*fn)(ngs_raw_reader *, void *), void *arg)
{
    bus_guard g;
    if (r->shrunk)
        return NGS_ERR_IO; /* r->err still says why */
    if (!r->mapped || tls_guard) /* a caller's buffer; or already guarded */
        return fn(r, arg);
    g.lo = (uintptr_t)r->m;
    g.hi = g.lo + (uintptr_t)r->size;
    bus_enter();
    if (sigsetjmp(g.env, 1) != 0) { /* 1: restores the mask, which blocked SIGBUS */
        bus_leave();
        return check_shrunk(r, 1);
    }
    tls_guard = &g;
    int rc = fn(r, arg);
    tls_guard = NULL;
    bus_leave();
    int shrunk = check_shrunk(r, 0);
    return shrunk != NGS_OK ? shrunk : rc;
}

/* ---- header lines --------------------------------------------------------------------- */

static int line_put(ngs_raw_reader *r, const char *s, size_t n)
{
    if (r->line_len + n + 1 > r->line_cap) {
        size_t cap = r->line_cap ? r->line_cap : 256;
        while (cap < r->line_len + n + 1)
            cap *= 2;
        char *p = realloc(r->line, cap);
        if (!p)
            return NGS_ERR_NOMEM;
        r->line = p;
        r->line_cap = cap;
    }
    memcpy(r->line + r->line_len, s, n);
    r->line_len += n;
    r->line[r->line_len] = '\0';
    return NGS_OK;
}

/* Reads the text line at *pos into r->line (UTF-8, without "\r\n"). Returns 1 with a
 * line, 0 at end of file (nothing left), or a negative status. *pos moves past the
 * newline; *complete says whether a newline ended the line. */
static int get_line(ngs_raw_reader *r, uint64_t *pos, int *complete, size_t plotno,
                    uint64_t base)
{
    uint64_t p = *pos, start = *pos;
    r->line_len = 0;
    if (line_put(r, "", 0) != NGS_OK)
        return NGS_ERR_NOMEM;
    *complete = 0;
    if (p + (uint64_t)r->step > r->size)
        return 0;
    if (r->step == 1) {
        const unsigned char *s = r->m + p;
        size_t avail = (size_t)(r->size - p);
        const unsigned char *nl = memchr(s, '\n', avail > MAX_LINE + 1 ? MAX_LINE + 1 : avail);
        size_t n = nl ? (size_t)(nl - s) : avail;
        if (n > MAX_LINE)
            return fail_at(r, NGS_ERR_FORMAT, p, base, plotno, "header line longer than 1 MiB");
        if (line_put(r, (const char *)s, n) != NGS_OK)
            return NGS_ERR_NOMEM;
        *pos = p + n + (nl ? 1 : 0);
        *complete = nl != NULL;
    } else {
        char u8[4];
        while (p + 1 < r->size) {
            unsigned c = r->m[p] | (unsigned)r->m[p + 1] << 8;
            p += 2;
            if (c == '\n') {
                *complete = 1;
                break;
            }
            if (c >= 0xD800 && c < 0xDC00 && p + 1 < r->size) {
                unsigned c2 = r->m[p] | (unsigned)r->m[p + 1] << 8;
                if (c2 >= 0xDC00 && c2 < 0xE000) {
                    c = 0x10000 + ((c - 0xD800) << 10) + (c2 - 0xDC00);
                    p += 2;
                } else {
                    c = 0xFFFD;
                }
            } else if (c >= 0xD800 && c < 0xE000) {
                c = 0xFFFD;
            }
            size_t n;
            if (c < 0x80) {
                u8[0] = (char)c;
                n = 1;
            } else if (c < 0x800) {
                u8[0] = (char)(0xC0 | c >> 6);
                u8[1] = (char)(0x80 | (c & 0x3F));
                n = 2;
            } else if (c < 0x10000) {
                u8[0] = (char)(0xE0 | c >> 12);
                u8[1] = (char)(0x80 | ((c >> 6) & 0x3F));
                u8[2] = (char)(0x80 | (c & 0x3F));
                n = 3;
            } else {
                u8[0] = (char)(0xF0 | c >> 18);
                u8[1] = (char)(0x80 | ((c >> 12) & 0x3F));
                u8[2] = (char)(0x80 | ((c >> 6) & 0x3F));
                u8[3] = (char)(0x80 | (c & 0x3F));
                n = 4;
            }
            if (r->line_len + n > MAX_LINE)
                return fail_at(r, NGS_ERR_FORMAT, start, base, plotno,
                               "header line longer than 1 MiB");
            if (line_put(r, u8, n) != NGS_OK)
                return NGS_ERR_NOMEM;
        }
        if (!*complete && p + 1 >= r->size)
            p = r->size; /* a lone trailing byte belongs to no unit */
        *pos = p;
    }
    if (r->line_len && r->line[r->line_len - 1] == '\r')
        r->line[--r->line_len] = '\0';
    if (memchr(r->line, '\0', r->line_len))
        return fail_at(r, NGS_ERR_FORMAT, start, base, plotno, "NUL byte in a header line");
    return 1;
}

/* "Key:" with a key of letters, digits, spaces, '.', '_' or '-', starting with a letter. */
size_t ngs_raw_header_key_length(const char *s)
{
    if (!isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < 48 && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':')
            return i;
        if (!isalnum(c) && c != ' ' && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return 0;
}

/* Is there a "Key:" line starting at byte p (in the file's encoding)? */
static int header_line_at(const ngs_raw_reader *r, uint64_t p)
{
    char buf[50];
    size_t n = 0;
    while (n < sizeof buf - 1 && p + (uint64_t)r->step <= r->size) {
        unsigned c = r->m[p];
        if (r->step == 2 && r->m[p + 1])
            return 0;
        if (c == '\n' || c == 0)
            break;
        buf[n++] = (char)c;
        p += (uint64_t)r->step;
        if (c == ':')
            break;
    }
    buf[n] = '\0';
    return ngs_raw_header_key_length(buf) > 0;
}

static int ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Parses an unsigned decimal number filling s (spaces around allowed). Returns 1 and the
 * value, 0 when s is blank, -1 when not a number; *rest points after the digits. */
static int parse_u64(const char *s, uint64_t *v, const char **rest)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s) {
        *v = 0;
        *rest = s;
        return 0;
    }
    if (*s == '+')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    uint64_t x = 0;
    while (isdigit((unsigned char)*s)) {
        unsigned d = (unsigned)(*s - '0');
        if (x > (UINT64_MAX - d) / 10)
            return -1;
        x = x * 10 + d;
        s++;
    }
    *v = x;
    *rest = s;
    return 1;
}

static int push_line(ngs_raw_reader *r, plot_priv *pp, const char *key, size_t klen,
                     const char *value)
{
    if (pp->pub.nlines == pp->lines_cap) {
        size_t cap = pp->lines_cap ? pp->lines_cap * 2 : 16;
        ngs_raw_line *l = realloc(pp->lines, cap * sizeof *l);
        if (!l)
            return NGS_ERR_NOMEM;
        pp->lines = l;
        pp->lines_cap = cap;
    }
    ngs_raw_line *l = &pp->lines[pp->pub.nlines];
    l->key = arena_dup(r, key, klen);
    l->value = value ? arena_dup(r, value, strlen(value)) : NULL;
    if (!l->key || (value && !l->value))
        return NGS_ERR_NOMEM;
    pp->pub.nlines++;
    pp->pub.lines = pp->lines;
    return NGS_OK;
}

/* Parses one variable line "[ws]index name type [params]" held in s. */
static int parse_var(ngs_raw_reader *r, plot_priv *pp, const char *s, uint64_t off,
                     uint64_t base, size_t plotno)
{
    int i = pp->pub.nvars;
    const char *tok[3];
    size_t len[3];
    for (int t = 0; t < 3; t++) {
        while (*s == ' ' || *s == '\t')
            s++;
        tok[t] = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        len[t] = (size_t)(s - tok[t]);
        if (!len[t])
            return fail_at(r, NGS_ERR_FORMAT, off, base, plotno,
                           "variable %d: expected 'index name type'", i);
    }
    char *end;
    errno = 0;
    long idx = strtol(tok[0], &end, 10);
    if (end != tok[0] + len[0] || errno || idx != i)
        return fail_at(r, NGS_ERR_FORMAT, off, base, plotno,
                       "variable %d: index '%.*s' should be %d", i, (int)len[0], tok[0], i);
    while (*s == ' ' || *s == '\t')
        s++;
    size_t plen = strlen(s);
    while (plen && (s[plen - 1] == ' ' || s[plen - 1] == '\t'))
        plen--;
    if ((size_t)pp->pub.nvars == pp->vars_cap) {
        size_t cap = pp->vars_cap ? pp->vars_cap * 2 : 16;
        ngs_raw_var *v = realloc(pp->vars, cap * sizeof *v);
        if (!v)
            return NGS_ERR_NOMEM;
        pp->vars = v;
        pp->vars_cap = cap;
    }
    ngs_raw_var *v = &pp->vars[i];
    memset(v, 0, sizeof *v);
    v->index = i;
    v->name = arena_dup(r, tok[1], len[1]);
    v->type = arena_dup(r, tok[2], len[2]);
    v->params = arena_dup(r, s, plen);
    if (!v->name || !v->type || !v->params)
        return NGS_ERR_NOMEM;
    pp->pub.nvars++;
    pp->pub.vars = pp->vars;
    return NGS_OK;
}

/* Is word one of the blank-separated words of flags (case-insensitive)? */
static int has_flag(const char *flags, const char *word)
{
    size_t n = strlen(word);
    for (const char *s = flags; *s;) {
        while (*s == ' ' || *s == '\t')
            s++;
        const char *t = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if ((size_t)(s - t) == n && strncasecmp(t, word, n) == 0)
            return 1;
    }
    return 0;
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return 1;
    return 0;
}

/* Sets storage, columns and row size from dialect and flags. */
static int layout(ngs_raw_reader *r, plot_priv *pp, uint64_t off, uint64_t base,
                  size_t plotno)
{
    ngs_raw_plot *p = &pp->pub;
    uint64_t bytes = 0;
    int col = 0;
    for (int i = 0; i < p->nvars; i++) {
        ngs_raw_var *v = &pp->vars[i];
        if (p->is_complex && !(p->dialect == NGS_RAW_DIALECT_QSPICE && i == 0))
            v->storage = NGS_RAW_C128;
        else if (p->dialect == NGS_RAW_DIALECT_LTSPICE && !p->is_complex && !p->is_double && i > 0)
            v->storage = NGS_RAW_F32;
        else
            v->storage = NGS_RAW_F64;
        v->is_complex = v->storage == NGS_RAW_C128;
        v->column = col;
        v->byte_offset = (uint32_t)bytes;
        col += v->is_complex ? 2 : 1;
        bytes += v->storage == NGS_RAW_C128 ? 16 : v->storage == NGS_RAW_F32 ? 4 : 8;
    }
    if (bytes > UINT32_MAX)
        return fail_at(r, NGS_ERR_FORMAT, off, base, plotno, "rows too large");
    p->row_bytes = (uint32_t)bytes;
    p->row_doubles = col;
    return NGS_OK;
}

/* Is the text unit at p a blank (whitespace or NUL) between plots? */
static int blank_unit(const ngs_raw_reader *r, uint64_t p)
{
    unsigned char c = r->m[p];
    if (r->step == 2 && r->m[p + 1])
        return 0;
    return c == 0 || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* End of an ASCII data region: the start of the first line after p that is a "Key:"
 * line (the next plot's header), or the end of the file. */
static uint64_t ascii_region_end(ngs_raw_reader *r, uint64_t p)
{
    const unsigned char *m = r->m;
    uint64_t released = p;
    while (p < r->size) {
        if (p - released >= BLOCK_BYTES) {
            release(r, released, p);
            released = p;
        }
        if (isalpha(m[p]) && header_line_at(r, p))
            return p;
        const unsigned char *q = memchr(m + p, '\n', (size_t)(r->size - p));
        if (!q)
            return r->size;
        uint64_t nl = (uint64_t)(q - m);
        if (r->step == 2) {
            if ((nl - r->text_start) % 2 != 0 || nl + 1 >= r->size || m[nl + 1] != 0) {
                p = nl + 1;
                continue;
            }
            p = nl + 2;
        } else {
            p = nl + 1;
        }
    }
    return r->size;
}

/* Does a plot header ("Title:", or "Plotname:" where Title/Date are inherited) start at
 * byte p? */
static int plot_start_at(const ngs_raw_reader *r, uint64_t p)
{
    static const char *const keys[] = {"Title:", "Plotname:"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t n = strlen(keys[k]), i = 0;
        if (p + n * (uint64_t)r->step > r->size)
            continue;
        while (i < n && r->m[p + i * (uint64_t)r->step] == (unsigned char)keys[k][i] &&
               (r->step == 1 || r->m[p + i * 2 + 1] == 0))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

/* The first plot header that starts in [from, to), or to when none does. Both keys end
 * in "e:", which memmem finds fast; binary data rarely holds it. */
static uint64_t plot_start_in(ngs_raw_reader *r, uint64_t from, uint64_t to)
{
    static const unsigned char e8[] = {'e', ':'}, e16[] = {'e', 0, ':', 0};
    const unsigned char *pat = r->step == 2 ? e16 : e8;
    size_t plen = r->step == 2 ? sizeof e16 : sizeof e8;
    uint64_t step = (uint64_t)r->step, p = from, released = from;
    uint64_t lim = to + 7 * step + plen < r->size ? to + 7 * step + plen : r->size;
    while (p < to) {
        const unsigned char *q = memmem(r->m + p, (size_t)(lim - p), pat, plen);
        if (!q)
            break;
        uint64_t h = (uint64_t)(q - r->m);
        for (uint64_t back = 4; back <= 7; back += 3) /* "Titl", "Plotnam" before "e:" */
            if (h >= from + back * step && h - back * step < to &&
                plot_start_at(r, h - back * step))
                return h - back * step;
        p = h + 1;
        if (p - released >= BLOCK_BYTES) {
            release(r, released, p);
            released = p;
        }
    }
    release(r, released, p < to ? p : to);
    return to;
}

static plot_priv *new_plot(ngs_raw_reader *r)
{
    if (r->nplots == r->plots_cap) {
        size_t cap = r->plots_cap ? r->plots_cap * 2 : 8;
        plot_priv *p = realloc(r->plots, cap * sizeof *p);
        if (!p)
            return NULL;
        r->plots = p;
        r->plots_cap = cap;
    }
    plot_priv *pp = &r->plots[r->nplots];
    memset(pp, 0, sizeof *pp);
    return pp;
}

/* r->err without its "<path>: " (for messages kept beside others of the same file). */
static const char *err_without_path(const ngs_raw_reader *r)
{
    size_t n = strlen(r->path);
    return strncmp(r->err, r->path, n) == 0 && r->err[n] == ':' ? r->err + n + 2 : r->err;
}

static void free_plot(plot_priv *pp)
{
    free(pp->vars);
    free(pp->lines);
    free(pp->idx);
}

/* Parses the header of plot number r->nplots starting at start, and works out where
 * its data ends (*next). On success the plot is appended. */
static int parse_plot(ngs_raw_reader *r, uint64_t start, uint64_t *next)
{
    size_t plotno = r->nplots;
    plot_priv *pp = new_plot(r);
    if (!pp)
        return NGS_ERR_NOMEM;
    r->parsing = 1; /* until it is counted or freed (a jump out of guarded() skips both) */
    ngs_raw_plot *p = &pp->pub;
    const ngs_raw_plot *prev = plotno ? &r->plots[plotno - 1].pub : NULL;
    p->title = prev ? prev->title : "";
    p->date = prev ? prev->date : "";
    p->plotname = "";
    p->flags = "";
    p->command = "";
    p->data_error = "";
    p->dialect = prev ? prev->dialect : (r->step == 2 ? NGS_RAW_DIALECT_LTSPICE
                                                       : NGS_RAW_DIALECT_NGSPICE);

    uint64_t pos = start, lstart = start, base = start;
    int first = 1, complete, rc;
    int have_nvars = 0, have_points = 0, have_plotname = 0, in_vars = 0, have_command = 0;
    int vars_listed = 0, dialect_named = 0;
    uint64_t nvars_decl = 0;
    ngs_raw_encoding enc = NGS_RAW_NODATA;

    for (;;) {
        lstart = pos;
        rc = get_line(r, &pos, &complete, plotno, base);
        if (rc < 0)
            goto fail;
        if (rc == 0) {
            if (in_vars && p->nvars == 0 && have_points && p->npoints_declared == 0) {
                /* ngspice's header of an analysis that failed before its first point,
                 * at the end of the file: complete, without data. */
                *next = r->size;
                goto done_nodata;
            }
            rc = first ? PARSE_EOF_CLEAN : PARSE_EOF_IN_HEADER;
            goto fail;
        }
        char *s = r->line;
        if (is_blank_str(s)) {
            if (!complete) {
                rc = first ? PARSE_EOF_CLEAN : PARSE_EOF_IN_HEADER;
                goto fail;
            }
            continue;
        }
        if (first) {
            if (!ngs_raw_header_key_length(s)) {
                rc = PARSE_NOT_HEADER;
                goto fail;
            }
            first = 0;
            base = lstart;
            p->header_offset = lstart;
        }
        if (!complete) { /* the file ends inside this line */
            rc = PARSE_EOF_IN_HEADER;
            goto fail;
        }
        if (in_vars) {
            /* A variable line starts with a blank or a digit; anything else ends the list. */
            if ((s[0] == ' ' || s[0] == '\t' || isdigit((unsigned char)s[0])) &&
                (uint64_t)p->nvars < nvars_decl) {
                rc = parse_var(r, pp, s, lstart, base, plotno);
                if (rc < 0)
                    goto fail;
                continue;
            }
            in_vars = 0;
            if ((uint64_t)p->nvars < nvars_decl) {
                if (p->nvars == 0 && have_points && p->npoints_declared == 0 && ngs_raw_header_key_length(s) &&
                    !ieq(s, "Binary:") && !ieq(s, "Values:")) {
                    /* ngspice writes no variable list and no data for an analysis that
                     * produced no point: the next plot starts here. */
                    p->nvars = 0;
                    p->encoding = NGS_RAW_NODATA;
                    *next = lstart;
                    goto done_nodata;
                }
                rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                             "only %d of the %llu variables are listed", p->nvars,
                             (unsigned long long)nvars_decl);
                goto fail;
            }
        }
        size_t klen = ngs_raw_header_key_length(s);
        if (!klen) {
            if (s[0] == '.') { /* QSPICE ".param x=1", ".alias ..." */
                rc = push_line(r, pp, s, strlen(s), NULL);
                if (rc < 0)
                    goto fail;
                continue;
            }
            rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                         "expected a header line 'Key: value', found '%.40s'", s);
            goto fail;
        }
        char key[49];
        memcpy(key, s, klen);
        key[klen] = '\0';
        const char *value = s + klen + 1;
        if (*value == ' ')
            value++;

        if (ieq(key, "Binary") || ieq(key, "Values")) {
            if (!is_blank_str(value)) {
                rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                             "unexpected text after '%s:'", key);
                goto fail;
            }
            enc = ieq(key, "Binary") ? NGS_RAW_BINARY : NGS_RAW_ASCII;
            break;
        }
        if (ieq(key, "Variables")) {
            if (!have_nvars) {
                rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                             "'Variables:' comes before 'No. Variables:'");
                goto fail;
            }
            if (vars_listed) {
                rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                             "second 'Variables:' list");
                goto fail;
            }
            vars_listed = 1;
            in_vars = 1;
            if (!is_blank_str(value)) { /* first variable on the same line */
                rc = parse_var(r, pp, value, lstart, base, plotno);
                if (rc < 0)
                    goto fail;
            }
            continue;
        }
        if (ieq(key, "No. Variables")) {
            const char *rest;
            uint64_t v;
            if (parse_u64(value, &v, &rest) != 1 || !is_blank_str(rest)) {
                rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                             "'No. Variables' is not a number");
                goto fail;
            }
            if (v < 1 || v > MAX_VARS) {
                rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                             "'No. Variables' is %llu (1 to %d allowed)",
                             (unsigned long long)v, MAX_VARS);
                goto fail;
            }
            nvars_decl = v;
            have_nvars = 1;
        } else if (ieq(key, "No. Points")) {
            const char *rest;
            uint64_t v;
            int k = parse_u64(value, &v, &rest);
            if (k < 0) {
                rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                             "'No. Points' is not a number");
                goto fail;
            }
            p->npoints_declared = v;
            have_points = 1;
            size_t vlen = strlen(value);
            p->style = k == 1 && vlen && value[vlen - 1] != ' ' && value[vlen - 1] != '\t'
                           ? NGS_RAW_STYLE_WRITE
                           : NGS_RAW_STYLE_BATCH;
            if (!is_blank_str(rest)) {
                /* ngspice keeps 8 characters for the count and overwrites them at the
                 * end: a count of 9 or 10 digits eats the newline and the start of
                 * "Variables:". Accept what that leaves. */
                size_t n = strlen(rest);
                static const char tail[] = "Variables:";
                if (n >= 5 && n <= sizeof tail - 1 &&
                    memcmp(rest, tail + sizeof tail - 1 - n, n) == 0 && have_nvars &&
                    !vars_listed) {
                    vars_listed = 1;
                    in_vars = 1;
                } else {
                    rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                                 "'No. Points' is not a number");
                    goto fail;
                }
            }
        } else if (ieq(key, "Title")) {
            if (!(p->title = arena_dup(r, value, strlen(value)))) {
                rc = NGS_ERR_NOMEM;
                goto fail;
            }
        } else if (ieq(key, "Date")) {
            if (!(p->date = arena_dup(r, value, strlen(value)))) {
                rc = NGS_ERR_NOMEM;
                goto fail;
            }
        } else if (ieq(key, "Plotname")) {
            if (have_plotname) {
                rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                             "second 'Plotname:' before the data of the first");
                goto fail;
            }
            have_plotname = 1;
            if (!(p->plotname = arena_dup(r, value, strlen(value)))) {
                rc = NGS_ERR_NOMEM;
                goto fail;
            }
        } else if (ieq(key, "Flags")) {
            if (!(p->flags = arena_dup(r, value, strlen(value)))) {
                rc = NGS_ERR_NOMEM;
                goto fail;
            }
            p->is_complex = has_flag(value, "complex");
            p->is_double = has_flag(value, "double");
            p->fastaccess = has_flag(value, "fastaccess");
            p->stepped = has_flag(value, "stepped");
        } else if (ieq(key, "Command")) {
            if (!have_command) {
                have_command = 1;
                if (!(p->command = arena_dup(r, value, strlen(value)))) {
                    rc = NGS_ERR_NOMEM;
                    goto fail;
                }
            }
            if (contains_ci(value, "ltspice") || contains_ci(value, "linear technology"))
                p->dialect = NGS_RAW_DIALECT_LTSPICE, dialect_named = 1;
            else if (contains_ci(value, "qspice"))
                p->dialect = NGS_RAW_DIALECT_QSPICE, dialect_named = 1;
            else if (contains_ci(value, "xyce"))
                p->dialect = NGS_RAW_DIALECT_XYCE, dialect_named = 1;
            else if (contains_ci(value, "ngspice") && !dialect_named)
                p->dialect = NGS_RAW_DIALECT_NGSPICE;
        }
        rc = push_line(r, pp, key, klen, value);
        if (rc < 0)
            goto fail;
    }

    /* At the data marker. */
    uint64_t data = pos;
    if (!have_plotname) {
        rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno, "no 'Plotname:' line");
        goto fail;
    }
    if (!have_nvars) {
        rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno, "no 'No. Variables:' line");
        goto fail;
    }
    if (!have_points) {
        rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno, "no 'No. Points:' line");
        goto fail;
    }
    if ((uint64_t)p->nvars != nvars_decl) {
        rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno,
                     "%d variables listed, 'No. Variables' says %llu", p->nvars,
                     (unsigned long long)nvars_decl);
        goto fail;
    }
    if (!p->flags[0])
        p->flags = "real";
    p->encoding = enc;
    p->data_offset = data;
    rc = layout(r, pp, lstart, base, plotno);
    if (rc < 0)
        goto fail;

    uint64_t avail = r->size - data, decl = p->npoints_declared, rb = p->row_bytes;
    if (enc == NGS_RAW_BINARY) {
        if (r->text_limit > data)
            r->text_limit = data;
        int overflow = decl && decl > UINT64_MAX / rb;
        if (p->fastaccess) {
            /* Stored vector after vector: only a complete file is usable. */
            if (!overflow && decl * rb <= avail) {
                p->npoints = decl;
                p->data_bytes = decl * rb;
                *next = data + p->data_bytes;
            } else {
                p->npoints = 0;
                p->truncated = 1;
                *next = r->size;
            }
        } else {
            /* The data end after the declared points, or at the end of the file when the
             * count is 0 (still being written) or larger than what is there. A wrong count
             * must not turn the next plot's header into points: unless the declared points
             * end where a header starts or at the end of the file, they are searched for
             * one; even then the last bytes are (a count a little too large lands at the
             * start of the next header's "Plotname:" line). */
            int fits = decl && !overflow && decl * rb <= avail;
            uint64_t end = fits ? data + decl * rb : r->size, from = data;
            if (fits && (end == r->size || plot_start_at(r, end)))
                from = end - data > HEADER_LOOKBACK ? end - HEADER_LOOKBACK : data;
            uint64_t hdr = plot_start_in(r, from, end);
            if (hdr < end && from > data)
                hdr = plot_start_in(r, data, hdr);
            if (hdr < end) { /* fewer points than declared, or 0 not in the last plot */
                p->npoints = (hdr - data) / rb;
                p->truncated = decl != 0 || (hdr - data) % rb != 0;
                p->data_bytes = p->npoints * rb;
                *next = hdr;
            } else if (decl == 0) {
                if (avail == 0 || header_line_at(r, data)) {
                    *next = data; /* really no point */
                } else {
                    p->in_progress = 1;
                    p->npoints = avail / rb;
                    p->truncated = avail % rb != 0;
                    p->data_bytes = p->npoints * rb;
                    *next = r->size;
                }
            } else if (fits) {
                p->npoints = decl;
                p->data_bytes = decl * rb;
                *next = end;
            } else {
                p->npoints = avail / rb;
                p->truncated = 1;
                p->data_bytes = p->npoints * rb;
                *next = r->size;
            }
        }
    } else {
        /* ASCII: points are counted on first access; the region ends at the next header. */
        pp->data_end = ascii_region_end(r, data);
        p->npoints = 0;
        *next = pp->data_end;
    }
    r->nplots++;
    r->parsing = 0;
    return NGS_OK;

done_nodata:
    if (!have_plotname) {
        rc = fail_at(r, NGS_ERR_FORMAT, lstart, base, plotno, "no 'Plotname:' line");
        goto fail;
    }
    p->nvars = 0;
    p->encoding = NGS_RAW_NODATA;
    p->data_offset = *next;
    p->vars = pp->vars;
    r->nplots++;
    r->parsing = 0;
    return NGS_OK;

fail:
    free_plot(pp);
    r->parsing = 0;
    return rc;
}

/* ---- open / close --------------------------------------------------------------------- */

/* The first plot header after p that starts a line, or the end of the file. */
static uint64_t next_plot_after(ngs_raw_reader *r, uint64_t p)
{
    uint64_t step = (uint64_t)r->step;
    for (uint64_t from = p + step; from < r->size;) {
        uint64_t h = plot_start_in(r, from, r->size);
        if (h >= r->size || (r->m[h - step] == '\n' && (step == 1 || r->m[h - 1] == 0)))
            return h;
        from = h + step;
    }
    return r->size;
}

static int scan(ngs_raw_reader *r, void *unused)
{
    (void)unused;
    const unsigned char *m = r->m;
    r->step = 1;
    r->text_start = 0;
    if (r->size >= 2 && m[0] == 0xFF && m[1] == 0xFE) {
        r->step = 2;
        r->text_start = 2;
    } else if (r->size >= 4 && m[0] >= 0x20 && m[0] < 0x7F && m[1] == 0 && m[3] == 0) {
        r->step = 2;
    }
    r->info.utf16 = r->step == 2;
    r->text_limit = r->size;
    uint64_t pos = r->text_start;
    for (;;) {
        uint64_t next = 0;
        while (pos + (uint64_t)r->step <= r->size && blank_unit(r, pos))
            pos += (uint64_t)r->step;
        if (pos + (uint64_t)r->step > r->size)
            break;
        int rc = header_line_at(r, pos) ? parse_plot(r, pos, &next) : PARSE_NOT_HEADER;
        if (rc == NGS_OK) {
            if (next <= pos) /* cannot happen: a header has at least one line */
                return fail_plain(r, NGS_ERR_FORMAT, "internal error: no progress at %llu",
                                  (unsigned long long)pos);
            pos = next;
            continue;
        }
        if (rc == PARSE_EOF_CLEAN)
            break;
        if (rc == NGS_ERR_FORMAT) {
            /* A header that cannot be read: where its data end is unknown, so the scan
             * goes on at the next plot header after the failing line (not only at a line
             * start: after binary data it starts anywhere). Refusing the file lost every
             * good plot around it. */
            uint64_t from = r->fail_off > pos && r->fail_off < r->size ? r->fail_off : pos;
            if (!r->info.bad_headers++) {
                snprintf(r->bad_err, sizeof r->bad_err, "%.*s", (int)sizeof r->bad_err - 1,
                         err_without_path(r));
                r->info.bad_offset = pos;
                r->info.bad_plotno = r->nplots + 1;
            }
            uint64_t hdr = plot_start_in(r, from + (uint64_t)r->step, r->size);
            r->info.bad_bytes += hdr - pos;
            pos = hdr;
            continue;
        }
        if (rc == PARSE_EOF_IN_HEADER) {
            if (r->nplots == 0 && r->info.bad_headers)
                break; /* refused below with the bad header's message */
            if (r->nplots == 0)
                return fail_at(r, NGS_ERR_FORMAT, r->size, 0, 0,
                               "the file ends inside the first header (no 'Binary:' or "
                               "'Values:' line)");
            r->info.header_truncated = 1;
            break;
        }
        if (rc == PARSE_NOT_HEADER) {
            if (r->nplots == 0 && !r->info.bad_headers)
                return fail_at(r, NGS_ERR_FORMAT, pos, 0, 0,
                               "not a RAW file (expected a header line such as 'Title:')");
            /* Bytes that are no plot (a note, a log line) between two plots: the plots
             * after them are still read, the bytes counted as skipped. */
            uint64_t hdr = next_plot_after(r, pos);
            if (hdr < r->size) {
                rc = parse_plot(r, hdr, &next);
                if (rc == NGS_ERR_NOMEM)
                    return rc;
                if (rc == NGS_OK) {
                    note_skipped(r, pos, hdr - pos);
                    pos = next;
                    continue;
                }
            }
            note_skipped(r, pos, r->size - pos);
            break;
        }
        return rc;
    }
    if (r->nplots == 0 && r->info.bad_headers) { /* nothing readable: why the first failed */
        snprintf(r->err, sizeof r->err, "%s: %s", r->path, r->bad_err);
        return NGS_ERR_FORMAT;
    }
    if (r->nplots == 0)
        return fail_at(r, NGS_ERR_FORMAT, 0, 0, 0, "no plot in the file");
    r->info.nplots = r->nplots;
    return NGS_OK;
}

static int reader_new(ngs_raw_reader **out, const char *name)
{
    ngs_raw_reader *r = calloc(1, sizeof *r);
    if (!r)
        return NGS_ERR_NOMEM;
    r->path = strdup(name ? name : "raw");
    r->cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    long pg = sysconf(_SC_PAGESIZE);
    r->page = pg > 0 ? (size_t)pg : 4096;
    if (!r->path || r->cloc == (locale_t)0) {
        if (r->cloc != (locale_t)0)
            freelocale(r->cloc);
        free(r->path);
        free(r);
        return NGS_ERR_NOMEM;
    }
    r->info.path = r->path;
    r->info.bad_error = r->bad_err;
    r->fd = -1;
    *out = r;
    return NGS_OK;
}

static void copy_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

void ngs_raw_close(ngs_raw_reader *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nplots + (size_t)r->parsing; i++)
        free_plot(&r->plots[i]);
    free(r->plots);
    if (r->mapped && r->size)
        munmap((void *)r->m, (size_t)r->size);
    if (r->fd >= 0)
        close(r->fd);
    while (r->arena) {
        arena_block *b = r->arena;
        r->arena = b->next;
        free(b);
    }
    free(r->line);
    if (r->cloc != (locale_t)0)
        freelocale(r->cloc);
    free(r->path);
    free(r);
}

static int finish_open(ngs_raw_reader **out, ngs_raw_reader *r, char *err, size_t errlen)
{
    int rc = guarded(r, scan, NULL);
    if (rc != NGS_OK) {
        copy_err(err, errlen, r->err);
        ngs_raw_close(r);
        return rc;
    }
    r->err[0] = '\0';
    *out = r;
    return NGS_OK;
}

int ngs_raw_open(ngs_raw_reader **out, const char *path, char *err, size_t errlen)
{
    if (!out || !path) {
        copy_err(err, errlen, "ngs_raw_open: NULL argument");
        return NGS_ERR_ARG;
    }
    *out = NULL;
    ngs_raw_reader *r;
    if (reader_new(&r, path) != NGS_OK) {
        copy_err(err, errlen, "out of memory");
        return NGS_ERR_NOMEM;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_plain(r, NGS_ERR_IO, "cannot open: %s", strerror(errno));
        copy_err(err, errlen, r->err);
        ngs_raw_close(r);
        return NGS_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fail_plain(r, NGS_ERR_IO, "not a regular file");
        close(fd);
        copy_err(err, errlen, r->err);
        ngs_raw_close(r);
        return NGS_ERR_IO;
    }
    if (st.st_size == 0) {
        close(fd);
        fail_plain(r, NGS_ERR_FORMAT, "empty file");
        copy_err(err, errlen, r->err);
        ngs_raw_close(r);
        return NGS_ERR_FORMAT;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        fail_plain(r, NGS_ERR_IO, "file too large to map");
        copy_err(err, errlen, r->err);
        ngs_raw_close(r);
        return NGS_ERR_IO;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    r->fd = fd; /* closed with r: guarded() checks the size through it */
    if (m == MAP_FAILED) {
        fail_plain(r, NGS_ERR_IO, "cannot map: %s", strerror(saved));
        copy_err(err, errlen, r->err);
        ngs_raw_close(r);
        return NGS_ERR_IO;
    }
    madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
    r->m = m;
    r->size = (uint64_t)st.st_size;
    r->mapped = 1;
    r->info.size = r->size;
    return finish_open(out, r, err, errlen);
}

int ngs_raw_open_memory(ngs_raw_reader **out, const void *data, size_t size,
                        const char *name, char *err, size_t errlen)
{
    if (!out || (!data && size)) {
        copy_err(err, errlen, "ngs_raw_open_memory: NULL argument");
        return NGS_ERR_ARG;
    }
    *out = NULL;
    ngs_raw_reader *r;
    if (reader_new(&r, name ? name : "memory") != NGS_OK) {
        copy_err(err, errlen, "out of memory");
        return NGS_ERR_NOMEM;
    }
    if (size == 0) {
        fail_plain(r, NGS_ERR_FORMAT, "empty file");
        copy_err(err, errlen, r->err);
        ngs_raw_close(r);
        return NGS_ERR_FORMAT;
    }
    r->m = data;
    r->size = size;
    r->info.size = size;
    return finish_open(out, r, err, errlen);
}

const ngs_raw_file_info *ngs_raw_info(const ngs_raw_reader *r)
{
    return r ? &r->info : NULL;
}

size_t ngs_raw_nplots(const ngs_raw_reader *r)
{
    return r ? r->nplots : 0;
}

const char *ngs_raw_last_error(const ngs_raw_reader *r)
{
    return r ? r->err : "";
}

int ngs_raw_find_var(const ngs_raw_plot *plot, const char *name)
{
    if (!plot || !name)
        return -1;
    for (int i = 0; i < plot->nvars; i++)
        if (strcasecmp(plot->vars[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- ASCII data ----------------------------------------------------------------------- */

/* Character at p in the file's encoding: -1 past the end, 0x100 for a non-ASCII unit. */
static inline int ach(const ngs_raw_reader *r, uint64_t p)
{
    if (r->step == 1)
        return p < r->size ? r->m[p] : -1;
    if (p + 1 >= r->size)
        return -1;
    return r->m[p + 1] ? 0x100 : r->m[p];
}

static inline int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The token at p (after blanks) inside [p, end): its bytes go to buf (ASCII, NUL-ended,
 * at most 63 characters; longer tokens are flagged with len = 64). Returns 0 when no
 * token is left, 1 for a complete token, 2 for a token cut by the end of the file. */
static int next_token(const ngs_raw_reader *r, uint64_t *pos, uint64_t end, char buf[65],
                      size_t *len, uint64_t *tok_off)
{
    uint64_t p = *pos;
    int c;
    while (p < end && is_ws(c = ach(r, p)))
        p += (uint64_t)r->step;
    if (p >= end) {
        *pos = p;
        return 0;
    }
    *tok_off = p;
    size_t n = 0;
    while (p < end && (c = ach(r, p)) >= 0 && !is_ws(c)) {
        if (n < 64)
            buf[n++] = c > 0x7F ? '?' : (char)c;
        p += (uint64_t)r->step;
    }
    buf[n < 64 ? n : 64] = '\0';
    *len = n;
    *pos = p;
    /* A token that runs into the end of the file may be cut short. */
    return p + (uint64_t)r->step > r->size || ach(r, p) < 0 ? 2 : 1;
}

static int ascii_fail(ngs_raw_reader *r, size_t plotno, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(r, NGS_ERR_FORMAT, off, r->plots[plotno].pub.header_offset, plotno, fmt, ap);
    va_end(ap);
    return NGS_ERR_FORMAT;
}

/* Is s[0..n) a whole decimal number, "inf", "infinity" or "nan" (either case, signed)?
 * Exactly the tokens strtod takes whole in the C locale, less its hex and "nan(...)"
 * forms, which no RAW writer uses. */
static int is_number(const char *s, size_t n)
{
    size_t i = s[0] == '+' || s[0] == '-', digits = 0;
    if ((n - i == 3 && (strncasecmp(s + i, "inf", 3) == 0 || strncasecmp(s + i, "nan", 3) == 0)) ||
        (n - i == 8 && strncasecmp(s + i, "infinity", 8) == 0))
        return 1;
    for (; i < n && isdigit((unsigned char)s[i]); i++)
        digits++;
    if (i < n && s[i] == '.')
        for (i++; i < n && isdigit((unsigned char)s[i]); i++)
            digits++;
    if (!digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i += i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-') ? 2 : 1;
        if (i >= n || !isdigit((unsigned char)s[i]))
            return 0;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    return i == n;
}

/* Converts a token to a double; quick = 1 only checks that it is one (index pass: every
 * value is checked before a caller writes anything, so reads do not fail later). */
static int to_double(ngs_raw_reader *r, const char *s, size_t n, double *v, int quick)
{
    if (n == 0 || n >= 64)
        return -1;
    if (quick)
        return is_number(s, n) ? 0 : -1;
    char *end;
    *v = strtod_l(s, &end, r->cloc);
    return end == s + n ? 0 : -1;
}

/* Parses the point at *pos of an ASCII plot: "index value value ...". Stores what is
 * wanted (all values into row, or only variable var into vout). */
static int ascii_point(ngs_raw_reader *r, size_t plotno, uint64_t *pos, uint64_t point,
                       double *row, int var, double *vout, int quick)
{
    plot_priv *pp = &r->plots[plotno];
    const ngs_raw_plot *p = &pp->pub;
    uint64_t end = pp->data_end, off = 0;
    char tok[65];
    size_t n;
    int k = next_token(r, pos, end, tok, &n, &off);
    if (k == 0)
        return PT_END;
    if (k == 2)
        return PT_PARTIAL;
    uint64_t idx;
    const char *rest;
    if (parse_u64(tok, &idx, &rest) != 1 || *rest)
        return ascii_fail(r, plotno, off, "expected the index of point %llu, found '%s'",
                          (unsigned long long)point, tok);
    if (idx != point)
        return ascii_fail(r, plotno, off, "point index %llu out of sequence (expected %llu)",
                          (unsigned long long)idx, (unsigned long long)point);
    /* The last value of the last declared point may end the file without a newline:
     * the count says nothing is missing. Elsewhere a token at the end may be cut. */
    int last_point = p->npoints_declared && point + 1 == p->npoints_declared;
    for (int j = 0; j < p->nvars; j++) {
        const ngs_raw_var *v = &p->vars[j];
        int cut_ok = last_point && j == p->nvars - 1;
        k = next_token(r, pos, end, tok, &n, &off);
        if (k == 0) {
            if (end >= r->size)
                return PT_PARTIAL;
            return ascii_fail(r, plotno, *pos, "point %llu stops after %d of %d values",
                              (unsigned long long)point, j, p->nvars);
        }
        if (k == 2 && !cut_ok)
            return PT_PARTIAL;
        int want = !quick && (var < 0 || var == j);
        double re = 0, im = 0;
        if (v->is_complex) {
            char *comma = memchr(tok, ',', n);
            if (!comma)
                return ascii_fail(r, plotno, off, "'%s' is not a complex value 're,im'", tok);
            size_t nre = (size_t)(comma - tok), nim = n - nre - 1;
            char imbuf[65];
            const char *ims = comma + 1;
            if (nim == 0) { /* "re, im" */
                uint64_t off2;
                k = next_token(r, pos, end, imbuf, &nim, &off2);
                if (k == 0 && end >= r->size)
                    return PT_PARTIAL;
                if (k == 2 && !cut_ok)
                    return PT_PARTIAL;
                ims = imbuf;
            }
            if (to_double(r, tok, nre, &re, !want) < 0 ||
                to_double(r, ims, nim, &im, !want) < 0)
                return ascii_fail(r, plotno, off,
                                  "'%s' is not a complex value 're,im' (point %llu, %s)", tok,
                                  (unsigned long long)point, v->name);
        } else {
            if (to_double(r, tok, n, &re, !want) < 0)
                return ascii_fail(r, plotno, off, "'%s' is not a number (point %llu, %s)", tok,
                                  (unsigned long long)point, v->name);
        }
        if (want) {
            if (j == 0 && p->dialect == NGS_RAW_DIALECT_LTSPICE && !v->is_complex &&
                strcasecmp(v->type, "time") == 0)
                re = fabs(re);
            double *dst = row ? row + v->column : vout;
            dst[0] = re;
            if (v->is_complex)
                dst[1] = im;
        }
    }
    return PT_OK;
}

/* The first-access pass over an ASCII plot: counts complete points, checks their
 * syntax and records the offset of every Kth point. */
static int ascii_index(ngs_raw_reader *r, size_t plotno)
{
    plot_priv *pp = &r->plots[plotno];
    ngs_raw_plot *p = &pp->pub;
    if (pp->indexed)
        return pp->index_status;
    pp->indexed = 1;
    pp->kshift = 0;
    size_t cap = 64;
    pp->idx = malloc(cap * sizeof *pp->idx);
    if (!pp->idx)
        return pp->index_status = NGS_ERR_NOMEM;
    pp->idx_n = 0;
    uint64_t pos = p->data_offset, n = 0, last_good = pos, released = pos;
    uint64_t decl = p->npoints_declared;
    int rc = PT_OK;
    for (;;) {
        if ((n & ((1ull << pp->kshift) - 1)) == 0) {
            if (pp->idx_n == IDX_CAP) { /* keep every other entry, double K */
                for (size_t i = 0; i < IDX_CAP / 2; i++)
                    pp->idx[i] = pp->idx[2 * i];
                pp->idx_n = IDX_CAP / 2;
                pp->kshift++;
            }
            if ((n & ((1ull << pp->kshift) - 1)) == 0) {
                if (pp->idx_n == cap) { /* grows up to IDX_CAP, then K doubles instead */
                    uint64_t *g = realloc(pp->idx, 2 * cap * sizeof *g);
                    if (!g)
                        return pp->index_status = NGS_ERR_NOMEM;
                    pp->idx = g;
                    cap *= 2;
                }
                pp->idx[pp->idx_n++] = pos;
            }
        }
        if (decl && n == decl)
            break;
        rc = ascii_point(r, plotno, &pos, n, NULL, -1, NULL, 1);
        if (rc == NGS_ERR_FORMAT) {
            /* A value that is no number (a damaged byte, an edit): the plot ends before
             * its point, as a cut file does; refusing it lost every good point and plot. */
            const char *why = err_without_path(r);
            if (!(p->data_error = arena_dup(r, why, strlen(why))))
                return pp->index_status = NGS_ERR_NOMEM;
            break;
        }
        if (rc < 0)
            return pp->index_status = rc;
        if (rc != PT_OK)
            break;
        n++;
        last_good = pos;
        if (pos - released >= BLOCK_BYTES) {
            release(r, released, pos);
            released = pos;
        }
    }
    release(r, released, pos);
    if (decl && n == decl) {
        /* Text after the declared points, up to the next header (a note, a log line,
         * points past the count): the plot is whole, and refusing the file for it lost
         * every plot; it is skipped and counted, as bytes between plots are. */
        char tok[65];
        size_t tn;
        uint64_t off, q = pos;
        if (next_token(r, &q, pp->data_end, tok, &tn, &off) != 0)
            note_skipped(r, off, pp->data_end - off);
    }
    p->npoints = n;
    p->data_bytes = last_good - p->data_offset;
    p->in_progress = decl == 0 && n > 0 && !p->data_error[0];
    p->truncated = rc == PT_PARTIAL || (decl && n < decl) || p->data_error[0];
    while (pp->idx_n > 1 && ((uint64_t)(pp->idx_n - 1) << pp->kshift) >= n)
        pp->idx_n--;
    return pp->index_status = NGS_OK;
}

/* Byte offset of point q of an indexed ASCII plot. */
static int ascii_seek(ngs_raw_reader *r, size_t plotno, uint64_t q, uint64_t *pos)
{
    plot_priv *pp = &r->plots[plotno];
    uint64_t e = q >> pp->kshift;
    if (e >= pp->idx_n)
        e = pp->idx_n - 1;
    uint64_t at = e << pp->kshift, p = pp->idx[e];
    if (pp->cur_valid && pp->cur_point <= q && pp->cur_point >= at) {
        at = pp->cur_point;
        p = pp->cur_off;
    }
    while (at < q) {
        int rc = ascii_point(r, plotno, &p, at, NULL, -1, NULL, 1);
        if (rc < 0)
            return rc;
        if (rc != PT_OK)
            return ascii_fail(r, plotno, p, "point %llu vanished", (unsigned long long)at);
        at++;
    }
    *pos = p;
    return NGS_OK;
}

static int ascii_read(ngs_raw_reader *r, size_t plotno, int var, uint64_t first,
                      size_t count, double *out)
{
    plot_priv *pp = &r->plots[plotno];
    const ngs_raw_plot *p = &pp->pub;
    uint64_t pos = 0;
    int rc = ascii_seek(r, plotno, first, &pos);
    if (rc < 0)
        return rc;
    uint64_t released = pos;
    size_t width = var < 0 ? (size_t)p->row_doubles : (p->vars[var].is_complex ? 2u : 1u);
    for (size_t i = 0; i < count; i++) {
        double *dst = out + i * width;
        rc = ascii_point(r, plotno, &pos, first + i, var < 0 ? dst : NULL, var, dst, 0);
        if (rc < 0) {
            pp->cur_valid = 0;
            return rc;
        }
        if (rc != PT_OK) {
            pp->cur_valid = 0;
            return ascii_fail(r, plotno, pos, "point %llu vanished",
                              (unsigned long long)(first + i));
        }
        if (pos - released >= BLOCK_BYTES) {
            release(r, released, pos);
            released = pos;
        }
    }
    release(r, released, pos);
    pp->cur_valid = 1;
    pp->cur_point = first + count;
    pp->cur_off = pos;
    return NGS_OK;
}

/* ---- binary data ---------------------------------------------------------------------- */

static inline double ld_f32(const unsigned char *s)
{
    float f;
    memcpy(&f, s, 4);
    return (double)f;
}

/* Stores variable v of the stored point at s into dst (1 or 2 doubles). */
static inline void load_var(const ngs_raw_var *v, const unsigned char *s, double *dst,
                            int fix_time)
{
    switch (v->storage) {
    case NGS_RAW_F32:
        dst[0] = ld_f32(s);
        break;
    case NGS_RAW_C128:
        memcpy(dst, s, 16);
        break;
    default:
        memcpy(dst, s, 8);
        if (fix_time)
            dst[0] = fabs(dst[0]);
        break;
    }
}

static int time_fix(const ngs_raw_plot *p, int var)
{
    return var == 0 && p->dialect == NGS_RAW_DIALECT_LTSPICE &&
           p->vars[0].storage == NGS_RAW_F64 && strcasecmp(p->vars[0].type, "time") == 0;
}

static size_t var_bytes(const ngs_raw_var *v)
{
    return v->storage == NGS_RAW_C128 ? 16 : v->storage == NGS_RAW_F32 ? 4 : 8;
}

/* Start of variable var's column in a fastaccess plot. */
static uint64_t column_start(const ngs_raw_plot *p, int var)
{
    uint64_t off = p->data_offset;
    for (int j = 0; j < var; j++)
        off += p->npoints_declared * var_bytes(&p->vars[j]);
    return off;
}

static int binary_vector(ngs_raw_reader *r, const ngs_raw_plot *p, int var, uint64_t first,
                         size_t count, double *out)
{
    const ngs_raw_var *v = &p->vars[var];
    int fix = time_fix(p, var);
    size_t w = v->is_complex ? 2 : 1;
    if (p->fastaccess) {
        size_t vb = var_bytes(v);
        uint64_t base = column_start(p, var) + first * vb;
        const unsigned char *s = r->m + base;
        for (size_t i = 0; i < count; i++)
            load_var(v, s + i * vb, out + i * w, fix);
        release(r, base, base + count * vb);
        return NGS_OK;
    }
    size_t rb = p->row_bytes;
    size_t block = BLOCK_BYTES / rb + 1;
    uint64_t off = p->data_offset + first * rb;
    for (size_t i = 0; i < count;) {
        size_t nrow = count - i < block ? count - i : block;
        const unsigned char *s = r->m + off + v->byte_offset;
        for (size_t k = 0; k < nrow; k++)
            load_var(v, s + k * rb, out + (i + k) * w, fix);
        release(r, off, off + nrow * rb);
        off += nrow * rb;
        i += nrow;
    }
    return NGS_OK;
}

static int binary_rows(ngs_raw_reader *r, const ngs_raw_plot *p, uint64_t first,
                       size_t count, double *out)
{
    size_t rd = (size_t)p->row_doubles, rb = p->row_bytes;
    if (p->fastaccess) {
        for (int j = 0; j < p->nvars; j++) {
            const ngs_raw_var *v = &p->vars[j];
            size_t vb = var_bytes(v);
            int fix = time_fix(p, j);
            uint64_t base = column_start(p, j) + first * vb;
            const unsigned char *s = r->m + base;
            for (size_t i = 0; i < count; i++)
                load_var(v, s + i * vb, out + i * rd + v->column, fix);
            release(r, base, base + count * vb);
        }
        return NGS_OK;
    }
    int all64 = rd * 8 == rb;
    int fix = time_fix(p, 0);
    size_t block = BLOCK_BYTES / rb + 1;
    uint64_t off = p->data_offset + first * rb;
    for (size_t i = 0; i < count;) {
        size_t nrow = count - i < block ? count - i : block;
        const unsigned char *s = r->m + off;
        double *o = out + i * rd;
        if (all64) {
            memcpy(o, s, nrow * rb);
            if (fix)
                for (size_t k = 0; k < nrow; k++)
                    o[k * rd] = fabs(o[k * rd]);
        } else {
            for (size_t k = 0; k < nrow; k++)
                for (int j = 0; j < p->nvars; j++) {
                    const ngs_raw_var *v = &p->vars[j];
                    load_var(v, s + k * rb + v->byte_offset, o + k * rd + v->column,
                             j == 0 && fix);
                }
        }
        release(r, off, off + nrow * rb);
        off += nrow * rb;
        i += nrow;
    }
    return NGS_OK;
}

/* ---- public data access ------------------------------------------------------------- */

static int plot_info(ngs_raw_reader *r, size_t plot, const ngs_raw_plot **out)
{
    if (plot >= r->nplots) {
        fail_plain(r, NGS_ERR_ARG, "plot %zu does not exist (%zu plots)", plot, r->nplots);
        return NGS_ERR_ARG;
    }
    plot_priv *pp = &r->plots[plot];
    if (pp->pub.encoding == NGS_RAW_ASCII) {
        int rc = ascii_index(r, plot);
        if (rc < 0)
            return rc;
    }
    *out = &pp->pub;
    return NGS_OK;
}

static int check_range(ngs_raw_reader *r, size_t plot, const ngs_raw_plot **p,
                       uint64_t first, size_t count, const void *out)
{
    int rc = plot_info(r, plot, p);
    if (rc < 0)
        return rc;
    if (!out && count)
        return fail_plain(r, NGS_ERR_ARG, "NULL output buffer");
    if (first > (*p)->npoints || count > (*p)->npoints - first)
        return fail_plain(r, NGS_ERR_ARG,
                          "points %llu..%llu requested, plot %zu has %llu",
                          (unsigned long long)first, (unsigned long long)(first + count),
                          plot + 1, (unsigned long long)(*p)->npoints);
    return NGS_OK;
}

/* One public call, for guarded(). */
typedef struct {
    size_t plot;
    int rows;                   /* ngs_raw_read_rows, else ngs_raw_read_vector of var */
    int var;
    uint64_t first;
    size_t count;
    double *out;
    const ngs_raw_plot **info;  /* ngs_raw_plot_info */
} data_call;

static int plot_info_call(ngs_raw_reader *r, void *arg)
{
    const data_call *q = arg;
    return plot_info(r, q->plot, q->info);
}

static int read_call(ngs_raw_reader *r, void *arg)
{
    const data_call *q = arg;
    const ngs_raw_plot *p;
    int rc = check_range(r, q->plot, &p, q->first, q->count, q->out);
    if (rc < 0)
        return rc;
    if (!q->rows && (q->var < 0 || q->var >= p->nvars))
        return fail_plain(r, NGS_ERR_ARG, "variable %d does not exist (%d variables)", q->var,
                          p->nvars);
    if (q->count == 0)
        return NGS_OK;
    if (p->encoding == NGS_RAW_ASCII)
        return ascii_read(r, q->plot, q->rows ? -1 : q->var, q->first, q->count, q->out);
    return q->rows ? binary_rows(r, p, q->first, q->count, q->out)
                   : binary_vector(r, p, q->var, q->first, q->count, q->out);
}

int ngs_raw_plot_info(ngs_raw_reader *r, size_t plot, const ngs_raw_plot **out)
{
    data_call q = {.plot = plot, .info = out};
    return r && out ? guarded(r, plot_info_call, &q) : NGS_ERR_ARG;
}

int ngs_raw_read_vector(ngs_raw_reader *r, size_t plot, int var, uint64_t first,
                        size_t count, double *out)
{
    data_call q = {.plot = plot, .var = var, .first = first, .count = count, .out = out};
    return r ? guarded(r, read_call, &q) : NGS_ERR_ARG;
}

int ngs_raw_read_rows(ngs_raw_reader *r, size_t plot, uint64_t first, size_t count,
                      double *out)
{
    data_call q = {.plot = plot, .rows = 1, .first = first, .count = count, .out = out};
    return r ? guarded(r, read_call, &q) : NGS_ERR_ARG;
}
