/*
 * run.c - running one netlist on an engine, into sinks (HDF5 writer, hooks).
 *
 * Sequence: read the deck, decide flat memory (`.save none`) or not, write the
 * prepared deck to the engine's private directory. A deck with a .control block
 * is `bg_source`d (the block runs right there, on ngspice's background thread);
 * any other is `source`d on the caller's thread (that only reads it) and then
 * `bg_run`. While ngspice's thread works the caller only waits, and halts it on
 * interrupt, timeout or a failing sink. Every run ends with the dispatcher
 * drained, so the file is complete when this returns.
 */
#include "plugin/engine_internal.h"
#include "plugin/deck.h"
#include "plugin/runcache.h"
#include "hooks/clock.h"
#include "storage/h5writer.h"

#include <errno.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void ngs_run_options_init(ngs_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->codec = NGS_CODEC_ZSTD;
    o->memory = NGS_MEMORY_AUTO;
    o->swmr = 1;
    o->flush_interval_s = 1.0;
}

/* ---------------------------------------------------------------- sinks -- */

/* What ngspice printed during a run (.meas results, print output, warnings), kept
 * for the run's `log` attribute: the first LOG_HEAD and the last LOG_TAIL bytes, so
 * memory and the file stay bounded when a script prints without end. */
#define LOG_HEAD (16u << 10)
#define LOG_TAIL (32u << 10)

typedef struct {
    char head[LOG_HEAD], tail[LOG_TAIL];
    size_t head_len, tail_len, tail_end; /* tail: a ring, its newest byte before tail_end */
    uint64_t total;
    char last_dropped; /* the byte before the ring's oldest: a '\n' means a whole line starts it */
} run_log;

static void log_put(run_log *l, const char *s, size_t n)
{
    l->total += n;
    if (l->head_len < LOG_HEAD) {
        size_t k = n < LOG_HEAD - l->head_len ? n : LOG_HEAD - l->head_len;
        memcpy(l->head + l->head_len, s, k);
        l->head_len += k;
        s += k;
        n -= k;
    }
    for (; n > 0; s++, n--) { /* only past the head: a few lines per run usually */
        if (l->tail_len == LOG_TAIL) l->last_dropped = l->tail[l->tail_end];
        l->tail[l->tail_end] = *s;
        l->tail_end = (l->tail_end + 1) % LOG_TAIL;
        if (l->tail_len < LOG_TAIL) l->tail_len++;
    }
}

static void log_line(run_log *l, const char *text)
{
    log_put(l, text, strlen(text));
    log_put(l, "\n", 1);
}

/* The kept text, with a line saying how much was left out between head and tail
 * (cut at line ends). */
static char *log_text(const run_log *l)
{
    uint64_t dropped = l->total - l->head_len - l->tail_len;
    size_t head = l->head_len, skip = 0, start = (l->tail_end + LOG_TAIL - l->tail_len) % LOG_TAIL;
    char *out = malloc(l->head_len + l->tail_len + 80), *p = out;
    if (!out) return NULL;
    if (dropped) {
        while (head > 0 && l->head[head - 1] != '\n') head--;
        if (l->last_dropped != '\n') { /* the ring starts within a line: drop its rest */
            while (skip < l->tail_len && l->tail[(start + skip) % LOG_TAIL] != '\n') skip++;
            if (skip < l->tail_len) skip++;
        }
        dropped += (l->head_len - head) + skip;
    }
    memcpy(p, l->head, head);
    p += head;
    if (dropped) p += sprintf(p, "[... %llu bytes of ngspice output left out ...]\n", (unsigned long long)dropped);
    for (size_t i = skip; i < l->tail_len; i++) *p++ = l->tail[(start + i) % LOG_TAIL];
    *p = '\0';
    return out;
}

typedef struct {
    ngs_h5_writer *writer;
    pthread_mutex_t lock; /* the dispatcher's idle ticks vs. the run's own calls */
    int failed;
    char error[512];
    run_log *log;
} writer_sink;

static int writer_fail(writer_sink *s, int rc)
{
    if (!s->failed) {
        s->failed = rc;
        snprintf(s->error, sizeof s->error, "%s", ngs_h5_error(s->writer));
    }
    return rc;
}

static int writer_on_event(const ngs_event *ev, void *user)
{
    writer_sink *s = user;
    int rc = NGS_OK;
    pthread_mutex_lock(&s->lock);
    if (!s->failed) {
        switch (ev->kind) {
        case NGS_EV_PLOT_BEGIN: rc = ngs_h5_plot_begin(s->writer, ev->plot); break;
        case NGS_EV_ROWS: /* a busy run is never idle: check the flush interval here too */
            rc = ngs_h5_rows(s->writer, ev->rows, ev->nrows);
            if (rc == NGS_OK) rc = ngs_h5_tick(s->writer);
            break;
        case NGS_EV_PLOT_END: rc = ngs_h5_plot_end(s->writer, ev->status, ev->text); break;
        case NGS_EV_MESSAGE: if (s->log) log_line(s->log, ev->text); break;
        default: break;
        }
        if (rc != NGS_OK) writer_fail(s, rc);
    }
    rc = s->failed;
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void writer_on_idle(void *user)
{
    writer_sink *s = user;
    pthread_mutex_lock(&s->lock);
    if (!s->failed) {
        int rc = ngs_h5_tick(s->writer);
        if (rc != NGS_OK) writer_fail(s, rc);
    }
    pthread_mutex_unlock(&s->lock);
}

static int stream_on_event(const ngs_event *ev, void *user)
{
    FILE *f = user;
    if (ev->kind == NGS_EV_MESSAGE) {
        fputs(ev->text, f);
        fputc('\n', f);
    }
    return 0;
}

/* ---------------------------------------------------------------- helpers -- */

static void sha256_hex(const char *text, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = '\0';
}

/* Splits "v(out) i(vdd)" into words; returns a NULL-terminated array. */
static char **split_words(const char *s, size_t *n)
{
    char *copy = strdup(s), *tok, *save = NULL;
    char **words = NULL;
    size_t cnt = 0;
    if (!copy) return NULL;
    for (tok = strtok_r(copy, " \t,", &save); tok; tok = strtok_r(NULL, " \t,", &save)) {
        char **nw = realloc(words, (cnt + 2) * sizeof *nw);
        if (!nw) break;
        words = nw;
        words[cnt++] = strdup(tok);
    }
    if (words) words[cnt] = NULL;
    free(copy);
    *n = cnt;
    return words;
}

static void free_words(char **w)
{
    for (size_t i = 0; w && w[i]; i++) free(w[i]);
    free(w);
}

/* Composes the error text of a failed run from ngspice's own lines. */
static void describe_failure(ngs_engine *e, int status, const char *fallback)
{
    pthread_mutex_lock(&e->msg_lock);
    if (e->errors[0])
        ngs_engine_set_error(e, "%s:\n%s", fallback, e->errors);
    else
        ngs_engine_set_error(e, "%s", fallback);
    pthread_mutex_unlock(&e->msg_lock);
    (void)status;
}

/* Sends a command to the background thread and waits for it to finish. Halts it on
 * interrupt, timeout or a failing sink. Returns NGS_OK or the reason it stopped. */
#define HALT_GRACE_S 2.0 /* after bg_halt, before a thread that goes on is abandoned */

static int run_in_background(ngs_engine *e, const char *cmd, double deadline)
{
    int halted = 0, rc = NGS_OK;
    double halted_at = 0;
    if (atomic_load(&e->interrupted)) return NGS_ERR_INTERRUPTED; /* before anything began */
    ngs_engine_wait_thread_exit(e); /* ngspice refuses a command while one still runs */
    pthread_mutex_lock(&e->lock);
    e->bg_finished = 0;
    e->bg_thread = 0;
    pthread_mutex_unlock(&e->lock);
    if (ngs_engine_command(e, cmd) != 0 && !e->exited) {
        ngs_engine_set_error(e, "ngspice refused '%s'", cmd);
        return NGS_ERR_STATE;
    }
    while (!ngs_engine_wait_bg(e, 50)) {
        int why = NGS_OK;
        if (atomic_load(&e->interrupted)) why = NGS_ERR_INTERRUPTED;
        else if (deadline > 0 && ngs_now_s() > deadline) why = NGS_ERR_TIMEOUT;
        else if (atomic_load(&e->stop_requested)) why = NGS_ERR_INTERRUPTED;
        else if (ngs_dispatch_error(e->dispatch) != NGS_OK) why = ngs_dispatch_error(e->dispatch);
        if (why != NGS_OK && !halted) {
            atomic_store(&e->stop_requested, 1);
            /* bg_halt waits for the thread; the state it leaves is not reusable */
            ngs_engine_halt(e);
            e->needs_reload = 1;
            halted = 1;
            halted_at = ngs_now_s();
            rc = why;
        } else if (halted && ngs_now_s() - halted_at > HALT_GRACE_S) {
            /* ngspice's halt only reaches analyses: a .control loop runs on */
            ngs_engine_abandon_copy(e);
            return rc;
        }
    }
    /* The thread reports its end before its last callbacks (after `quit`, ngspice
     * calls ControlledExit only then): once it is gone, everything it said is in. */
    ngs_engine_wait_thread_exit(e);
    /* a stop that came between two polls: the plots it cut short say so, and so must the run */
    if (rc == NGS_OK && atomic_load(&e->stop_requested))
        rc = atomic_load(&e->interrupted) || ngs_dispatch_error(e->dispatch) == NGS_OK
                 ? NGS_ERR_INTERRUPTED : ngs_dispatch_error(e->dispatch);
    return rc;
}

/* ngspice seeds its generator through libc's srand() and rand(), whose state the
 * whole process shares: two instances seeding at once would take each other's
 * numbers, and a Monte Carlo job would not be reproducible. Reading a netlist (where
 * .param agauss() and the like are drawn, included files too) is serialised across
 * engines; so is an analysis whose sources draw while it runs, or a .control script
 * that may draw. */
static pthread_mutex_t seed_lock = PTHREAD_MUTEX_INITIALIZER;

/* The threads of abandoned copies whose decks use randomness: while one runs on, it
 * may move the process's generator, so no later run that draws could be reproduced.
 * Under seed_lock; when more run on than the list holds, the generator stays lost. */
#define MAX_DRAWING_RUNAWAYS 64
static pid_t drawing_runaways[MAX_DRAWING_RUNAWAYS];
static int n_drawing_runaways, drawing_runaways_overflow;

/* Under seed_lock: whether a thread of the list still runs (the ended ones go). */
static int generator_in_use(void)
{
    int k = 0;
    for (int i = 0; i < n_drawing_runaways; i++)
        if (ngs_engine_thread_exists(drawing_runaways[i])) drawing_runaways[k++] = drawing_runaways[i];
    n_drawing_runaways = k;
    return k > 0 || drawing_runaways_overflow;
}

/* Takes seed_lock for a phase of deck's run; the time spent waiting for another job
 * is not this run's: *deadline (0: none) moves by as much. Returns 0, without the
 * lock and with the engine's error set, when the deck uses randomness and the
 * generator is lost (checked under the lock: a job that was waiting for it while
 * another was abandoned sees that too). */
static int lock_seed(ngs_engine *e, const ngs_deck *deck, double *deadline)
{
    double t = ngs_now_s();
    pthread_mutex_lock(&seed_lock);
    if (*deadline > 0) *deadline += ngs_now_s() - t;
    if (ngs_deck_uses_random(deck) && generator_in_use()) {
        pthread_mutex_unlock(&seed_lock);
        ngs_engine_set_error(e, "not run: an instance abandoned earlier (a .control loop that ignored the halt) "
                                "may still draw from the process's random generator, so this run's random "
                                "values could not be reproduced; run it again in a new process");
        return 0;
    }
    return 1;
}

/* Names --save gave that no plot of the run had (a typo keeps only the scale). */
static void note_unmatched_save(const ngs_engine *e, char *note, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < e->nsave && len + 1 < n; i++) {
        if (e->save_seen[i]) continue;
        len += (size_t)snprintf(note + len, n - len, "%s%s", len ? ", " : "--save: no vector named ", e->save_names[i]);
    }
    if (len && len + 1 < n) snprintf(note + len, n - len, " in any plot (only what matched, and the scale, kept)");
}

/* Ends a phase of deck's run that held seed_lock (held) or not: an abandoned copy
 * whose deck uses randomness, and whose thread runs on, holds the generator until
 * that thread ends. */
static void end_seed_phase(ngs_engine *e, const ngs_deck *deck, int held)
{
    if (e->runaway && e->runaway_thread > 0 && ngs_deck_uses_random(deck)) {
        if (!held) pthread_mutex_lock(&seed_lock);
        if (n_drawing_runaways < MAX_DRAWING_RUNAWAYS) drawing_runaways[n_drawing_runaways++] = e->runaway_thread;
        else drawing_runaways_overflow = 1;
        if (!held) pthread_mutex_unlock(&seed_lock);
    }
    if (held) pthread_mutex_unlock(&seed_lock);
}

/* A replayed run has no SendInitData: its plots, kept by the same --save (it is in
 * the key), tell which names matched, so a hit warns as the first run did. */
static int mark_saved_on_replay(const ngs_event *ev, void *user)
{
    for (int i = 0; i < ev->plot->nvectors; i++)
        ngs_engine_save_matches(user, ev->plot->vectors[i].name, ev->plot->vectors[i].ngspice_name);
    return 0;
}

/* A user's hook says only "go on" (0) or "stop": its numbers are not our error codes. */
static int call_user_hook(const ngs_event *ev, void *user)
{
    const user_hook *h = user;
    return h->fn(ev, h->user) != 0 ? NGS_ERR_INTERRUPTED : 0;
}

static void build_sinks(ngs_engine *e, writer_sink *ws, ngs_sink *sinks, size_t *n)
{
    size_t k = 0;
    if (ws) {
        sinks[k].mask = NGS_EV_PLOT_BEGIN | NGS_EV_ROWS | NGS_EV_PLOT_END | NGS_EV_MESSAGE;
        sinks[k].on_event = writer_on_event;
        sinks[k].on_idle = writer_on_idle;
        sinks[k].user = ws;
        k++;
    }
    if (e->config.message_stream) {
        sinks[k].mask = NGS_EV_MESSAGE;
        sinks[k].on_event = stream_on_event;
        sinks[k].on_idle = NULL;
        sinks[k].user = e->config.message_stream;
        k++;
    }
    for (size_t i = 0; i < e->nhooks; i++, k++) {
        sinks[k].mask = e->hooks[i].mask;
        sinks[k].on_event = call_user_hook;
        sinks[k].on_idle = NULL;
        sinks[k].user = &e->hooks[i];
    }
    *n = k;
}

static void writer_options(const ngs_run_options *o, ngs_h5_options *ho)
{
    ngs_h5_options_init(ho);
    ho->codec = o->codec;
    ho->level = o->level;
    ho->swmr = o->swmr;
    ho->append = o->append;
    ho->chunk_points = o->chunk_points;
    ho->flush_interval_s = o->flush_interval_s;
    ho->encoder_threads = o->encoder_threads;
    ho->lossy = o->lossy;
}

int ngs_run_options_check(const ngs_run_options *o, char *err, size_t errlen)
{
    ngs_h5_options ho;
    if (o->memory != NGS_MEMORY_AUTO && o->memory != NGS_MEMORY_FLAT && o->memory != NGS_MEMORY_KEEP) {
        snprintf(err, errlen, "unknown memory mode %d (auto, flat or keep)", (int)o->memory);
        return NGS_ERR_ARG;
    }
    if (!(o->timeout_s >= 0)) { /* NaN too */
        snprintf(err, errlen, "timeout_s must be 0 (none) or a positive number of seconds");
        return NGS_ERR_ARG;
    }
    if (o->output_path && !*o->output_path) { /* HDF5 said only ": cannot create the HDF5 file" */
        snprintf(err, errlen, "the output path is empty");
        return NGS_ERR_ARG;
    }
    writer_options(o, &ho); /* even with no output: a wrong value is a caller's mistake to hear of */
    return ngs_h5_options_check(&ho, err, errlen);
}

static int open_output(ngs_engine *e, const ngs_run_options *o, const ngs_run_into *into,
                       writer_sink *ws)
{
    ngs_h5_options ho;
    char err[512] = "";
    int rc;
    writer_options(o, &ho);
    if (into) {
        ho.shared_file = into->file;
        ho.shared_lock = into->file_lock;
    }
    rc = ngs_h5_open(&ws->writer, o->output_path, &ho, err, sizeof err);
    if (rc != NGS_OK) {
        ngs_engine_set_error(e, "%s", err);
        return rc;
    }
    ngs_h5_hold(ws->writer);
    rc = ngs_h5_run_begin(ws->writer, o->group);
    for (size_t i = 0; rc == NGS_OK && into && i < into->nattrs; i++)
        rc = ngs_h5_run_attr_str(ws->writer, into->attr_keys[i], into->attr_values[i]);
    ngs_h5_release(ws->writer);
    if (rc != NGS_OK) ngs_engine_set_error(e, "%s", ngs_h5_error(ws->writer));
    return rc;
}

static void write_run_attributes(ngs_engine *e, writer_sink *ws, const ngs_deck *deck,
                                 const char *source, const ngs_run_options *o,
                                 int flat, const char *reason)
{
    char *text = ngs_deck_text(deck);
    char hash[65];
    if (!text) return;
    sha256_hex(text, hash);
    ngs_h5_hold(ws->writer);
    ngs_h5_run_attr_str(ws->writer, "netlist", text);
    ngs_h5_run_attr_str(ws->writer, "netlist_sha256", hash);
    ngs_h5_run_attr_str(ws->writer, "netlist_path", source ? source : "");
    ngs_h5_run_attr_str(ws->writer, "title", deck->nlines ? deck->lines[0] : "");
    ngs_h5_run_attr_str(ws->writer, "ngspice_version", e->version);
    ngs_h5_run_attr_str(ws->writer, "memory_mode", flat ? "flat" : "keep");
    ngs_h5_run_attr_str(ws->writer, "memory_reason", reason);
    ngs_h5_run_attr_str(ws->writer, "save", o->save ? o->save : "");
    ngs_h5_release(ws->writer);
    free(text);
}

/* ------------------------------------------------------------------ run -- */

/* A run that cannot start: result (if any) says so like a run's would. */
static int refuse_run(ngs_run_result *result, int rc)
{
    if (result) {
        memset(result, 0, sizeof *result);
        result->status = rc;
    }
    return rc;
}

/* The netlist's directory as ngspice's command line can take it. Its lexer expands
 * $, splits at ; and ! and `, eats \ and cannot quote a ' and a " together, even
 * inside quotes, and cuts a line at 1024 bytes (a directory of about 980 lost the
 * end of the command, and its includes were not found): such a directory is
 * reached through a link in the engine's private directory, whose path has none
 * of that. Anything else is used as it is. */
#define NGSPICE_LINE_MAX 1024

static const char *sourcepath_dir(ngs_engine *e, const char *dir, char *link, size_t n)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,=:@%~ '\"";
    if (dir[strspn(dir, plain)] == '\0' && !(strchr(dir, '\'') && strchr(dir, '"')) &&
        strlen(dir) < NGSPICE_LINE_MAX - 64 /* the rest of the set command */)
        return dir;
    snprintf(link, n, "%s/netlist-dir", e->work_dir);
    unlink(link); /* the previous run's */
    return symlink(dir, link) == 0 ? link : dir;
}

static int run_deck(ngs_engine *e, ngs_deck *deck, const char *base_dir, const char *source,
                    const ngs_run_options *opts, const ngs_run_into *into, ngs_run_result *result)
{
    ngs_run_options o;
    ngs_run_result res;
    writer_sink ws;
    ngs_sink *sinks = NULL;
    size_t nsinks = 0;
    char **save_words = NULL;
    ngs_run_cache *cache = NULL;
    int cache_hit = 0;
    char deck_path[4096], cmd[4200];
    double t0 = ngs_now_s(), deadline;
    int flat, draws, source_draws, rc = NGS_OK, bg_rc = NGS_OK, wrc;

    if (opts) o = *opts; else ngs_run_options_init(&o);
    { /* before anything runs: a bad option would fail only once ngspice had finished */
        char why[384];
        if ((rc = ngs_run_options_check(&o, why, sizeof why)) != NGS_OK) {
            ngs_engine_set_error(e, "%s", why);
            return refuse_run(result, rc);
        }
    }
    if (atomic_load(&e->interrupted)) { /* a cache hit would not look at it later */
        ngs_engine_set_error(e, "interrupted before the run began");
        return refuse_run(result, NGS_ERR_INTERRUPTED);
    }
    memset(&res, 0, sizeof res);
    memset(&ws, 0, sizeof ws);
    pthread_mutex_init(&ws.lock, NULL);

    { /* a .control block or .meas card in an included file counts as the deck's own */
        if ((rc = ngs_deck_add_included(deck, base_dir, ngs_engine_search_dirs(e))) != NGS_OK) goto done;
    }
    /* flat memory: decided per run, and the reason is kept */
    if (o.memory == NGS_MEMORY_FLAT) {
        flat = 1;
        snprintf(res.memory_reason, sizeof res.memory_reason, "flat memory requested (.save none)");
    } else if (o.memory == NGS_MEMORY_KEEP) {
        flat = 0;
        snprintf(res.memory_reason, sizeof res.memory_reason, "vectors kept as requested");
    } else if (deck->reads_vectors) {
        flat = 0;
        snprintf(res.memory_reason, sizeof res.memory_reason, "vectors kept: %s", deck->reason);
    } else {
        flat = 1;
        snprintf(res.memory_reason, sizeof res.memory_reason,
                 "flat memory: nothing reads ngspice's vectors, so `.save none` was added");
    }
    res.memory_flat = flat;

    /* a copy that exited, was halted, or has `.save none` stuck on is replaced */
    /* ...and so is a used one for a deck that draws random numbers while it runs:
     * ngspice's gaussian generator keeps a spare value between draws, which a fresh
     * process (ngspice -b, the same job run alone) does not have */
    if (!e->handle || e->needs_reload || (!flat && e->save_none_sticky) ||
        (e->copy_used && ngs_deck_draws_while_running(deck))) {
        if ((rc = ngs_engine_load_copy(e)) != NGS_OK) goto done;
    }
    /* only now: a replaced copy may have printed its last lines until it was gone */
    ngs_engine_reset_run_state(e);
    if (flat) e->save_none_sticky = 1;
    e->copy_used = 1;
    e->dedupe_by_index = !flat;

    if (o.save && *o.save) {
        save_words = split_words(o.save, &e->nsave);
        e->save_names = (const char *const *)save_words;
        e->save_seen = calloc(e->nsave ? e->nsave : 1, 1);
    } else {
        e->save_names = NULL;
        e->nsave = 0;
    }

    /* the cache is consulted before ngspice runs anything, and before the output is
     * touched: a wrong spec fails the run with any existing file intact */
    if (o.cache) {
        rc = ngs_run_cache_begin(&cache, e, o.cache, deck, source, base_dir, &o, flat, &cache_hit,
                                 res.cache_note, sizeof res.cache_note);
        if (rc != NGS_OK) {
            ngs_engine_set_error(e, "%s", res.cache_note);
            goto done;
        }
    }
    sinks = calloc(e->nhooks + 3, sizeof *sinks);
    if (!sinks) { rc = NGS_ERR_NOMEM; goto done; }
    if (o.output_path) {
        if ((rc = open_output(e, &o, into, &ws)) != NGS_OK) goto done;
        write_run_attributes(e, &ws, deck, source, &o, flat, res.memory_reason);
        if ((ws.log = malloc(sizeof *ws.log))) { /* its buffers need no zeroing */
            ws.log->head_len = ws.log->tail_len = ws.log->tail_end = ws.log->total = 0;
            ws.log->last_dropped = '\0';
        }
    }
    build_sinks(e, o.output_path ? &ws : NULL, sinks, &nsinks);

    if (cache) {
        if (cache_hit) {
            int nplots = 0;
            uint64_t points = 0;
            if (e->save_seen) /* the slot the cache's recorder takes on a miss */
                sinks[nsinks++] = (ngs_sink){NGS_EV_PLOT_BEGIN, mark_saved_on_replay, NULL, e};
            rc = ngs_run_cache_replay(cache, sinks, nsinks, &nplots, &points, res.cache_note,
                                      sizeof res.cache_note);
            e->plots_in_run = nplots;
            e->run_points = points;
            if (rc == NGS_OK || nplots > 0) {
                res.cache_hit = rc == NGS_OK;
                if (rc == NGS_ERR_INTERRUPTED) { /* a sink said stop, as in a live run */
                    if (ws.failed) rc = ws.failed;
                    ngs_engine_set_error(e, "%s", ws.failed ? ws.error : "a hook stopped the run");
                } else if (rc != NGS_OK) {
                    ngs_engine_set_error(e, "replaying the cache entry failed");
                }
                goto done;
            }
            rc = NGS_OK; /* the entry was refused before any event: simulate */
        }
        if (ngs_run_cache_sink(cache, &sinks[nsinks]) == NGS_OK) nsinks++;
    }
    if ((rc = ngs_dispatch_set_sinks(e->dispatch, sinks, nsinks)) != NGS_OK) goto done;
    ngs_dispatch_reset_error(e->dispatch);

    snprintf(deck_path, sizeof deck_path, "%s/deck.cir", e->work_dir);
    if (ngs_deck_write(deck, flat, deck_path) != NGS_OK) {
        ngs_engine_set_error(e, "cannot write %s: %s", deck_path, strerror(errno));
        rc = NGS_ERR_IO;
        goto done;
    }
    /* relative .include/.lib paths resolve against the netlist's directory first,
     * then where ngspice's own sourcepath says (engine.c) */
    { /* quoted: directories may contain spaces */
        char link[4096];
        const char *dir = sourcepath_dir(e, base_dir && *base_dir ? base_dir : ".", link, sizeof link);
        char q = strchr(dir, '"') ? '\'' : '"';
        snprintf(cmd, sizeof cmd, "set sourcepath = ( %c%s%c $ngscale_sourcepath )", q, dir, q);
    }
    ngs_engine_command(e, cmd);

    deadline = o.timeout_s > 0 ? t0 + o.timeout_s : 0;
    draws = ngs_deck_draws_while_running(deck);
    /* netlists draw .param values as read; every deck that uses randomness locks here */
    source_draws = !deck->has_control || draws;
    if (source_draws && !lock_seed(e, deck, &deadline)) {
        rc = NGS_ERR_STATE;
        goto done;
    }
    if (deck->has_control) {
        snprintf(cmd, sizeof cmd, "bg_source %s", deck_path);
        bg_rc = run_in_background(e, cmd, deadline);
    } else {
        /* only reads the netlist: done on this thread, which saves a job the start
         * of a thread and two hand-overs */
        snprintf(cmd, sizeof cmd, "source %s", deck_path);
        ngs_engine_wait_thread_exit(e);
        if (ngs_engine_command(e, cmd) != 0 && !e->exited) {
            ngs_engine_set_error(e, "ngspice refused '%s'", cmd);
            bg_rc = NGS_ERR_STATE;
        }
    }
    end_seed_phase(e, deck, source_draws);
    /* a .control block that only sets up (pre_osdi in a model library, options)
     * leaves the analysis cards to run, as `ngspice -b -r` runs them */
    if (bg_rc == NGS_OK && !e->exited && (!deck->has_control || (!deck->control_runs && deck->has_analysis))) {
        pthread_mutex_lock(&e->msg_lock);
        int load_errors = e->nerror_lines;
        pthread_mutex_unlock(&e->msg_lock);
        if (load_errors) {
            rc = NGS_ERR_NETLIST;
            describe_failure(e, rc, "ngspice rejected the netlist");
        } else if (draws && !lock_seed(e, deck, &deadline)) {
            rc = NGS_ERR_STATE;
        } else {
            bg_rc = run_in_background(e, "bg_run", deadline);
            end_seed_phase(e, deck, draws);
        }
    }
    /* deck.cir stays (the next run overwrites it, the engine removes it): creating a
     * file per run cost a tiny batch job more than its simulation */
    ngs_engine_close_plot(e);
    wrc = ngs_dispatch_drain(e->dispatch);

    if (rc == NGS_OK && bg_rc != NGS_OK) {
        rc = bg_rc;
        if (rc == NGS_ERR_TIMEOUT)
            ngs_engine_set_error(e, "the run went past its time limit of %g s", o.timeout_s);
        else if (rc == NGS_ERR_INTERRUPTED && !e->last_error[0])
            ngs_engine_set_error(e, "the run was interrupted");
        else if (ws.failed)
            ngs_engine_set_error(e, "%s", ws.error);
        if (e->runaway) {
            size_t len = strlen(e->last_error);
            snprintf(e->last_error + len, sizeof e->last_error - len,
                     "; ngspice did not stop within %g s of the halt (a .control loop?): its instance "
                     "was abandoned, %s", HALT_GRACE_S,
                     !e->runaway_thread ? "and its thread ended"
                                        : "and its thread, which ends at its next callback to ngscale, had "
                                          "not yet (a loop that never calls back keeps a core and its memory "
                                          "until this process ends)");
        }
    }
    if (rc == NGS_OK && wrc != NGS_OK) {
        rc = wrc;
        ngs_engine_set_error(e, "%s", ws.failed ? ws.error : "a hook stopped the run");
    }
    if (rc == NGS_OK && e->exited && (e->exit_status != 0 || !e->exit_quit)) {
        char why[96];
        if (e->exit_quit) /* `quit N` in the script: its author's verdict on the run */
            snprintf(why, sizeof why, "the .control script quit with status %d", e->exit_status);
        else
            snprintf(why, sizeof why, "ngspice exited (status %d)", e->exit_status);
        rc = NGS_ERR_EXIT;
        describe_failure(e, rc, why);
    }
    if (rc == NGS_OK && e->plots_in_run == 0 && e->nerror_lines) {
        rc = NGS_ERR_NETLIST;
        describe_failure(e, rc, "ngspice rejected the netlist");
    }
    if (rc == NGS_OK && e->nerror_lines) {
        /* a plot ran into trouble (e.g. timestep too small) */
        pthread_mutex_lock(&e->msg_lock);
        int sim_errors = strstr(e->errors, "aborted") || strstr(e->errors, "too small") ||
                         strstr(e->errors, "rror");
        pthread_mutex_unlock(&e->msg_lock);
        if (sim_errors) {
            rc = NGS_ERR_SIMULATION;
            describe_failure(e, rc, "the simulation failed");
        }
    }
    /* ngspice keeps circuits and plots: drop them so repeated runs stay flat */
    if (e->handle && !e->exited && !e->needs_reload) {
        ngs_engine_quiet_command(e, "destroy all");
        ngs_engine_quiet_command(e, "remcirc");
    }
    if (e->exited) e->needs_reload = 1;

done:
    res.nplots = e->plots_in_run;
    res.points = e->run_points;
    /* detach (and drain) the sinks before the writer goes away */
    ngs_dispatch_set_sinks(e->dispatch, NULL, 0);
    if (cache) {
        char key[65];
        snprintf(key, sizeof key, "%s", ngs_run_cache_key(cache));
        ngs_run_cache_end(cache, res.cache_hit ? NGS_ERR_STATE /* nothing to store */ : rc,
                          ngs_now_s() - t0, res.cache_note, sizeof res.cache_note);
        if (ws.writer) {
            ngs_h5_hold(ws.writer);
            ngs_h5_run_attr_str(ws.writer, "cache", res.cache_note);
            ngs_h5_run_attr_str(ws.writer, "cache_key", key);
            ngs_h5_run_attr_i64(ws.writer, "cache_hit", res.cache_hit);
            ngs_h5_release(ws.writer);
        }
    } else if (ws.writer && o.cache) {
        ngs_h5_run_attr_str(ws.writer, "cache", res.cache_note);
    }
    if (rc == NGS_OK && res.nplots == 0)
        snprintf(res.warning, sizeof res.warning,
                 "no analysis ran (no .tran/.ac/.dc/.op/... card, or a .control block without one)");
    if (e->save_seen && res.nplots > 0)
        note_unmatched_save(e, res.warning, sizeof res.warning);
    if (deck->closed_control) {
        size_t len = strlen(res.warning);
        snprintf(res.warning + len, sizeof res.warning - len,
                 "%sline %zu: .control has no .endc; ngscale closed it before .end", len ? "; " : "",
                 deck->closed_control);
    }
    if (ws.writer) {
        int crc;
        pthread_mutex_lock(&ws.lock);
        ngs_h5_hold(ws.writer);
        ngs_h5_run_attr_str(ws.writer, "memory_reason", res.memory_reason);
        if (res.warning[0]) ngs_h5_run_attr_str(ws.writer, "warning", res.warning);
        if (ws.log) {
            char *text = log_text(ws.log);
            if (text) ngs_h5_run_attr_str(ws.writer, "log", text);
            free(text);
        }
        ngs_h5_run_attr_f64(ws.writer, "wall_s", ngs_now_s() - t0);
        ngs_h5_run_attr_i64(ws.writer, "points", (int64_t)res.points);
        crc = ngs_h5_run_end(ws.writer, rc, rc == NGS_OK ? NULL : e->last_error);
        /* closing in the same hold (it ends it): one turn on a shared file */
        if (crc == NGS_OK) crc = ngs_h5_close(ws.writer);
        else ngs_h5_close(ws.writer);
        ws.writer = NULL;
        pthread_mutex_unlock(&ws.lock);
        if (rc == NGS_OK && crc != NGS_OK) {
            rc = crc;
            ngs_engine_set_error(e, "cannot finish %s", o.output_path);
        }
    }
    free(e->save_seen);
    e->save_seen = NULL;
    e->save_names = NULL;
    e->nsave = 0;
    free_words(save_words);
    free(sinks);
    free(ws.log);
    pthread_mutex_destroy(&ws.lock);
    atomic_store(&e->interrupted, 0); /* it was for this run */
    res.status = rc;
    res.wall_s = ngs_now_s() - t0;
    if (result) *result = res;
    return rc;
}

/* The end of a run that claimed the engine, however it ended: a pending interrupt
 * was for this run, refused or not. */
static void release_engine(ngs_engine *e)
{
    atomic_store(&e->interrupted, 0);
    atomic_store(&e->in_run, 0);
}

/* A missing argument: the engine's error says which, as for any refusal (it said
 * the last run's error before), unless a run is under way on it, whose error stays. */
static int refuse_argument(ngs_engine *e, ngs_run_result *result, const char *why)
{
    if (ngs_engine_claim(e)) {
        ngs_engine_set_error(e, "%s", why);
        release_engine(e);
    }
    return refuse_run(result, NGS_ERR_ARG);
}

int ngs_run_file(ngs_engine *e, const char *path, const ngs_run_options *o, ngs_run_result *result)
{
    ngs_deck deck;
    char err[512];
    char *abs, *dir;
    int rc;
    if (!e) return refuse_run(result, NGS_ERR_ARG);
    if (!path) return refuse_argument(e, result, "no netlist: netlist_path is NULL");
    if (!e->dispatch || !e->lib_source) return refuse_run(result, NGS_ERR_STATE);
    if (!ngs_engine_claim(e)) return refuse_run(result, NGS_ERR_STATE);
    rc = ngs_deck_load_file(&deck, path, err, sizeof err);
    if (rc != NGS_OK) {
        ngs_engine_set_error(e, "%s", err);
        release_engine(e);
        return refuse_run(result, rc);
    }
    abs = realpath(path, NULL);
    dir = abs ? strdup(abs) : NULL;
    rc = run_deck(e, &deck, dir ? dirname(dir) : ".", abs ? abs : path, o, NULL, result);
    free(dir);
    free(abs);
    ngs_deck_free(&deck);
    release_engine(e);
    return rc;
}

int ngs_run_lines(ngs_engine *e, const char *const *lines, size_t n, const char *base_dir,
                  const ngs_run_options *o, ngs_run_result *result)
{
    return ngs_run_lines_into(e, lines, n, base_dir, o, NULL, result);
}

int ngs_run_lines_into(ngs_engine *e, const char *const *lines, size_t n, const char *base_dir,
                       const ngs_run_options *o, const ngs_run_into *into, ngs_run_result *result)
{
    ngs_deck deck;
    char cwd[4096];
    int rc;
    if (!e) return refuse_run(result, NGS_ERR_ARG);
    if (!lines || n == 0) return refuse_argument(e, result, !lines ? "no netlist: lines is NULL" : "no netlist: nlines is 0");
    if (!e->dispatch || !e->lib_source) return refuse_run(result, NGS_ERR_STATE);
    if (!ngs_engine_claim(e)) return refuse_run(result, NGS_ERR_STATE);
    if ((rc = ngs_deck_from_lines(&deck, lines, n)) != NGS_OK) {
        release_engine(e);
        return refuse_run(result, rc);
    }
    if (!base_dir) base_dir = getcwd(cwd, sizeof cwd) ? cwd : ".";
    rc = run_deck(e, &deck, base_dir, into ? into->netlist_path : NULL, o, into, result);
    ngs_deck_free(&deck);
    release_engine(e);
    return rc;
}
