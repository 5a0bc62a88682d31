/*
 * cache_key.c - SHA-256 key of a run, and the checks that make a run uncacheable.
 *
 * We read the netlist roughly the way ngspice's front end (inpcom.c) does: the first
 * line of a netlist is its title, '*' starts a comment line, '+' continues the
 * previous card, ';' and a free-standing '$' start inline comments, dot cards are
 * case-insensitive, `.lib file section` pulls in one `.lib section` ... `.endl`
 * block, and relative names resolve against the including file's directory, then
 * the current directory, then `sourcepath` (search_dirs). Lines of .control blocks
 * (and "*#" lines, which ngspice runs as commands) are scanned as commands.
 *
 * The hash is over normalized text (trailing blanks and CR stripped, trailing empty
 * lines dropped, case kept) framed as tagged, length-prefixed records, so that no
 * two different inputs can produce the same byte stream.
 *
 * When unsure we err on the side of "uncacheable" (a needless miss) rather than
 * "cacheable" (a possibly stale hit): e.g. in .control lines ';' is treated as a
 * command separator, never as the start of a comment.
 */
#include "cache/cache_key.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#define KEY_VERSION "ngscale-cache-key 1"
#define MAX_DEPTH 32                          /* nested include/lib/source levels */
#define MAX_INCLUSIONS 4096                   /* files pulled in, in all (include loops fan out) */
#define MAX_TEXT_BYTES ((size_t)1 << 30)      /* a netlist or model file larger than this is refused */
#define TOKEN_MAX 4096

typedef struct {
    char *s;  /* NUL-terminated (trailing blanks removed) */
    size_t n;
} line_t;

/* A text file split into normalized lines, loaded once per run even when several
 * sections of it are pulled in. */
typedef struct {
    char *real; /* realpath: identity in the list of loaded documents */
    char *buf;
    line_t *lines;
    size_t nlines;
} doc_t;

typedef struct {
    char *s;
    size_t n, cap;
} strbuf;

/* What a walk without a key is for: ngs_netlist_mentions, ngs_netlist_visit_included */
typedef struct {
    const char *const *watch; /* names looked for in every card and command */
    int *seen;
    void (*visit)(void *user, const char *line); /* each line read from a pulled-in file */
    void *visit_user;
} walk_for;

typedef struct {
    EVP_MD_CTX *md;           /* NULL: no key, and the walk goes on past uncacheable causes */
    ngs_cache_key *key;
    const char *const *search;
    char cwd[PATH_MAX];
    int status;          /* NGS_OK or the first hard error (NOMEM) */
    /* Netlist cards draw their random values when the deck is parsed, before its
     * .control block runs: only a seed set before that fixes them. */
    int unseeded;        /* a random function or source no seed set before it fixes */
    char random_what[64];
    int parse_seed;      /* .options seed=N in the deck, pre_setseed N: fixes every draw */
    int control_seed;    /* setseed N, set rndseed=N so far: fixes the draws of later commands */
    int deck_seed;       /* control_seed when the deck being walked was parsed */
    int ctl;             /* > 0 while a .control command, and what it pulls in, is walked */
    int unseeded_noise;  /* a TRNOISE source: no seed reaches its generator */
    int sourcepath;      /* the deck sets `sourcepath` */
    char **deck_dirs;    /* directories the deck's own `set sourcepath` names */
    size_t ndeck_dirs;
    int inclusions;      /* files pulled in so far */
    doc_t **docs;
    size_t ndocs, capdocs;
    walk_for x;
} kctx;

/* How a file's lines are read: cards of a deck (title first), cards without a
 * title (an .include, a .lib section), or commands (a script included in a .control
 * block; ngspice splices an .include's lines where it stands, even there) */
enum { SCAN_BODY, SCAN_DECK, SCAN_COMMANDS };

static void scan_range(kctx *k, const doc_t *d, size_t a, size_t b, const char *dir, int kind, int depth);
static void netlist_card(kctx *k, char *card, const char *dir, int depth, int *skip);

/* ------------------------------------------------------------------ helpers -- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Only the first cause is kept: it is the one a user should fix first. */
static void uncacheable(kctx *k, const char *fmt, ...)
{
    va_list ap;
    if (!k->key->cacheable) return;
    k->key->cacheable = 0;
    va_start(ap, fmt);
    vsnprintf(k->key->reason, sizeof k->key->reason, fmt, ap);
    va_end(ap);
}

static void hash_bytes(kctx *k, const void *p, size_t n)
{
    if (n && k->md && EVP_DigestUpdate(k->md, p, n) != 1) k->status = NGS_ERR_NOMEM;
}

static void hash_u64(kctx *k, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    hash_bytes(k, b, 8);
}

/* tag byte, length, bytes */
static void hash_rec(kctx *k, char tag, const void *p, size_t n)
{
    hash_bytes(k, &tag, 1);
    hash_u64(k, n);
    hash_bytes(k, p, n);
}

static int sb_append(kctx *k, strbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < b->n + n + 1) cap *= 2;
        p = realloc(b->s, cap);
        if (!p) { k->status = NGS_ERR_NOMEM; return -1; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

static const char *skip_ws(const char *p)
{
    while (*p && isspace((unsigned char)*p)) p++;
    return p;
}

static int is_ident(int c) { return isalnum(c) || c == '_'; }

/* Next whitespace-separated token; quotes ("..." or '...') are removed and may hold
 * blanks. Returns 0 at the end of the line, -1 when the token does not fit. */
static int next_token(const char **pp, char *out, size_t outlen)
{
    const char *p = skip_ws(*pp);
    size_t n = 0;
    int trunc = 0;
    if (!*p) { *pp = p; return 0; }
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        while (*p && *p != q) {
            if (n + 1 < outlen) out[n++] = *p; else trunc = 1;
            p++;
        }
        if (*p == q) p++;
    } else {
        while (*p && !isspace((unsigned char)*p)) {
            if (n + 1 < outlen) out[n++] = *p; else trunc = 1;
            p++;
        }
    }
    out[n] = '\0';
    *pp = p;
    return trunc ? -1 : 1;
}

static void lower(char *s)
{
    for (; *s; s++) *s = (char)tolower((unsigned char)*s);
}

/* First token of a card, lowercased. */
static void card_name(const char *line, char *out, size_t outlen)
{
    const char *p = line;
    if (next_token(&p, out, outlen) == 0) out[0] = '\0';
    lower(out);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Removes the inline comments of a netlist card: ';' anywhere, '$' standing alone
 * (ngspice's "$ comment"), neither inside quotes. */
static void strip_inline_comment(char *s)
{
    char q = 0;
    for (char *p = s; *p; p++) {
        if (q) { if (*p == q) q = 0; continue; }
        if (*p == '"' || *p == '\'') { q = *p; continue; }
        if (*p == ';' ||
            (*p == '$' && (p == s || isspace((unsigned char)p[-1])) &&
             (p[1] == '\0' || isspace((unsigned char)p[1])))) {
            *p = '\0';
            break;
        }
    }
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void dir_of(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, outlen, ".");
    else if (slash == path) snprintf(out, outlen, "/");
    else snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

/* Candidate i for a relative name, in ngspice's order: the including file's
 * directory, the current directory, then the search directories. Returns 0 past
 * the last candidate. */
static int candidate(const kctx *k, const char *name, const char *dir, int i, char *out, size_t outlen)
{
    int n;
    if (name[0] == '/') {
        if (i) return 0;
        n = snprintf(out, outlen, "%s", name);
    } else if (name[0] == '~' && name[1] == '/') {
        const char *home = getenv("HOME");
        if (i || !home) return 0;
        n = snprintf(out, outlen, "%s%s", home, name + 1);
    } else if (i == 0) {
        n = snprintf(out, outlen, "%s/%s", dir && dir[0] ? dir : k->cwd, name);
    } else if (i == 1) {
        n = snprintf(out, outlen, "%s/%s", k->cwd, name);
    } else {
        size_t j = 0, m = (size_t)(i - 2);
        while (k->search && k->search[j] && j < m) j++;
        if (k->search && k->search[j]) n = snprintf(out, outlen, "%s/%s", k->search[j], name);
        else if (m - j < k->ndeck_dirs) n = snprintf(out, outlen, "%s/%s", k->deck_dirs[m - j], name);
        else return 0;
    }
    if (n < 0 || (size_t)n >= outlen) out[0] = '\0'; /* too long: never exists */
    return 1;
}

/* Counts a file pulled in; 0 when there have been too many (an include loop). */
static int one_more_inclusion(kctx *k, const char *name)
{
    if (++k->inclusions <= MAX_INCLUSIONS) return 1;
    uncacheable(k, "'%s': more than %d files pulled in (an include loop?)", name, MAX_INCLUSIONS);
    return 0;
}

/* Every candidate that exists, once each (by realpath), in candidate order. We
 * hash them all, not only the one ngspice would pick first: the embedding engine
 * may run the deck from another directory (its private copy) with `sourcepath`
 * set, which changes ngspice's order; hashing all of them keeps the key right
 * whatever the order. Returns the count (0: none; -1: out of memory). */
static int existing_candidates(kctx *k, const char *name, const char *dir, char (**out)[PATH_MAX])
{
    char path[PATH_MAX], real[PATH_MAX];
    char (*v)[PATH_MAX] = NULL, (*reals)[PATH_MAX] = NULL;
    int n = 0, cap = 0;
    *out = NULL;
    for (int i = 0; candidate(k, name, dir, i, path, sizeof path); i++) {
        int dup = 0;
        if (!path[0] || !is_regular(path) || !realpath(path, real)) continue;
        for (int j = 0; j < n; j++) dup |= strcmp(reals[j], real) == 0;
        if (dup) continue;
        if (n == cap) {
            int ncap = cap ? 2 * cap : 4;
            void *a = realloc(v, (size_t)ncap * sizeof *v), *b;
            if (a) v = a;
            b = a ? realloc(reals, (size_t)ncap * sizeof *reals) : NULL;
            if (!a || !b) {
                free(v);
                free(reals);
                k->status = NGS_ERR_NOMEM;
                return -1;
            }
            reals = b;
            cap = ncap;
        }
        memcpy(v[n], path, sizeof path);
        memcpy(reals[n], real, sizeof real);
        n++;
    }
    free(reals);
    *out = v;
    return n;
}

/* How many candidates for name exist (-1: out of memory). */
static int count_candidates(kctx *k, const char *name, const char *dir)
{
    char (*paths)[PATH_MAX];
    int n = existing_candidates(k, name, dir, &paths);
    free(paths);
    return n;
}

/* A file name ngspice would only know at run time (variables, expressions). */
static int computed_name(const char *name)
{
    return !name[0] || strpbrk(name, "${}`") != NULL;
}

static const char *sourcepath_hint(const kctx *k)
{
    return k->sourcepath ? " (the deck sets sourcepath; pass its directories as search dirs)" : "";
}

/* ---------------------------------------------------------------- documents -- */

static void doc_free(doc_t *d)
{
    if (!d) return;
    free(d->real);
    free(d->buf);
    free(d->lines);
    free(d);
}

/* Splits text into lines with trailing blanks and CR removed; trailing empty lines
 * are dropped (they change nothing for ngspice). Takes ownership of buf (len+1 bytes). */
static doc_t *doc_from_buf(kctx *k, char *buf, size_t len)
{
    doc_t *d = calloc(1, sizeof *d);
    size_t cap = 64, start = 0;
    if (!d) { free(buf); k->status = NGS_ERR_NOMEM; return NULL; }
    d->buf = buf;
    buf[len] = '\0';
    d->lines = malloc(cap * sizeof *d->lines);
    if (!d->lines) goto nomem;
    while (start <= len) {
        char *nl = memchr(buf + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t e = end;
        if (!nl && start == len) break; /* no partial last line */
        while (e > start && isspace((unsigned char)buf[e - 1])) e--;
        buf[e] = '\0';
        if (d->nlines == cap) {
            line_t *p = realloc(d->lines, 2 * cap * sizeof *p);
            if (!p) goto nomem;
            d->lines = p;
            cap *= 2;
        }
        d->lines[d->nlines].s = buf + start;
        d->lines[d->nlines].n = e - start;
        d->nlines++;
        start = end + 1;
    }
    while (d->nlines && d->lines[d->nlines - 1].n == 0) d->nlines--;
    return d;
nomem:
    doc_free(d);
    k->status = NGS_ERR_NOMEM;
    return NULL;
}

static int read_all(const char *path, char **out, size_t *outlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf;
    size_t n = 0;
    if (fd < 0) return -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_TEXT_BYTES) {
        int e = S_ISREG(st.st_mode) ? EFBIG : EISDIR;
        close(fd);
        return -e;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) { close(fd); return -ENOMEM; }
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (n != (size_t)st.st_size) { free(buf); return -EIO; } /* changed while read */
    *out = buf;
    *outlen = n;
    return 0;
}

/* Loads (once) the document at path. NULL: the run becomes uncacheable (or NOMEM). */
static const doc_t *load_doc(kctx *k, const char *path, const char *what)
{
    char real[PATH_MAX];
    char *buf;
    size_t len;
    doc_t *d;
    int rc;
    if (!realpath(path, real)) {
        uncacheable(k, "%s '%s': %s", what, path, strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < k->ndocs; i++)
        if (strcmp(k->docs[i]->real, real) == 0) return k->docs[i];
    rc = read_all(real, &buf, &len);
    if (rc == -ENOMEM) { k->status = NGS_ERR_NOMEM; return NULL; }
    if (rc) { uncacheable(k, "%s '%s': %s", what, path, strerror(-rc)); return NULL; }
    d = doc_from_buf(k, buf, len);
    if (!d) return NULL;
    d->real = strdup(real);
    if (!d->real) { doc_free(d); k->status = NGS_ERR_NOMEM; return NULL; }
    if (k->ndocs == k->capdocs) {
        size_t cap = k->capdocs ? 2 * k->capdocs : 16;
        doc_t **p = realloc(k->docs, cap * sizeof *p);
        if (!p) { doc_free(d); k->status = NGS_ERR_NOMEM; return NULL; }
        k->docs = p;
        k->capdocs = cap;
    }
    k->docs[k->ndocs++] = d;
    return d;
}

/* Record: tag, label, number of lines, then each line with its length. */
static void hash_lines(kctx *k, char tag, const char *label, const doc_t *d, size_t a, size_t b)
{
    hash_rec(k, tag, label, strlen(label));
    hash_u64(k, b - a);
    for (size_t i = a; i < b; i++) {
        hash_u64(k, d->lines[i].n);
        hash_bytes(k, d->lines[i].s, d->lines[i].n);
    }
}

/* A binary file (library, data) by content, streamed. */
static void hash_file(kctx *k, char tag, const char *path, const char *what)
{
    unsigned char buf[65536];
    struct stat st;
    uint64_t total = 0;
    int fd;
    if (!k->md) return; /* no key: a data file's content does not matter */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        uncacheable(k, "%s '%s': %s", what, path, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0) close(fd);
        return;
    }
    hash_bytes(k, &tag, 1);
    hash_u64(k, (uint64_t)st.st_size);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { uncacheable(k, "%s '%s': %s", what, path, strerror(errno)); break; }
        if (r == 0) break;
        hash_bytes(k, buf, (size_t)r);
        total += (uint64_t)r;
    }
    close(fd);
    if (total != (uint64_t)st.st_size) uncacheable(k, "%s '%s' changed while it was read", what, path);
    k->key->nfiles++;
}

/* ------------------------------------------------------------ file readers -- */

/* .include: the file(s) ngspice may open, by content, and what they pull in
 * (kind: SCAN_COMMANDS when the .include stands among commands). */
static void do_include(kctx *k, const char *name, const char *dir, int kind, int depth)
{
    char (*paths)[PATH_MAX], sub[PATH_MAX];
    int n;
    if (depth >= MAX_DEPTH) { uncacheable(k, ".include '%s': nested more than %d levels", name, MAX_DEPTH); return; }
    if ((n = existing_candidates(k, name, dir, &paths)) < 0) return;
    if (n == 0) uncacheable(k, ".include '%s': file not found%s", name, sourcepath_hint(k));
    for (int i = 0; i < n && k->status == NGS_OK; i++) {
        const doc_t *d;
        if (!one_more_inclusion(k, name) || !(d = load_doc(k, paths[i], ".include"))) break;
        k->key->nfiles++;
        hash_lines(k, 'I', "", d, 0, d->nlines);
        dir_of(paths[i], sub, sizeof sub);
        scan_range(k, d, 0, d->nlines, sub, kind, depth + 1);
    }
    free(paths);
}

/* `.lib section` start line: returns 1 and the section name. */
static int lib_section_start(const char *line, char *sec, size_t seclen)
{
    char buf[TOKEN_MAX], tok[TOKEN_MAX], extra[TOKEN_MAX];
    const char *p;
    snprintf(buf, sizeof buf, "%s", skip_ws(line));
    strip_inline_comment(buf);
    p = buf;
    if (next_token(&p, tok, sizeof tok) <= 0) return 0;
    lower(tok);
    if (!starts_with(tok, ".lib")) return 0;
    if (next_token(&p, sec, seclen) <= 0) return 0;
    return next_token(&p, extra, sizeof extra) == 0;
}

static int is_endl(const char *line)
{
    char tok[64];
    card_name(skip_ws(line), tok, sizeof tok);
    return starts_with(tok, ".endl");
}

/* .lib file section: only that section's text (every block of that name, to be
 * safe), and what it pulls in. */
static void do_lib_file(kctx *k, const char *name, const char *path, const char *section, int depth)
{
    char sub[PATH_MAX], sec[TOKEN_MAX], label[TOKEN_MAX];
    const doc_t *d;
    int found = 0;
    if (!(d = load_doc(k, path, ".lib"))) return;
    dir_of(path, sub, sizeof sub);
    snprintf(label, sizeof label, "%s", section);
    lower(label);
    for (size_t i = 0; i < d->nlines && k->status == NGS_OK; i++) {
        size_t end;
        if (!lib_section_start(d->lines[i].s, sec, sizeof sec) || strcasecmp(sec, section) != 0) continue;
        for (end = i + 1; end < d->nlines && !is_endl(d->lines[end].s); end++) {}
        found = 1;
        k->key->nfiles++;
        hash_lines(k, 'L', label, d, i, end < d->nlines ? end + 1 : end);
        scan_range(k, d, i + 1, end, sub, SCAN_BODY, depth + 1);
        i = end;
    }
    if (!found) uncacheable(k, ".lib '%s': section '%s' not found", name, section);
}

static void do_lib(kctx *k, const char *name, const char *section, const char *dir, int depth)
{
    char (*paths)[PATH_MAX];
    int n;
    if (depth >= MAX_DEPTH) { uncacheable(k, ".lib '%s': nested more than %d levels", name, MAX_DEPTH); return; }
    if ((n = existing_candidates(k, name, dir, &paths)) < 0) return;
    if (n == 0) uncacheable(k, ".lib '%s': file not found%s", name, sourcepath_hint(k));
    for (int i = 0; i < n && k->status == NGS_OK && one_more_inclusion(k, name); i++)
        do_lib_file(k, name, paths[i], section, depth);
    free(paths);
}

/* ngspice reads a file whose name holds ".spiceinit" or "spice.rc" as an init
 * file: every line a command, no title (com_source's test, used for the startup
 * .spiceinit too). */
static int init_file_name(const char *name)
{
    return strstr(name, ".spiceinit") != NULL || strstr(name, "spice.rc") != NULL;
}

/* A file read by a command or a model parameter, by content; `source`d scripts
 * are also scanned. */
static void do_data_file(kctx *k, const char *name, const char *dir, int depth, int is_netlist,
                         const char *what)
{
    char (*paths)[PATH_MAX], sub[PATH_MAX];
    int n;
    if (computed_name(name)) {
        uncacheable(k, "%s '%s': the file name is only known at run time", what, name);
        return;
    }
    if (depth >= MAX_DEPTH) { uncacheable(k, "%s '%s': nested more than %d levels", what, name, MAX_DEPTH); return; }
    if ((n = existing_candidates(k, name, dir, &paths)) < 0) return;
    if (n == 0) uncacheable(k, "%s '%s': file not found%s", what, name, sourcepath_hint(k));
    for (int i = 0; i < n && k->status == NGS_OK; i++) {
        hash_rec(k, 'D', what, strlen(what));
        if (is_netlist) {
            const doc_t *d;
            if (!one_more_inclusion(k, name) || !(d = load_doc(k, paths[i], what))) break;
            k->key->nfiles++;
            hash_lines(k, 'T', "", d, 0, d->nlines);
            dir_of(paths[i], sub, sizeof sub);
            scan_range(k, d, 0, d->nlines, sub, init_file_name(name) ? SCAN_COMMANDS : SCAN_DECK, depth + 1);
        } else {
            hash_file(k, 'B', paths[i], what);
        }
    }
    free(paths);
}

/* ------------------------------------------------------------- detections -- */

/* Random functions and sources (numparam, B-sources, nutmeg, sources). The value
 * says whether a '(' must follow. */
static const struct { const char *name; int call; } random_names[] = {
    {"agauss", 1}, {"aunif", 1}, {"gauss", 1}, {"unif", 1}, {"limit", 1}, {"rand", 1},
    {"rnd", 1}, {"sgauss", 1}, {"sunif", 1}, {"poisson", 1}, {"exponential", 1},
    {"trnoise", 0}, {"trrandom", 0},
};

/* seeded: a seed set before line's draws fixes them. */
static void scan_random(kctx *k, const char *line, int seeded)
{
    char *buf;
    /* ngspice 39 seeds TRNOISE's generator from the clock once per process:
     * `.options seed` and `setseed` leave it alone (a seeded run differs each time) */
    if (!k->unseeded_noise && ngs_text_has_name(line, "trnoise")) k->unseeded_noise = 1;
    if (seeded || k->unseeded) return;
    if (!(buf = strdup(line))) { k->status = NGS_ERR_NOMEM; return; }
    lower(buf);
    for (size_t i = 0; i < sizeof random_names / sizeof random_names[0]; i++) {
        const char *name = random_names[i].name;
        size_t n = strlen(name);
        for (const char *p = buf; (p = strstr(p, name)) != NULL; p += n) {
            const char *q = skip_ws(p + n);
            if (p > buf && is_ident((unsigned char)p[-1])) continue;
            if (is_ident((unsigned char)p[n])) continue;
            if (random_names[i].call && *q != '(') continue;
            k->unseeded = 1;
            snprintf(k->random_what, sizeof k->random_what, "%s", name);
            free(buf);
            return;
        }
    }
    free(buf);
}

int ngs_text_has_name(const char *text, const char *name)
{
    size_t n = strlen(name);
    if (n == 0) return 0;
    for (const char *p = text; (p = strcasestr(p, name)) != NULL; p += n)
        if ((p == text || !is_ident((unsigned char)p[-1])) && !is_ident((unsigned char)p[n])) return 1;
    return 0;
}

/* Marks the watched names that text has. */
static void watch_text(kctx *k, const char *text)
{
    for (size_t i = 0; k->x.watch && k->x.watch[i]; i++)
        if (!k->x.seen[i] && ngs_text_has_name(text, k->x.watch[i])) k->x.seen[i] = 1;
}

/* Finds `name = value` (name not part of a longer identifier) from *pp on.
 * Returns 1 with the value, and moves *pp past it. */
static int next_assignment(const char **pp, const char *name, char *val, size_t vallen)
{
    size_t n = strlen(name);
    for (const char *p = *pp; (p = strcasestr(p, name)) != NULL; p += n) {
        const char *q = p + n, *v;
        size_t m = 0;
        if (p > *pp && is_ident((unsigned char)p[-1])) continue;
        q = skip_ws(q);
        if (*q != '=') continue;
        v = skip_ws(q + 1);
        if (*v == '"' || *v == '\'') {
            char quote = *v++;
            while (v[m] && v[m] != quote) m++;
            snprintf(val, vallen, "%.*s", (int)m, v);
            *pp = v + m + (v[m] ? 1 : 0);
        } else {
            while (v[m] && !isspace((unsigned char)v[m]) && v[m] != ',' && v[m] != ')' && v[m] != ';') m++;
            snprintf(val, vallen, "%.*s", (int)m, v);
            *pp = v + m;
        }
        return 1;
    }
    return 0;
}

/* .options / option: seed=N in a card seeds the parse of its deck, and what
 * follows (the `option` command leaves the generator alone); seed=random seeds it
 * from the clock. */
static void scan_options(kctx *k, const char *rest, int card)
{
    char val[TOKEN_MAX];
    const char *p = rest;
    while (next_assignment(&p, "seed", val, sizeof val)) {
        if (strcasecmp(val, "random") == 0) uncacheable(k, "'seed=random' seeds the random generator from the clock");
        else if (val[0] && card && k->ctl == 0) k->parse_seed = 1;
        else if (val[0] && card) k->control_seed = 1;
    }
}

/* file=, input_file=, state_file=... (XSPICE filesource, d_source, d_state, table
 * models, PWL file=, altermod file=): data the run reads. */
static void scan_file_params(kctx *k, const char *line, const char *dir, int depth)
{
    char val[TOKEN_MAX];
    for (const char *p = line; (p = strcasestr(p, "file")) != NULL;) {
        const char *q = p;
        if (p > line && isalnum((unsigned char)p[-1])) { p += 4; continue; } /* profile= */
        if (is_ident((unsigned char)p[4])) { p += 4; continue; }             /* filesource */
        if (!next_assignment(&q, "file", val, sizeof val) || q == p) { p += 4; continue; }
        do_data_file(k, val, dir, depth, 0, "file=");
        p = q;
    }
}

/* One directory a deck's `set sourcepath` names, kept as a candidate for what it
 * pulls in later ('~' as ngspice expands it). */
static void add_deck_dir(kctx *k, const char *dir)
{
    const char *home = getenv("HOME");
    char path[PATH_MAX], **v;
    if (!dir[0]) return;
    if (strcasecmp(dir, "$sourcepath") == 0 || strcasecmp(dir, "$ngscale_sourcepath") == 0)
        return; /* the run's own list: already candidates */
    if (computed_name(dir) || (dir[0] == '~' && dir[1] && dir[1] != '/') || (dir[0] == '~' && !home)) {
        uncacheable(k, "'set sourcepath' names '%s', a directory only known at run time", dir);
        return;
    }
    if (snprintf(path, sizeof path, "%s%s", dir[0] == '~' ? home : "", dir + (dir[0] == '~')) >= (int)sizeof path) {
        uncacheable(k, "'set sourcepath': directory name too long");
        return;
    }
    if (!(v = realloc(k->deck_dirs, (k->ndeck_dirs + 1) * sizeof *v)) || !(v[k->ndeck_dirs] = strdup(path))) {
        if (v) k->deck_dirs = v;
        k->status = NGS_ERR_NOMEM;
        return;
    }
    k->deck_dirs = v;
    k->ndeck_dirs++;
}

/* `set sourcepath = ( a b )` (or `= a`) in the deck replaces the run's list: ngspice
 * then finds the scripts it sources, and their includes, in those directories, so
 * they become candidates too (those of the run's list stay: at worst a needless miss). */
static void scan_sourcepath(kctx *k, const char *rest)
{
    char list[TOKEN_MAX], tok[TOKEN_MAX];
    for (const char *p = rest; (p = strcasestr(p, "sourcepath")) != NULL; p += 10) {
        const char *q = skip_ws(p + 10), *t;
        size_t n = 0;
        char quote = 0;
        int rc;
        if ((p > rest && is_ident((unsigned char)p[-1])) || *q != '=') continue;
        q = skip_ws(q + 1);
        if (*q != '(') {
            if (next_token(&q, tok, sizeof tok) > 0) add_deck_dir(k, tok);
            continue;
        }
        for (q++; *q && (quote || *q != ')'); q++) { /* the list, up to its ')' outside quotes */
            if (quote && *q == quote) quote = 0;
            else if (!quote && (*q == '"' || *q == '\'')) quote = *q;
            if (n + 1 < sizeof list) list[n++] = *q;
        }
        list[n] = '\0';
        for (t = list; (rc = next_token(&t, tok, sizeof tok)) != 0;) {
            if (rc < 0) { uncacheable(k, "'set sourcepath': directory name too long"); break; }
            add_deck_dir(k, tok);
        }
    }
}

/* Commands that write files a cached replay would not recreate. */
static const char *const writing_commands[] = {
    "write", "wrdata", "wrs2p", "hardcopy", "wrnodev", "snsave", "eprvcd", "eprint", NULL};
/* Commands that run an external program. */
static const char *const external_commands[] = {"shell", "gnuplot", "xgraph", NULL};
/* Control-flow commands whose '<' / '>' are comparisons, not redirections. */
static const char *const flow_commands[] = {
    "if", "else", "elseif", "while", "dowhile", "until", "let", "set", "repeat", "foreach",
    "alias", "define", "unlet", "unset", NULL};

static int in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0) return 1;
    return 0;
}

/* ngspice replaces "$name" ("$?name", "$#name") in a command with its variable of
 * that name, else the environment's: the environment's value goes into the key,
 * shadowed or not (at worst a needless miss). "$&vector" reads the run's own data. */
static void hash_environment_refs(kctx *k, const char *cmdline)
{
    for (const char *p = strchr(cmdline, '$'); p; p = strchr(p + 1, '$')) {
        const char *start = p + 1, *end, *value;
        char name[TOKEN_MAX];
        if (*start == '?' || *start == '#') start++;
        for (end = start; isalnum((unsigned char)*end) || *end == '_'; end++) {}
        if (end == start || (size_t)(end - start) >= sizeof name) continue;
        snprintf(name, sizeof name, "%.*s", (int)(end - start), start);
        value = getenv(name);
        hash_rec(k, 'E', name, strlen(name));
        if (value) hash_rec(k, 'e', value, strlen(value));
        else hash_rec(k, 'U', "", 0);
    }
}

/* ngspice runs a command it does not know as the script file of that name (looked
 * up like `source`'s, the name lowercased as ngspice reads it): where such a file
 * exists it is hashed and walked as `source` would be. A file named like a known
 * command is hashed too: at worst a needless miss. */
static void script_command(kctx *k, const char *name, const char *dir, int depth)
{
    if (computed_name(name)) {
        uncacheable(k, "the command '%s' is only known at run time", name);
        return;
    }
    if (count_candidates(k, name, dir) > 0) do_data_file(k, name, dir, depth, 1, "script file");
}

/* ngspice's lexer splits words at '<' and '>' outside quotes: a redirection need
 * not start a word (`print v(a)>out.txt`). */
static const char *redirection(const char *s)
{
    char q = 0;
    for (; *s; s++) {
        if (q) { if (*s == q) q = 0; continue; }
        if (*s == '"' || *s == '\'') q = *s;
        else if (*s == '<' || *s == '>') return s;
    }
    return NULL;
}

/* One command of a .control block (or a "*#" line). */
static void control_command(kctx *k, const char *cmdline, const char *dir, int depth)
{
    char name[TOKEN_MAX], tok[TOKEN_MAX], val[TOKEN_MAX];
    const char *p = cmdline, *rest, *cmd, *redir;
    if (next_token(&p, name, sizeof name) <= 0) return;
    lower(name);
    cmd = starts_with(name, "pre_") ? name + 4 : name; /* pre_osdi, pre_set... run before parsing */
    rest = p;
    if (starts_with(name, ".inc")) {
        /* ngspice splices an .include in as it reads the file, in a .control block
         * or a script too, where its lines then run as commands */
        if (next_token(&p, tok, sizeof tok) > 0) do_include(k, tok, dir, SCAN_COMMANDS, depth);
        else uncacheable(k, ".include without a usable file name");
        return;
    } else if (in_list(external_commands, cmd)) {
        uncacheable(k, "'%s' in a .control block runs an external program", cmd);
    } else if (in_list(writing_commands, cmd)) {
        uncacheable(k, "'%s' in a .control block writes a file that a cached replay would not recreate", cmd);
    } else if (strcmp(cmd, "alias") == 0) {
        /* an alias may hide write, shell or a redirection behind any name */
        if (next_token(&p, tok, sizeof tok) > 0 && next_token(&p, val, sizeof val) != 0)
            uncacheable(k, "'alias' in a .control block may hide a command that writes files or runs a program");
    } else if (strcmp(cmd, "cd") == 0) {
        uncacheable(k, "'cd' in a .control block changes where files are read and written");
    } else if (strcmp(cmd, "set") == 0 || strcmp(cmd, "setcs") == 0) {
        const char *q = rest;
        if (strcasestr(rest, "unixcom")) uncacheable(k, "'set unixcom' runs unknown commands in the shell");
        if (strcasestr(rest, "sourcepath")) {
            k->sourcepath = 1;
            scan_sourcepath(k, rest);
        }
        while (next_assignment(&q, "rndseed", val, sizeof val))
            if (val[0]) k->control_seed = 1;
    } else if (strcmp(cmd, "setseed") == 0) {
        /* pre_setseed in the deck's own .control runs before the deck is parsed */
        if (next_token(&p, tok, sizeof tok) > 0) {
            if (starts_with(name, "pre_") && k->ctl == 1) k->parse_seed = 1;
            else k->control_seed = 1;
        }
    } else if (strcmp(cmd, "option") == 0 || strcmp(cmd, "options") == 0 || strcmp(cmd, "opt") == 0) {
        scan_options(k, rest, 0);
    } else if (strcmp(cmd, "source") == 0) {
        if (next_token(&p, tok, sizeof tok) > 0) do_data_file(k, tok, dir, depth, 1, "source");
    } else if (strcmp(cmd, "load") == 0 || strcmp(cmd, "osdi") == 0 || strcmp(cmd, "codemodel") == 0) {
        int rc;
        while ((rc = next_token(&p, tok, sizeof tok)) != 0) {
            if (rc < 0) { uncacheable(k, "'%s': file name too long", cmd); break; }
            do_data_file(k, tok, dir, depth, 0, cmd);
        }
    } else if (strcmp(cmd, "circbyline") == 0) {
        /* its argument is a card of the deck it builds: .include and .lib are followed */
        char *card = strdup(rest);
        int skip = 0;
        if (!card) { k->status = NGS_ERR_NOMEM; return; }
        strip_inline_comment(card);
        netlist_card(k, card, dir, depth, &skip);
        free(card);
    } else if (!in_list(flow_commands, cmd)) {
        script_command(k, name, dir, depth);
    }
    if (!in_list(flow_commands, cmd) && (redir = redirection(cmdline)) != NULL)
        uncacheable(k, "'%s ... %.*s' redirects output or input to a file", cmd, (int)strcspn(redir, " \t"), redir);
    hash_environment_refs(k, cmdline);
    scan_random(k, cmdline, k->control_seed);
    if (strcmp(cmd, "source") != 0 && strcmp(cmd, "circbyline") != 0) scan_file_params(k, rest, dir, depth);
}

/* A .control line: backquotes run a shell; ';' separates commands (outside quotes). */
static void control_line(kctx *k, const char *line, const char *dir, int depth)
{
    char *buf, *start, q = 0;
    watch_text(k, line);
    if (strchr(line, '`')) { uncacheable(k, "backquotes in a .control block run a shell command"); return; }
    if (!(buf = strdup(line))) { k->status = NGS_ERR_NOMEM; return; }
    start = buf;
    for (char *p = buf;; p++) {
        if (q && *p) { if (*p == q) q = 0; continue; }
        if (*p == '"' || *p == '\'') { q = *p; continue; }
        if (*p == ';' || *p == '\0') {
            int end = *p == '\0';
            *p = '\0';
            k->ctl++;
            control_command(k, start, dir, depth);
            k->ctl--;
            if (end) break;
            start = p + 1;
        }
    }
    free(buf);
}

/* One netlist card (continuations joined, comments stripped). *skip is set when
 * the card opens a `.lib section` definition, which only counts when referenced. */
static void netlist_card(kctx *k, char *card, const char *dir, int depth, int *skip)
{
    char name[64], a1[TOKEN_MAX], a2[TOKEN_MAX];
    const char *p = card;
    watch_text(k, card);
    if (k->x.visit && depth > 0) k->x.visit(k->x.visit_user, card); /* whole: random draws sit on '+' lines */
    card_name(card, name, sizeof name);
    next_token(&p, a1, sizeof a1); /* skip the card name */
    if (starts_with(name, ".inc")) {
        int rc = next_token(&p, a1, sizeof a1);
        if (rc > 0) do_include(k, a1, dir, SCAN_BODY, depth);
        else uncacheable(k, ".include without a usable file name");
        return;
    }
    if (starts_with(name, ".lib")) {
        int r1 = next_token(&p, a1, sizeof a1), r2 = r1 > 0 ? next_token(&p, a2, sizeof a2) : 0;
        if (r1 < 0 || r2 < 0) uncacheable(k, ".lib: name too long");
        else if (r1 > 0 && r2 == 0) {
            /* a section definition, or, with ngbehavior lt or ps (a .spiceinit's),
             * an old-style `.lib file`: ngspice reads it as `.include file`. Where
             * such a file exists it is read as an include, and what follows is
             * not skipped (at worst a needless miss) */
            if (count_candidates(k, a1, dir) > 0) do_include(k, a1, dir, SCAN_BODY, depth);
            else *skip = 1;
        }
        else if (r1 > 0) do_lib(k, a1, a2, dir, depth);
        return;
    }
    if (starts_with(name, ".endl") || starts_with(name, ".control") || starts_with(name, ".endc")) return;
    if (!k->md) return; /* what follows only matters to a key */
    if (starts_with(name, ".opt")) scan_options(k, p, 1);
    if (strcmp(name, ".model") == 0) {
        /* the model type (e.g. XSPICE `limit`) is not a function call */
        const char *q = p;
        char tmp[TOKEN_MAX];
        if (next_token(&q, tmp, sizeof tmp) > 0) { /* q: after the model name */
            char *t = card + (skip_ws(q) - card);
            while (*t && !isspace((unsigned char)*t) && *t != '(') *t++ = ' ';
        }
    }
    scan_random(k, card, k->ctl ? k->deck_seed : 0);
    scan_file_params(k, card, dir, depth);
}

/* Scans lines [a, b) of a document, read as kind says. */
static void scan_range(kctx *k, const doc_t *d, size_t a, size_t b, const char *dir, int kind, int depth)
{
    strbuf cur = {0};
    int has_title = kind == SCAN_DECK;
    /* a file whose title is *ng_script is a command script: all of it runs as .control */
    int script = kind == SCAN_COMMANDS ||
                 (has_title && a < b && strncasecmp(skip_ws(d->lines[a].s), "*ng_script", 10) == 0);
    int have = 0, in_control = script, skip = 0, deck_seed = k->deck_seed;
    char name[64];
    if (has_title) k->deck_seed = k->control_seed; /* a deck of its own: parsed now */
    if (script && k->x.visit && depth > 0) k->x.visit(k->x.visit_user, ".control");
    /* once uncacheable, the rest does not matter to the key: the first cause is reported */
    for (size_t i = a; i < b && k->status == NGS_OK && (k->key->cacheable || !k->md); i++) {
        const char *p = skip_ws(d->lines[i].s);
        if (has_title && i == a) continue;
        if (!*p) continue;
        if (in_control && k->x.visit && depth > 0) k->x.visit(k->x.visit_user, p);
        if (in_control) {
            card_name(p, name, sizeof name);
            if (starts_with(name, ".endc")) { in_control = 0; continue; }
            if (p[0] == '*' && p[1] != '#') continue;
            control_line(k, p[0] == '*' ? p + 2 : p, dir, depth);
            continue;
        }
        if (p[0] == '+') {
            if (have) {
                size_t at = cur.n;
                if (sb_append(k, &cur, " ", 1) || sb_append(k, &cur, p + 1, strlen(p + 1))) break;
                strip_inline_comment(cur.s + at);
                cur.n = strlen(cur.s);
            }
            continue;
        }
        if (p[0] == '*' && p[1] != '#') continue;
        if (have) { netlist_card(k, cur.s, dir, depth, &skip); have = 0; }
        if (skip) {
            if (is_endl(p)) skip = 0;
            continue;
        }
        if (p[0] == '*') { control_line(k, p + 2, dir, depth); continue; } /* "*#" command */
        card_name(p, name, sizeof name);
        if (starts_with(name, ".control")) {
            if (k->x.visit && depth > 0) k->x.visit(k->x.visit_user, p);
            in_control = 1;
            continue;
        }
        cur.n = 0;
        if (sb_append(k, &cur, p, strlen(p))) break;
        strip_inline_comment(cur.s);
        cur.n = strlen(cur.s);
        have = 1;
    }
    if (have && k->status == NGS_OK && (k->key->cacheable || !k->md)) netlist_card(k, cur.s, dir, depth, &skip);
    if (script && k->x.visit && depth > 0) k->x.visit(k->x.visit_user, ".endc");
    k->deck_seed = deck_seed;
    free(cur.s);
}

/* An init file the caller lists (.spiceinit): ngspice runs it as commands before
 * the deck is read, so what it sources, loads or runs counts as the deck's own
 * .control would. Its draws precede any seed the deck sets. */
static void scan_init_file(kctx *k, const char *path)
{
    char dir[PATH_MAX];
    const doc_t *d;
    int control_seed = k->control_seed, was = k->key->cacheable;
    if (!(d = load_doc(k, path, "init file"))) return;
    dir_of(path, dir, sizeof dir);
    k->control_seed = 0;
    k->ctl++; /* not the deck's own .control: pre_setseed there seeds no parse */
    scan_range(k, d, 0, d->nlines, dir, SCAN_COMMANDS, 1);
    k->ctl--;
    k->control_seed = control_seed;
    if (was && !k->key->cacheable) { /* say where: the message speaks of a .control block */
        char why[sizeof k->key->reason];
        snprintf(why, sizeof why, "%s", k->key->reason);
        snprintf(k->key->reason, sizeof k->key->reason, "%s: %.*s", path, (int)strlen(why), why);
    }
}

/* ------------------------------------------------------------------ public -- */

int ngs_cache_key_valid_hex(const char *s)
{
    if (!s) return 0;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
    return s[64] == '\0';
}

/* The key's walk; with x, a walk for what x asks only (no key). */
static int walk(ngs_cache_key *key, const char *netlist_path, const char *netlist_text, const char *base_dir,
                const char *const *search_dirs, const char *const *extra_strings,
                const char *const *extra_files, const walk_for *x, char *err, size_t errlen)
{
    kctx k;
    char dir[PATH_MAX];
    char *text = NULL;
    size_t len;
    doc_t *top = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc;

    if (err && errlen) err[0] = '\0';
    if (!key || (!netlist_path && !netlist_text)) {
        set_err(err, errlen, "no netlist given");
        return NGS_ERR_ARG;
    }
    memset(key, 0, sizeof *key);
    key->cacheable = 1;
    memset(&k, 0, sizeof k);
    if (x) k.x = *x;
    k.key = key;
    k.search = search_dirs;
    if (!getcwd(k.cwd, sizeof k.cwd)) snprintf(k.cwd, sizeof k.cwd, ".");

    if (netlist_text) {
        len = strlen(netlist_text);
        text = malloc(len + 1);
        if (!text) return NGS_ERR_NOMEM;
        memcpy(text, netlist_text, len);
    } else if ((rc = read_all(netlist_path, &text, &len)) != 0) {
        set_err(err, errlen, "%s: %s", netlist_path, strerror(-rc));
        return rc == -ENOMEM ? NGS_ERR_NOMEM : NGS_ERR_IO;
    }
    if (netlist_path) dir_of(netlist_path, dir, sizeof dir);
    else snprintf(dir, sizeof dir, "%s", base_dir && base_dir[0] ? base_dir : k.cwd);

    if (!x && (!(k.md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(k.md, EVP_sha256(), NULL) != 1)) {
        free(text);
        EVP_MD_CTX_free(k.md);
        return NGS_ERR_NOMEM;
    }
    hash_rec(&k, 'V', KEY_VERSION, strlen(KEY_VERSION));
    top = doc_from_buf(&k, text, len); /* owns text now */
    if (top) {
        hash_lines(&k, 'N', "", top, 0, top->nlines);
        scan_range(&k, top, 0, top->nlines, dir, SCAN_DECK, 0);
    }
    /* caller's strings and files: counted, so moving one from a list to the other,
     * or splitting a string, changes the key */
    {
        uint64_t n = 0;
        for (const char *const *s = extra_strings; s && *s; s++) n++;
        hash_rec(&k, 'S', "", 0);
        hash_u64(&k, n);
        for (const char *const *s = extra_strings; s && *s; s++) hash_rec(&k, 's', *s, strlen(*s));
        n = 0;
        for (const char *const *f = extra_files; f && *f; f++) n++;
        hash_rec(&k, 'F', "", 0);
        hash_u64(&k, n);
        for (const char *const *f = extra_files; f && *f; f++) {
            struct stat st;
            if (stat(*f, &st) != 0 && errno == ENOENT) hash_rec(&k, 'A', "", 0); /* absent */
            else hash_file(&k, 'f', *f, "extra file");
            if (init_file_name(*f) && k.key->cacheable && k.status == NGS_OK && is_regular(*f))
                scan_init_file(&k, *f);
        }
    }
    if (k.unseeded_noise)
        uncacheable(&k, "'trnoise' draws from a generator no seed reaches: its result differs from run to run");
    else if (k.unseeded && !k.parse_seed)
        uncacheable(&k, k.control_seed ? "'%s' draws random numbers before the seed is set (setseed and rndseed fix "
                                         "only the draws of later commands; `.options seed=N` fixes all)"
                                       : "'%s' draws random numbers without a fixed seed (add `.options seed=N`)",
                    k.random_what);

    rc = k.status;
    if (rc == NGS_OK && k.md && EVP_DigestFinal_ex(k.md, md, &mdlen) != 1) rc = NGS_ERR_NOMEM;
    if (rc == NGS_OK && k.md && key->cacheable) {
        for (unsigned i = 0; i < mdlen && i < 32; i++) snprintf(key->hex + 2 * i, 3, "%02x", md[i]);
    } else {
        key->hex[0] = '\0';
    }
    if (rc != NGS_OK) set_err(err, errlen, "out of memory while computing the cache key");
    EVP_MD_CTX_free(k.md);
    doc_free(top);
    for (size_t i = 0; i < k.ndocs; i++) doc_free(k.docs[i]);
    free(k.docs);
    for (size_t i = 0; i < k.ndeck_dirs; i++) free(k.deck_dirs[i]);
    free(k.deck_dirs);
    return rc;
}

int ngs_cache_key_compute(ngs_cache_key *key, const char *netlist_path, const char *netlist_text,
                          const char *base_dir, const char *const *search_dirs,
                          const char *const *extra_strings, const char *const *extra_files,
                          char *err, size_t errlen)
{
    return walk(key, netlist_path, netlist_text, base_dir, search_dirs, extra_strings, extra_files, NULL, err,
                errlen);
}

int ngs_netlist_mentions(const char *netlist_path, const char *const *search_dirs, const char *const *names,
                         int *seen, char *err, size_t errlen)
{
    ngs_cache_key key;
    walk_for x = {names, seen, NULL, NULL};
    size_t n = 0;
    if (!netlist_path || !names || !seen) {
        if (err && errlen) snprintf(err, errlen, "no netlist or names given");
        return NGS_ERR_ARG;
    }
    while (names[n]) seen[n++] = 0;
    if (n == 0) return NGS_OK;
    return walk(&key, netlist_path, NULL, NULL, search_dirs, NULL, NULL, &x, err, errlen);
}

int ngs_netlist_visit_included(const char *netlist_text, const char *base_dir, const char *const *search_dirs,
                               void (*visit)(void *user, const char *line), void *user, char *err,
                               size_t errlen)
{
    ngs_cache_key key;
    walk_for x = {NULL, NULL, visit, user};
    if (!netlist_text || !visit) {
        if (err && errlen) snprintf(err, errlen, "no netlist or visitor given");
        return NGS_ERR_ARG;
    }
    return walk(&key, NULL, netlist_text, base_dir, search_dirs, NULL, NULL, &x, err, errlen);
}
