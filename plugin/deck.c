/*
 * deck.c - netlist reading and the flat-memory decision (see deck.h).
 *
 * The scan is conservative: a command we do not know to be harmless counts as
 * reading vectors, so a script never silently sees empty vectors. The cost of a
 * wrong "reads" is only memory; the cost of a wrong "harmless" is a broken script.
 */
#include "plugin/deck.h"

#include <ctype.h>
#include <math.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ngscale.h"
#include "cache/record.h"
#include "cache/cache_key.h"

/* .control commands that neither read vectors nor change what is saved. */
static const char *const harmless_commands[] = {
    "tran", "ac", "dc", "op", "noise", "tf", "sens", "pz", "disto", "sp", "pss", "run",
    "set", "unset", "option", "options", "alter", "altermod", "alterparam", "reset",
    "destroy", "remcirc", "setseed", "rusage", "quit", "exit", "listing", "show",
    "showmod", "version", "status", "echo", "source", "bg_run", "end", "resume",
    "unalias", "alias", "cd", "shell", "codemodel", "pre_osdi", "osdi", NULL};

/* Dot cards (outside .control) that read vectors after the run or change saving. */
static const char *const reading_cards[] = {
    ".meas", ".measure", ".print", ".plot", ".four", ".save", ".probe", ".width", NULL};

/* .control commands that run an analysis: a block without one only sets up */
static const char *const analysis_commands[] = {
    "run", "tran", "ac", "dc", "op", "noise", "tf", "sens", "pz", "disto", "sp", "pss", "bg_run", "resume", NULL};

static const char *const analysis_cards[] = {
    ".tran", ".ac", ".dc", ".op", ".noise", ".tf", ".sens", ".pz", ".disto", ".sp", ".pss", NULL};

static int in_list(const char *word, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(word, *list) == 0) return 1;
    return 0;
}

/* First word of a line, lower-cased, into buf. */
static void first_word(const char *line, char *buf, size_t n)
{
    size_t i = 0;
    while (*line && isspace((unsigned char)*line)) line++;
    while (*line && !isspace((unsigned char)*line) && *line != '(' && i + 1 < n)
        buf[i++] = (char)tolower((unsigned char)*line++);
    buf[i] = '\0';
}

static int contains_word_ci(const char *line, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = line; *p; p++) {
        if (strncasecmp(p, word, n) == 0 &&
            (p == line || !isalnum((unsigned char)p[-1])) && !isalnum((unsigned char)p[n]))
            return 1;
    }
    return 0;
}

/* Whether line assigns the variable name: the whole word, then '=' ("set temp = 50",
 * "option reltol=1e-4 temp=50"), not "set temp_dir=..." nor "echo temp". */
static int assigns_ci(const char *line, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = line; *p; p++) {
        const char *q = p + n;
        if (strncasecmp(p, name, n) != 0 || (p > line && (isalnum((unsigned char)p[-1]) || p[-1] == '_')))
            continue;
        while (*q == ' ' || *q == '\t') q++;
        if (*q == '=' && q[1] != '=') return 1;
    }
    return 0;
}

/* A .control command that sets variables or options: set, option, options. */
static int sets_variables(const char *w)
{
    return strcmp(w, "set") == 0 || strncmp(w, "option", 6) == 0;
}

static void mark_reads(ngs_deck *d, const char *fmt, const char *what)
{
    if (d->reads_vectors) return;
    d->reads_vectors = 1;
    snprintf(d->reason, sizeof d->reason, fmt, what);
}

/* One line of the deck or of a file it pulls in; *in_control follows .control blocks. */
static void classify(ngs_deck *d, const char *line, int *in_control)
{
    char w[64];
    first_word(line, w, sizeof w);
    if (w[0] == '\0' || w[0] == '*' || w[0] == '+') {
        return;
    } else if (strcmp(w, ".control") == 0) {
        *in_control = d->has_control = 1;
    } else if (strcmp(w, ".endc") == 0) {
        *in_control = 0;
    } else if (*in_control) {
        if (w[0] == '#') return;
        if (in_list(w, analysis_commands)) d->control_runs = 1;
        if (strcmp(w, "ac") == 0 || strcmp(w, "sp") == 0) d->has_ac = 1;
        if (sets_variables(w) && contains_word_ci(line, "savecurrents"))
            d->saves_currents = 1;
        if (strcmp(w, "setseed") == 0 ||
            (sets_variables(w) &&
             (contains_word_ci(line, "rndseed") || contains_word_ci(line, "seed"))))
            d->sets_seed = 1;
        /* the circuit's temperature: later than a `.temp` card, so it wins over one */
        if ((strcmp(w, "set") == 0 || strcmp(w, "option") == 0 || strcmp(w, "options") == 0) &&
            assigns_ci(line, "temp"))
            d->sets_temp = 1;
        if (!in_list(w, harmless_commands))
            mark_reads(d, "the .control script uses '%s', which needs ngspice's vectors", w);
        else if (sets_variables(w) && contains_word_ci(line, "interp"))
            mark_reads(d, "the .control script sets interp with '%s', which stores interpolated points and "
                          "needs ngspice's vectors", w);
        else if (strstr(line, "$&")) /* echo $&v(out), set x = $&v(out)... */
            mark_reads(d, "the .control script reads a vector value with '%s ... $&'", w);
    } else if (in_list(w, reading_cards)) {
        mark_reads(d, "the netlist has a %s card, which needs ngspice's vectors", w);
    } else if (in_list(w, analysis_cards)) {
        d->has_analysis = 1;
        if (strcmp(w, ".ac") == 0 || strcmp(w, ".sp") == 0) d->has_ac = 1;
    } else if (strncmp(w, ".opt", 4) == 0) { /* one card may set both: .options seed=1 interp */
        if (contains_word_ci(line, "seed")) d->sets_seed = 1;
        if (contains_word_ci(line, "savecurrents")) d->saves_currents = 1;
        if ((strcmp(w, ".option") == 0 || strcmp(w, ".options") == 0 || strcmp(w, ".opt") == 0) &&
            contains_word_ci(line, "interp"))
            mark_reads(d, "%s interp stores interpolated points, which need ngspice's vectors", w);
    }
}

/* After every line is classified: device currents (@r1[i]) have no value in an AC
 * analysis, and ngspice 39 then sends none of its points; run.c reads them from
 * ngspice's vectors, which `.save none` would have emptied. */
static void decide_after_all_lines(ngs_deck *d)
{
    if (d->saves_currents && d->has_ac)
        mark_reads(d, "%s", ".options savecurrents with an AC analysis: ngspice sends none of its points "
                            "(device currents have no value there), which are read from its vectors");
}

static int is_continuation(const char *line)
{
    while (isspace((unsigned char)*line)) line++;
    return *line == '+';
}

/* Lines [a, b) as one card, each '+' that starts a continuation made a blank. */
static char *joined_card(const ngs_deck *d, size_t a, size_t b)
{
    size_t len = 1, o = 0;
    char *t;
    for (size_t i = a; i < b; i++) len += strlen(d->lines[i]) + 1;
    if (!(t = malloc(len))) return NULL;
    for (size_t i = a; i < b; i++) {
        const char *s = d->lines[i];
        size_t n;
        if (i > a) {
            while (isspace((unsigned char)*s)) s++;
            s++; /* the '+' */
            t[o++] = ' ';
        }
        n = strlen(s);
        memcpy(t + o, s, n);
        o += n;
    }
    t[o] = '\0';
    return t;
}

static void analyze(ngs_deck *d)
{
    int in_control = 0;
    d->has_control = d->control_runs = d->reads_vectors = d->has_analysis = 0;
    d->included_random = d->included_noise = d->sets_seed = d->sets_temp = d->saves_currents = d->has_ac = 0;
    d->reason[0] = '\0';
    /* a deck titled *ng_script is a command script: all of it runs as .control */
    d->is_script = d->nlines > 0 && strncasecmp(d->lines[0], "*ng_script", 10) == 0;
    if (d->is_script) {
        in_control = d->has_control = 1;
        mark_reads(d, "%s", "an *ng_script deck is all commands: no `.save none` card can be added");
    }
    for (size_t i = 1; i < d->nlines;) { /* line 0 is the title */
        size_t next = i + 1;
        char *card;
        while (next < d->nlines && is_continuation(d->lines[next])) next++;
        /* a card goes on over its '+' lines (".options reltol=1e-4" / "+ interp"):
         * read whole, as ngspice reads it */
        if (next == i + 1 || !(card = joined_card(d, i, next))) {
            classify(d, d->lines[i], &in_control);
            if (next > i + 1) mark_reads(d, "%s", "out of memory reading a card's continuation lines");
        } else {
            classify(d, card, &in_control);
            free(card);
        }
        i = next;
    }
    decide_after_all_lines(d);
}

static size_t end_card(const ngs_deck *d);

/* A .control block still open at `.end` (or at the end of the deck): ngspice warns,
 * then runs `.end` as a command and fails on it, and anything added before `.end`
 * (a batch's .param overrides) would land in the script. Closing the block there
 * runs it as written. A *ng_script deck is a script throughout and is left alone. */
static int close_open_control(ngs_deck *d)
{
    static const char *const endc[] = {".endc"};
    size_t end = end_card(d), open_at = 0;
    if (d->is_script) return NGS_OK;
    for (size_t i = 1; i < end; i++) {
        char w[16];
        first_word(d->lines[i], w, sizeof w);
        if (strcmp(w, ".control") == 0) open_at = i;
        else if (strcmp(w, ".endc") == 0) open_at = 0;
    }
    if (!open_at) return NGS_OK;
    d->closed_control = open_at + 1;
    return ngs_deck_insert_before_end(d, endc, 1);
}

static int push_line(ngs_deck *d, const char *s, size_t len, size_t *cap)
{
    char *copy;
    if (d->nlines == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        char **nl = realloc(d->lines, nc * sizeof *nl);
        if (!nl) return NGS_ERR_NOMEM;
        d->lines = nl;
        *cap = nc;
    }
    if (len && s[len - 1] == '\r') len--; /* DOS line ends */
    copy = malloc(len + 1);
    if (!copy) return NGS_ERR_NOMEM;
    memcpy(copy, s, len);
    copy[len] = '\0';
    d->lines[d->nlines++] = copy;
    return NGS_OK;
}

int ngs_deck_load_file(ngs_deck *d, const char *path, char *err, size_t errlen)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0, linecap = 0;
    int rc = NGS_OK;
    memset(d, 0, sizeof *d);
    if (!*path) { /* an unset variable, say: ": No such file or directory" said little */
        snprintf(err, errlen, "no netlist: the netlist path is empty");
        return NGS_ERR_ARG;
    }
    if (!(f = fopen(path, "rb"))) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NGS_ERR_IO;
    }
    for (;;) {
        size_t n;
        if (len == cap) {
            char *nb = realloc(buf, cap = cap ? 2 * cap : 65536);
            if (!nb) { rc = NGS_ERR_NOMEM; break; }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
                rc = NGS_ERR_IO;
            }
            break;
        }
    }
    fclose(f);
    if (rc == NGS_OK && len == 0) {
        snprintf(err, errlen, "%s: the netlist is empty", path);
        rc = NGS_ERR_NETLIST;
    }
    if (rc == NGS_OK && memchr(buf, '\0', len)) {
        snprintf(err, errlen, "%s: not a text netlist (contains NUL bytes)", path);
        rc = NGS_ERR_NETLIST;
    }
    for (size_t start = 0; rc == NGS_OK && start < len;) {
        char *nl = memchr(buf + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - buf) : len;
        rc = push_line(d, buf + start, end - start, &linecap);
        start = end + 1;
    }
    free(buf);
    if (rc != NGS_OK) {
        if (rc == NGS_ERR_NOMEM) snprintf(err, errlen, "out of memory reading %s", path);
        ngs_deck_free(d);
        return rc;
    }
    analyze(d);
    if ((rc = close_open_control(d)) != NGS_OK) {
        snprintf(err, errlen, "out of memory reading %s", path);
        ngs_deck_free(d);
    }
    return rc;
}

int ngs_deck_from_lines(ngs_deck *d, const char *const *lines, size_t nlines)
{
    size_t cap = 0;
    memset(d, 0, sizeof *d);
    if (!lines || nlines == 0) return NGS_ERR_ARG;
    for (size_t i = 0; i < nlines; i++) {
        const char *s = lines[i] ? lines[i] : "";
        /* a "line" may itself hold several lines */
        for (;;) {
            const char *nl = strchr(s, '\n');
            size_t n = nl ? (size_t)(nl - s) : strlen(s);
            if (push_line(d, s, n, &cap) != NGS_OK) {
                ngs_deck_free(d);
                return NGS_ERR_NOMEM;
            }
            if (!nl || nl[1] == '\0') break;
            s = nl + 1;
        }
    }
    analyze(d);
    if (close_open_control(d) != NGS_OK) {
        ngs_deck_free(d);
        return NGS_ERR_NOMEM;
    }
    return NGS_OK;
}

void ngs_deck_free(ngs_deck *d)
{
    for (size_t i = 0; i < d->nlines; i++) free(d->lines[i]);
    free(d->lines);
    memset(d, 0, sizeof *d);
}

/* Index of the deck's `.end` card (not .endc/.ends/.endl), or nlines. Cards after
 * .end are ignored by ngspice, and inserting before it keeps line numbers in
 * ngspice's error messages equal to the user's file. */
static size_t end_card(const ngs_deck *d)
{
    for (size_t i = 1; i < d->nlines; i++) {
        char w[16];
        first_word(d->lines[i], w, sizeof w);
        if (strcmp(w, ".end") == 0) return i;
    }
    return d->nlines;
}

int ngs_deck_insert_before_end(ngs_deck *d, const char *const *lines, size_t n)
{
    size_t at = end_card(d), i;
    char **copies, **nl;
    if (n == 0) return NGS_OK;
    copies = calloc(n, sizeof *copies);
    for (i = 0; copies && i < n && (copies[i] = strdup(lines[i])); i++) {}
    if (!copies || i < n || !(nl = realloc(d->lines, (d->nlines + n) * sizeof *nl))) {
        for (size_t j = 0; copies && j < n; j++) free(copies[j]);
        free(copies);
        return NGS_ERR_NOMEM;
    }
    d->lines = nl;
    memmove(nl + at + n, nl + at, (d->nlines - at) * sizeof *nl);
    memcpy(nl + at, copies, n * sizeof *nl);
    d->nlines += n;
    free(copies);
    analyze(d);
    return NGS_OK;
}

/* The lines joined by newlines, `.save none` inserted before line `save_at` (none
 * when save_at > nlines). */
static char *joined(const ngs_deck *d, size_t save_at, size_t *length)
{
    static const char save_card[] = ".save none\n";
    size_t len = 1, o = 0;
    char *t;
    for (size_t i = 0; i < d->nlines; i++) len += strlen(d->lines[i]) + 1;
    if (save_at <= d->nlines) len += sizeof save_card - 1;
    if (!(t = malloc(len))) return NULL;
    for (size_t i = 0; i <= d->nlines; i++) {
        size_t n;
        if (i == save_at) {
            memcpy(t + o, save_card, sizeof save_card - 1);
            o += sizeof save_card - 1;
        }
        if (i == d->nlines) break;
        n = strlen(d->lines[i]);
        memcpy(t + o, d->lines[i], n);
        o += n;
        t[o++] = '\n';
    }
    t[o] = '\0';
    if (length) *length = o;
    return t;
}

/* Overwritten in place, then cut to length: opening with O_TRUNC frees the old
 * blocks, and on a filesystem mounted with `discard` the kernel trims them
 * synchronously, a disk round trip for every job of a batch (it reuses the path). */
int ngs_deck_write(const ngs_deck *d, int save_none, const char *path)
{
    size_t len;
    char *text = joined(d, save_none ? end_card(d) : d->nlines + 1, &len);
    int fd, ok;
    if (!text) return NGS_ERR_NOMEM;
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ok = fd >= 0 && ngs_write_all(fd, text, len) == 0 && ftruncate(fd, (off_t)len) == 0;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    free(text);
    return ok ? NGS_OK : NGS_ERR_IO;
}

char *ngs_deck_text(const ngs_deck *d) { return joined(d, d->nlines + 1, NULL); }

/* SPICE number ("1k", "2.2u", "3meg", "10pF") to double; NAN when the text is not
 * one number (an expression such as "2*1k", "1 k", "inf"). */
static double spice_number(const char *s, double mil)
{
    char *end;
    double v, scale = 1;
    while (*s == ' ' || *s == '\t') s++;
    if (!(isdigit((unsigned char)*s) || *s == '.' || *s == '-' || *s == '+') || /* inf, nan */
        strncasecmp(s + (*s == '-' || *s == '+'), "0x", 2) == 0)                /* hex */
        return NAN;
    v = strtod(s, &end);
    if (end == s) return NAN;
    if (strncasecmp(end, "meg", 3) == 0) scale = 1e6;
    else if (strncasecmp(end, "mil", 3) == 0) scale = mil;
    else if (strncmp(end, "\xC2\xB5", 2) == 0) { /* the micro sign (UTF-8), ngspice's u too */
        scale = 1e-6;
        end += 2;
    }
    else switch (*end | 0x20) {
        case 't': scale = 1e12; break;
        case 'g': scale = 1e9; break;
        case 'k': scale = 1e3; break;
        case 'm': scale = 1e-3; break;
        case 'u': scale = 1e-6; break;
        case 'n': scale = 1e-9; break;
        case 'p': scale = 1e-12; break;
        case 'f': scale = 1e-15; break;
        default: break;
        }
    while (isalpha((unsigned char)*end)) end++; /* the scale and a unit: ohm, Hz, F */
    while (*end == ' ' || *end == '\t') end++;
    return *end ? NAN : v * scale;
}

double ngs_spice_number(const char *s) { return spice_number(s, 25.4e-6); }

/* ngspice's .param reader takes "mil" for milli (2mil = 2e-3), unlike its device
 * lines (2mil = 50.8u): /summary holds what the simulation used */
double ngs_param_number(const char *s) { return spice_number(s, 1e-3); }

int ngs_param_name_ok(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    if (!(isalpha(*p) || *p == '_' || *p >= 0x80)) return 0;
    for (p++; *p; p++)
        if (!(isalnum(*p) || *p == '_' || *p == '[' || *p == ']' || *p >= 0x80)) return 0;
    return 1;
}

/* Whether line has one of words as a whole name. */
static int mentions_any(const char *line, const char *const *words)
{
    char w[16], type[64] = "";
    int type_end = 0;
    while (isspace((unsigned char)*line)) line++;
    if (*line == '*') return 0; /* a comment line, in a netlist or a script */
    first_word(line, w, sizeof w);
    /* ".model name type(...)": the type names no function (an XSPICE `limit` draws nothing) */
    if (strcmp(w, ".model") == 0 && sscanf(line, "%*s %*s %63[^( \t]%n", type, &type_end) != 1) type[0] = '\0';
    for (size_t i = 0; words[i]; i++)
        if (ngs_text_has_name(strcasecmp(type, words[i]) == 0 ? line + type_end : line, words[i])) return 1;
    return 0;
}

static const char *const noise_sources[] = {"trnoise", "trrandom", NULL};
/* ngspice's random functions, and what seeds its generator (the process's) */
static const char *const random_words[] = {"gauss", "agauss", "sgauss", "unif", "aunif", "sunif", "limit",
                                           "rand", "rnd", "poisson", "exponential", "seed", "setseed",
                                           "rndseed", NULL};

int ngs_deck_uses_random(const ngs_deck *d)
{
    if (d->included_noise || d->included_random) return 1;
    for (size_t i = 0; i < d->nlines; i++)
        if (mentions_any(d->lines[i], noise_sources) || mentions_any(d->lines[i], random_words)) return 1;
    return 0;
}

int ngs_deck_draws_while_running(const ngs_deck *d)
{
    if (d->included_noise || (d->has_control && d->included_random)) return 1;
    for (size_t i = 0; i < d->nlines; i++)
        if (mentions_any(d->lines[i], noise_sources) || (d->has_control && mentions_any(d->lines[i], random_words)))
            return 1;
    return 0;
}

typedef struct {
    ngs_deck *deck;
    int in_control, reads_before;
} included_scan;

static void classify_included(void *user, const char *line)
{
    included_scan *sc = user;
    ngs_deck *d = sc->deck;
    classify(d, line, &sc->in_control);
    if (!d->included_noise && mentions_any(line, noise_sources)) d->included_noise = 1;
    if (!d->included_random && mentions_any(line, random_words)) d->included_random = 1;
}

/* Whether a line may pull in another file: .include, .lib, or a `source` command. */
static int may_pull_in(const char *line)
{
    char w[64];
    first_word(line, w, sizeof w);
    return strncmp(w, ".inc", 4) == 0 || strncmp(w, ".lib", 4) == 0 || contains_word_ci(line, "source");
}

int ngs_deck_add_included(ngs_deck *d, const char *base_dir, const char *const *search_dirs)
{
    included_scan sc = {d, 0, d->reads_vectors};
    char err[256], *text;
    size_t i;
    int rc;
    for (i = 1; i < d->nlines && !may_pull_in(d->lines[i]); i++) continue;
    if (i >= d->nlines) return NGS_OK; /* the usual deck: nothing to read */
    if (!(text = ngs_deck_text(d))) return NGS_ERR_NOMEM;
    rc = ngs_netlist_visit_included(text, base_dir, search_dirs, classify_included, &sc, err, sizeof err);
    free(text);
    decide_after_all_lines(d);
    if (!sc.reads_before && d->reads_vectors) { /* say where */
        char reason[sizeof d->reason + 32];
        snprintf(reason, sizeof reason, "in an included file, %s", d->reason);
        memcpy(d->reason, reason, sizeof d->reason - 1); /* cut to fit */
        d->reason[sizeof d->reason - 1] = '\0';
    }
    return rc == NGS_ERR_NOMEM ? rc : NGS_OK;
}
