/*
 * engine.c - one private ngspice instance and its callbacks.
 *
 * All of ngspice's state is global, so every engine loads its own copy of
 * libngspice: the .so is copied to a unique path and dlopen'ed RTLD_LOCAL (two
 * engines on one handle would share, and abort). The copy is unlinked as soon as
 * it is mapped. After ngspice exits (quit, fatal error) or is halted mid-run the
 * copy is unusable, and the next run loads a fresh one.
 *
 * The callbacks run on ngspice's threads. SendData is the hot path: it copies one
 * row into the dispatcher's ring and returns; everything else happens elsewhere.
 */
#include "plugin/engine_internal.h"
#include "hooks/clock.h"
#include "codemodels/codemodels.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

const char *ngs_version(void) { return NGSCALE_VERSION; }

const char *ngs_strerror(int status)
{
    switch (status) {
    case NGS_OK: return "success";
    case NGS_ERR_NOMEM: return "out of memory";
    case NGS_ERR_ARG: return "invalid argument";
    case NGS_ERR_IO: return "I/O error";
    case NGS_ERR_LIBNGSPICE: return "libngspice could not be loaded";
    case NGS_ERR_NETLIST: return "ngspice rejected the netlist";
    case NGS_ERR_SIMULATION: return "the simulation failed";
    case NGS_ERR_EXIT: return "ngspice exited";
    case NGS_ERR_HDF5: return "HDF5 error";
    case NGS_ERR_TIMEOUT: return "timed out";
    case NGS_ERR_INTERRUPTED: return "interrupted";
    case NGS_ERR_FORMAT: return "corrupt or unsupported file";
    case NGS_ERR_STATE: return "operation not allowed now";
    case NGS_ERR_CODEC: return "compression error";
    default: return "unknown error";
    }
}

void ngs_engine_set_error(ngs_engine *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->last_error, sizeof e->last_error, fmt, ap);
    va_end(ap);
}

const char *ngs_engine_last_error(const ngs_engine *e) { return e ? e->last_error : ""; }

const char *ngs_engine_ngspice_version(const ngs_engine *e) { return e ? e->version : ""; }

/* ------------------------------------------------------------- callbacks -- */

/* Each loaded copy gets its own callback context. A copy abandoned while its
 * thread still runs keeps its context forever (never freed), marked dead, so a late
 * callback from it touches neither freed memory nor the engine's next copy; the
 * callbacks under way when it died are waited for (they use the engine). */
struct copy_ctx {
    ngs_engine *e;
    atomic_int dead;
    atomic_int inflight;  /* callbacks past their check of dead */
    atomic_int end_bg;    /* the copy was abandoned: its background thread must end */
};

/* The copy whose background thread this thread is (set by the thread itself) */
static _Thread_local struct copy_ctx *bg_thread_of;

static ngs_engine *enter(void *user)
{
    struct copy_ctx *c = user;
    atomic_fetch_add(&c->inflight, 1); /* before reading dead: see cut_off */
    if (!atomic_load(&c->dead)) return c->e;
    atomic_fetch_sub(&c->inflight, 1);
    /* An abandoned copy's background thread ends itself here, holding none of our
     * locks (ngspice detaches it: no other thread could safely cancel it). Frames
     * without unwind tables would be skipped, not crash: glibc then jumps straight
     * to the thread's start. */
    if (bg_thread_of == c && atomic_load(&c->end_bg)) pthread_exit(NULL);
    return NULL;
}

static void leave(void *user)
{
    atomic_fetch_sub(&((struct copy_ctx *)user)->inflight, 1);
}

/* No callback of this copy reaches the engine after this returns. */
static void cut_off(struct copy_ctx *c)
{
    atomic_store(&c->dead, 1);
    while (atomic_load(&c->inflight) > 0) usleep(100);
}

static int is_error_line(const char *s)
{
    /* "Command 'source' failed:" and the perror-style line after it ("x.cir: No such
     * file or directory") say why a .control command stopped the run. Not any line with
     * "failed": ngspice also says so while it recovers ("SOR failed at 1e6 Hz,
     * switching to direct-method"), which must not fail the analysis. */
    static const char *const os_reasons[] = {"No such file or directory", "Permission denied",
                                             "Is a directory", "Not a directory"};
    for (size_t i = 0; i < sizeof os_reasons / sizeof *os_reasons; i++)
        if (strstr(s, os_reasons[i])) return 1;
    if (strncmp(s, "Command '", 9) == 0 && strstr(s, "' failed")) return 1;
    return strstr(s, "rror") != NULL || strstr(s, "aborted") != NULL ||
           strstr(s, "too small") != NULL || strstr(s, "not parsed") != NULL ||
           strstr(s, "annot") != NULL || /* "Cannot", "cannot" */
           strncmp(s, "Netlist line no.", 16) == 0; /* numparam's errors: where, then what */
}

/* Under msg_lock: one more error line of the run; the first 16 are kept for its message. */
static void append_error_locked(ngs_engine *e, const char *line)
{
    if (e->nerror_lines < 16) {
        size_t len = strlen(e->errors);
        snprintf(e->errors + len, sizeof e->errors - len, "%s%s", len ? "\n" : "", line);
    }
    e->nerror_lines++;
}

#define CAPTURE_MARK "ngscale-capture: "

static void build_search_dirs(ngs_engine *e);

static void send_char(ngs_engine *e, const char *text)
{
    int is_err = strncmp(text, "stderr", 6) == 0;
    const char *msg = text;
    if (strncmp(text, "stdout ", 7) == 0 || strncmp(text, "stderr ", 7) == 0) msg = text + 7;
    else if (strcmp(text, "stdout") == 0 || strcmp(text, "stderr") == 0) msg = "";
    if (e->captured && strncmp(msg, CAPTURE_MARK, sizeof CAPTURE_MARK - 1) == 0) {
        free(e->captured);
        e->captured = strdup(msg + sizeof CAPTURE_MARK - 1);
        return; /* ours, not ngspice's: never shown */
    }
    if (e->capturing_version) {
        const char *p = strstr(msg, "ngspice-");
        if (p && !e->version[0]) {
            size_t n = strcspn(p, " \t\r\n");
            snprintf(e->version, sizeof e->version, "%.*s", (int)n, p);
        } else if ((p = strstr(msg, "Creation Date:")) && e->version[0] &&
                   !strstr(e->version, "created")) {
            size_t len = strlen(e->version);
            snprintf(e->version + len, sizeof e->version - len, " (shared library, created %s)",
                     p + 15);
        }
    }
    if (atomic_load(&e->muted_tid) == (int)gettid()) return; /* ngscale's own command */
    if (is_err && (e->error_follow > 0 || is_error_line(msg)) && atomic_load(&e->halting_tid) != (int)gettid()) {
        pthread_mutex_lock(&e->msg_lock);
        /* ngspice's reports of a netlist line say where first, then the card and why:
         * "Error on line 4 or its substitute:", "  d1 out 0 nosuch", "could not find a
         * valid modelname"; "Netlist line no. 3:", "Undefined parameter [rr]" */
        if (e->error_follow > 0) {
            e->error_follow--;
            while (*msg == ' ' || *msg == '\t') msg++;
        } else if (strncmp(msg, "Error on line", 13) == 0) {
            e->error_follow = 2;
        } else if (strncmp(msg, "Netlist line no.", 16) == 0) {
            e->error_follow = 1;
        }
        append_error_locked(e, msg);
        if (e->plot_open && !e->plot_finished && !e->plot_errors)
            snprintf(e->plot_error, sizeof e->plot_error, "%s", msg);
        if (e->plot_open && !e->plot_finished) e->plot_errors++;
        pthread_mutex_unlock(&e->msg_lock);
    } else if (!is_err && e->plot_open && !e->plot_errors && strstr(msg, "No. of Data Rows") &&
               !atomic_load(&e->stop_requested)) {
        const char *colon = strchr(msg, ':');
        pthread_mutex_lock(&e->msg_lock); /* ngspice prints it as an analysis ends */
        e->plot_finished = 1;
        e->plot_rows = colon ? strtol(colon + 1, NULL, 10) : 0;
        pthread_mutex_unlock(&e->msg_lock);
    }
    /* bookkeeping of ngspice's own thread, not something `ngspice -b` shows */
    if (strncmp(msg, "Background thread stopped", 25) == 0) return;
    if (e->dispatch) ngs_dispatch_message(e->dispatch, msg, is_err);
}

static void send_stat(ngs_engine *e, const char *text)
{
    const char *colon = strrchr(text, ':');
    double pct = -1;
    if (colon) {
        char *end;
        double v = strtod(colon + 1, &end);
        if (end != colon + 1 && *end == '%') pct = v;
    }
    if (strstr(text, "--ready--")) pct = 100;
    if (e->dispatch && pct >= 0) ngs_dispatch_progress(e->dispatch, pct);
}

static void controlled_exit(ngs_engine *e, int status, NG_BOOL quit)
{
    pthread_mutex_lock(&e->lock);
    /* from ngspice's background thread, which ends right after; from the caller's
     * thread (a netlist read with `source`), nothing is left to wait for */
    if (gettid() == e->bg_thread) e->last_thread = gettid();
    e->exited = 1;
    e->exit_status = status;
    e->exit_quit = quit;
    e->needs_reload = 1;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

static void bg_running(ngs_engine *e, NG_BOOL finished)
{
    /* Despite sharedspice.h's comment, true means the thread has finished. Both
     * calls come from the background thread itself; only the thread that started
     * the current command may end it (a late call from an older one is ignored). */
    pthread_mutex_lock(&e->lock);
    if (!finished) {
        e->bg_thread = gettid();
    } else if (gettid() == e->bg_thread) {
        e->last_thread = e->bg_thread;
        e->bg_finished = 1;
        pthread_cond_broadcast(&e->cond);
    }
    pthread_mutex_unlock(&e->lock);
}

/* ngspice's internal name -> the name its RAW writer prints. */
static void raw_name(char *out, size_t n, const char *name, int type)
{
    if (type == 4 /* SV_CURRENT */) {
        /* cut at "#branch", as ngspice's writer does: v1#branch and an XSPICE
         * a1#branch_1_0 are i(v1) and i(a1) */
        const char *branch = strstr(name, "#branch");
        snprintf(out, n, "i(%.*s)", branch ? (int)(branch - name) : (int)strlen(name), name);
    } else if (type == 3 /* SV_VOLTAGE */) {
        snprintf(out, n, "v(%s)", name);
    } else {
        snprintf(out, n, "%s", name);
    }
}

int ngs_engine_save_matches(ngs_engine *e, const char *raw, const char *ngname)
{
    int hit = 0;
    if (!e->save_names) return 1;
    for (size_t i = 0; i < e->nsave; i++)
        if (strcasecmp(e->save_names[i], raw) == 0 || strcasecmp(e->save_names[i], ngname) == 0) {
            if (e->save_seen) e->save_seen[i] = 1;
            hit = 1; /* the others too: "out" and "v(out)" may both be given */
        }
    return hit;
}

static void free_vec_names(ngs_engine *e)
{
    for (int k = 0; e->vec_names && k < e->nkept; k++) free(e->vec_names[k]);
    free(e->vec_names);
    e->vec_names = NULL;
}

/* ngspice 39 sends no point at all of a plot whose first vector stays empty: a device
 * quantity such as @r1[i] (`.options savecurrents`, `.save @r1[i]`) has no value in an
 * AC analysis, and sh_ExecutePerLoop then returns before SendData. When the vectors
 * are kept, the points are all in ngspice's memory: they are read from there, an empty
 * vector as 0s as ngspice's RAW writer writes it. Returns the rows sent. */
static long send_rows_from_memory(ngs_engine *e)
{
    long rows = 0;
    pvector_info *vi;
    if (!e->handle || e->exited || !e->vec_names || e->nkept <= 0) return 0;
    for (int k = 0; k < e->nkept; k++)
        if (!e->vec_names[k]) return 0; /* out of memory at the plot's start */
    if (!(vi = calloc((size_t)e->nkept, sizeof *vi))) return 0;
    atomic_store(&e->muted_tid, (int)gettid()); /* a vector a script destroyed: "not found" */
    for (int k = 0; k < e->nkept; k++) {
        char full[4096];
        pvector_info v;
        snprintf(full, sizeof full, "%s.%s", e->plot_type, e->vec_names[k]);
        v = e->api.GetVecInfo(full);
        if (!v || strcmp(v->v_name, e->vec_names[k]) != 0 || v->v_length < 0) continue;
        vi[k] = malloc(sizeof **vi);
        if (!vi[k]) break;
        *vi[k] = *v; /* ngspice reuses its one vector_info for every call */
        if (v->v_length > rows) rows = v->v_length;
    }
    atomic_store(&e->muted_tid, 0);
    if (e->plot_rows > 0 && rows > e->plot_rows) rows = e->plot_rows;
    for (long r = 0; r < rows; r++) {
        double *row = ngs_dispatch_row_begin(e->dispatch, (size_t)e->row_doubles);
        if (!row) break;
        for (int k = 0, c = 0; k < e->nkept; k++) {
            const struct vector_info *v = vi[k];
            int have = v && r < v->v_length, real = v && (v->v_flags & 1 /* VF_REAL */);
            row[c++] = !have ? 0 : real ? (v->v_realdata ? v->v_realdata[r] : 0)
                                        : (v->v_compdata ? v->v_compdata[r].cx_real : 0);
            if (e->vec_cplx[k]) row[c++] = have && !real && v->v_compdata ? v->v_compdata[r].cx_imag : 0;
        }
        ngs_dispatch_row_commit(e->dispatch);
        e->plot_points++;
        e->run_points++;
    }
    for (int k = 0; k < e->nkept; k++) free(vi[k]);
    free(vi);
    return rows;
}

void ngs_engine_close_plot(ngs_engine *e)
{
    int status = NGS_OK;
    char msg[512] = "";
    if (!e->plot_open) return;
    if (e->plot_points == 0 && e->plot_rows > 0 && !atomic_load(&e->stop_requested)) {
        /* ngspice computed points and sent none (see send_rows_from_memory) */
        if (!e->dedupe_by_index || send_rows_from_memory(e) == 0) {
            char why[400];
            snprintf(why, sizeof why,
                     "Error: ngspice computed %ld points of %s but sent none (a vector it saves, such as a "
                     "device current of .options savecurrents, has no value in this analysis)%s",
                     e->plot_rows, e->plot_type,
                     e->dedupe_by_index ? "" : "; with vectors kept (--memory keep) they are read from ngspice");
            pthread_mutex_lock(&e->msg_lock);
            if (!e->plot_errors++) snprintf(e->plot_error, sizeof e->plot_error, "%s", why);
            append_error_locked(e, why);
            pthread_mutex_unlock(&e->msg_lock);
        }
    }
    pthread_mutex_lock(&e->msg_lock);
    if (e->plot_errors) {
        status = NGS_ERR_SIMULATION;
        snprintf(msg, sizeof msg, "%s", e->plot_error);
    }
    e->plot_open = 0;
    pthread_mutex_unlock(&e->msg_lock);
    if (atomic_load(&e->stop_requested) && status == NGS_OK && !e->plot_finished) {
        status = NGS_ERR_INTERRUPTED;
        snprintf(msg, sizeof msg, "the analysis was stopped before its end");
    }
    ngs_dispatch_plot_end(e->dispatch, status, msg[0] ? msg : NULL);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

/* How many entries of sorted[n] are p. */
static size_t count_ptr(void *const *sorted, size_t n, const void *p)
{
    size_t lo = 0, hi = n, first;
    while (lo < hi) { /* first entry >= p */
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)sorted[mid] < (uintptr_t)p) lo = mid + 1; else hi = mid;
    }
    first = lo;
    while (lo < n && sorted[lo] == p) lo++;
    return lo - first;
}

static void send_init_data(ngs_engine *e, pvecinfoall info)
{
    int n = info->veccount, k = 0;
    ngs_vector_desc *vd;
    char(*names)[256];
    void **scales;
    char analysis[64];
    ngs_plot_desc *plot;
    size_t alen;
    if (atomic_load(&e->stop_requested)) { /* halted: what a script goes on with is not kept */
        ngs_engine_close_plot(e);
        return;
    }
    vd = calloc((size_t)(n ? n : 1), sizeof *vd);
    names = calloc((size_t)(n ? n : 1), sizeof *names);
    /* the vectors' scales, sorted: one search per vector (comparing every pair of a
     * 100k-vector plot took 20 s, where ngspice's whole analysis took 2) */
    scales = malloc((size_t)(n ? n : 1) * sizeof *scales);
    for (int x = 0; scales && x < n; x++) scales[x] = info->vecs[x]->pdvecscale;
    if (scales) qsort(scales, (size_t)n, sizeof *scales, cmp_ptr);

    ngs_engine_close_plot(e); /* ngspice has no end-of-plot callback */
    free(e->vec_map);
    free(e->vec_cplx);
    free_vec_names(e);
    e->nkept = 0;
    e->vec_map = malloc((size_t)(n ? n : 1) * sizeof *e->vec_map);
    e->vec_cplx = malloc((size_t)(n ? n : 1) * sizeof *e->vec_cplx);
    e->vec_names = calloc((size_t)(n ? n : 1), sizeof *e->vec_names);
    if (!vd || !names || !scales || !e->vec_map || !e->vec_cplx || !e->vec_names) {
        free(vd);
        free(names);
        free(scales);
        atomic_store(&e->stop_requested, 1);
        return;
    }
    /* callback order is the reverse of the plot's (RAW) order, scale last */
    for (int j = n - 1; j >= 0; j--) {
        pvecinfo v = info->vecs[j];
        char full[512];
        pvector_info vi;
        int type = 0, is_scale = 0;
        snprintf(full, sizeof full, "%s.%s", info->type, v->vecname);
        vi = e->api.GetVecInfo(full);
        if (vi) type = vi->v_type;
        /* the scale is the vector the others point to as their scale */
        is_scale = v->pdvec != NULL &&
                   count_ptr(scales, (size_t)n, v->pdvec) > (v->pdvecscale == v->pdvec ? 1u : 0u);
        raw_name(names[k], sizeof names[k], v->vecname, type);
        if (!ngs_engine_save_matches(e, names[k], v->vecname) && !is_scale) continue; /* matched first: "--save time" names a vector too */
        vd[k].name = names[k];
        vd[k].ngspice_name = v->vecname;
        vd[k].type = type;
        vd[k].type_name = ngs_vector_type_name(type);
        vd[k].unit = ngs_vector_type_unit(type);
        vd[k].is_complex = !v->is_real;
        vd[k].is_scale = is_scale;
        e->vec_map[k] = j;
        e->vec_cplx[k] = !v->is_real;
        e->vec_names[k] = strdup(v->vecname); /* NULL (no memory): not read back */
        k++;
    }
    e->nkept = k;
    snprintf(analysis, sizeof analysis, "%s", info->type);
    alen = strlen(analysis);
    while (alen > 0 && isdigit((unsigned char)analysis[alen - 1])) analysis[--alen] = '\0';
    plot = ngs_plot_desc_new(info->type, info->name, analysis, info->title, info->date,
                             e->plots_in_run, vd, k);
    free(vd);
    free(names);
    free(scales);
    if (!plot) {
        atomic_store(&e->stop_requested, 1);
        return;
    }
    snprintf(e->plot_type, sizeof e->plot_type, "%s", info->type);
    e->row_doubles = plot->row_doubles;
    e->cb_count = n;
    e->plot_points = 0;
    e->map_checked = 0;
    e->last_vecindex = -1;
    pthread_mutex_lock(&e->msg_lock);
    e->plot_open = 1;
    e->plot_errors = 0;
    e->plot_finished = 0;
    e->plot_rows = 0;
    e->plot_error[0] = '\0';
    pthread_mutex_unlock(&e->msg_lock);
    e->plots_in_run++;
    ngs_dispatch_plot_begin(e->dispatch, plot);
}

static void send_data(ngs_engine *e, pvecvaluesall all)
{
    double *row;
    if (!e->plot_open || all->veccount != e->cb_count) return;
    if (e->dedupe_by_index) {
        /* .options interp: every step is sent, only grid points are stored */
        if (all->vecindex == e->last_vecindex) return;
        e->last_vecindex = all->vecindex;
    }
    if (!e->map_checked) { /* SendData's order is SendInitData's: check it once */
        e->map_checked = 1;
        if (e->nkept > 0 && all->vecsa[e->vec_map[0]]->is_complex != e->vec_cplx[0]) {
            ngs_engine_set_error(e, "ngspice sent vectors in an unexpected order");
            atomic_store(&e->stop_requested, 1);
        }
    }
    row = ngs_dispatch_row_begin(e->dispatch, (size_t)e->row_doubles);
    if (!row) return;
    for (int k = 0, c = 0; k < e->nkept; k++) {
        pvecvalues v = all->vecsa[e->vec_map[k]];
        row[c++] = v->creal;
        if (e->vec_cplx[k]) row[c++] = v->cimag;
    }
    ngs_dispatch_row_commit(e->dispatch);
    e->plot_points++;
    e->run_points++;
}

/* ngspice's callbacks: each reaches the engine only while its copy is alive */
static int cb_send_char(char *text, int id, void *user)
{
    ngs_engine *e = enter(user);
    (void)id;
    if (e) {
        send_char(e, text);
        leave(user);
    }
    return 0;
}

static int cb_send_stat(char *text, int id, void *user)
{
    ngs_engine *e = enter(user);
    (void)id;
    if (e) {
        send_stat(e, text);
        leave(user);
    }
    return 0;
}

static int cb_controlled_exit(int status, NG_BOOL immediate, NG_BOOL quit, int id, void *user)
{
    ngs_engine *e = enter(user);
    (void)immediate;
    (void)id;
    if (e) {
        controlled_exit(e, status, quit);
        leave(user);
    }
    return 0;
}

static int cb_bg_running(NG_BOOL finished, int id, void *user)
{
    ngs_engine *e;
    (void)id;
    if (!finished) bg_thread_of = user; /* called on the new thread: see enter */
    e = enter(user);
    if (e) {
        bg_running(e, finished);
        leave(user);
    }
    return 0;
}

static int cb_send_init_data(pvecinfoall info, int id, void *user)
{
    ngs_engine *e = enter(user);
    (void)id;
    if (e) {
        send_init_data(e, info);
        leave(user);
    }
    return 0;
}

static int cb_send_data(pvecvaluesall all, int count, int id, void *user)
{
    ngs_engine *e = enter(user);
    (void)count;
    (void)id;
    if (e) {
        send_data(e, all);
        leave(user);
    }
    return 0;
}

/* ------------------------------------------------------ loading a copy -- */

/* Where the system's libngspice is. Found once per process, before any private copy
 * exists: afterwards dlopen("libngspice.so.0") would match a loaded copy by its
 * SONAME and name the copy's (deleted) file instead. */
static char system_lib[4096];
static char system_lib_error[512];
static pthread_once_t system_lib_once = PTHREAD_ONCE_INIT;

static void locate_system_libngspice(void)
{
    static const char *const dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                                       "/usr/lib64", "/usr/lib", "/usr/local/lib", NULL};
    struct link_map *map = NULL;
    void *h = dlopen("libngspice.so.0", RTLD_LAZY | RTLD_LOCAL);
    if (!h) h = dlopen("libngspice.so", RTLD_LAZY | RTLD_LOCAL);
    if (h) {
        char *real = NULL;
        if (dlinfo(h, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && map->l_name[0])
            real = realpath(map->l_name, NULL);
        if (real) snprintf(system_lib, sizeof system_lib, "%s", real);
        free(real);
        dlclose(h);
    }
    for (int i = 0; !system_lib[0] && dirs[i]; i++) { /* the linker said nothing usable */
        char path[512];
        snprintf(path, sizeof path, "%s/libngspice.so.0", dirs[i]);
        if (access(path, R_OK) == 0) snprintf(system_lib, sizeof system_lib, "%s", path);
    }
    if (!system_lib[0])
        snprintf(system_lib_error, sizeof system_lib_error,
                 "libngspice not found; install libngspice0 or set NGSCALE_LIBNGSPICE to its path");
}

static int find_system_libngspice(ngs_engine *e)
{
    const char *env = getenv("NGSCALE_LIBNGSPICE");
    const char *path = e->config.libngspice_path ? e->config.libngspice_path
                       : (env && *env) ? env : NULL;
    if (!path) {
        pthread_once(&system_lib_once, locate_system_libngspice);
        if (!system_lib[0]) {
            ngs_engine_set_error(e, "%s", system_lib_error);
            return NGS_ERR_LIBNGSPICE;
        }
        path = system_lib;
    }
    e->lib_source = strdup(path);
    return e->lib_source ? NGS_OK : NGS_ERR_NOMEM;
}

#define LOAD_SYM(field, name, required)                                                  \
    do {                                                                                 \
        *(void **)&e->api.field = dlsym(e->handle, name);                                \
        if (!e->api.field && (required)) {                                               \
            ngs_engine_set_error(e, "%s lacks %s: not a usable libngspice", e->lib_source, name); \
            ngs_engine_unload_copy(e);                                                   \
            return NGS_ERR_LIBNGSPICE;                                                   \
        }                                                                                \
    } while (0)

/* ngspice reads its spinit (which loads the code models) during Init, from
 * $SPICE_SCRIPTS, else SPICE_LIB_DIR/scripts: process-wide variables, so Inits
 * happen one at a time. Both point at the instance's own directory meanwhile: a
 * user's SPICE_SCRIPTS left in place made every instance load the shared .cm
 * files, and two instances running code models crashed the process. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const spinit_vars[] = {"SPICE_LIB_DIR", "SPICE_SCRIPTS"};
#define NSPINIT_VARS (sizeof spinit_vars / sizeof spinit_vars[0])

/* ngspice's init sprintf's "sourcepath = ( . SCRIPTS $NGSPICE_INPUT_DIR )" into a
 * stack buffer of 512 bytes (BSIZE_SP), SCRIPTS being $SPICE_SCRIPTS, else
 * $SPICE_LIB_DIR/scripts: a longer one aborted the whole process ("buffer overflow
 * detected") from a tmp_dir or $TMPDIR of 470 bytes. Checked under init_lock, with
 * the variables Init will read. */
#define NGSPICE_INIT_BUF 512

static size_t init_sourcepath_bytes(void)
{
    const char *scripts = getenv("SPICE_SCRIPTS"), *lib = getenv("SPICE_LIB_DIR");
    const char *input = getenv("NGSPICE_INPUT_DIR");
    size_t n = strlen("sourcepath = ( . ") + strlen(" )") + 1;
    n += scripts ? strlen(scripts) : strlen(lib ? lib : "/usr/share/ngspice") + strlen("/scripts");
    return n + (input && *input ? 1 + strlen(input) : 0);
}

/* NGS_OK, NGS_ERR_IO (paths too long for ngspice, said in the error) or
 * NGS_ERR_LIBNGSPICE (Init failed). */
static int init_copy(ngs_engine *e)
{
    char *saved[NSPINIT_VARS] = {NULL}, scripts[PATH_MAX];
    const char *own[NSPINIT_VARS] = {e->work_dir, scripts};
    size_t need;
    int rc;
    pthread_mutex_lock(&init_lock);
    if (e->has_private_codemodels) {
        snprintf(scripts, sizeof scripts, "%s/scripts", e->work_dir);
        for (size_t i = 0; i < NSPINIT_VARS; i++) {
            const char *old = getenv(spinit_vars[i]);
            saved[i] = old ? strdup(old) : NULL;
            setenv(spinit_vars[i], own[i], 1);
        }
    }
    if ((need = init_sourcepath_bytes()) > NGSPICE_INIT_BUF) {
        const char *input = getenv("NGSPICE_INPUT_DIR");
        /* the advice names the longer part */
        int blame_input = input && *input && (!e->has_private_codemodels || strlen(input) > strlen(scripts));
        ngs_engine_set_error(e, "ngspice cannot start here: its init copies the path of its scripts "
                                "(%s)%s into %d bytes, and these take %zu: set %s to a shorter directory",
                             e->has_private_codemodels ? scripts : "$SPICE_SCRIPTS or $SPICE_LIB_DIR/scripts",
                             input && *input ? " and $NGSPICE_INPUT_DIR" : "", NGSPICE_INIT_BUF, need,
                             blame_input ? "$NGSPICE_INPUT_DIR"
                             : e->has_private_codemodels ? (e->config.tmp_dir ? "tmp_dir" : "$TMPDIR")
                                                         : "$SPICE_SCRIPTS or $SPICE_LIB_DIR");
        rc = NGS_ERR_IO;
    } else {
        /* Without a status callback ngspice skips its progress bookkeeping (a clock
         * read, a malloc and a free at almost every step of a short run). */
        rc = e->api.Init(cb_send_char, e->sends_progress ? cb_send_stat : NULL, cb_controlled_exit,
                         cb_send_data, cb_send_init_data, cb_bg_running, e->ctx) == 0
                 ? NGS_OK : NGS_ERR_LIBNGSPICE;
    }
    if (e->has_private_codemodels) {
        for (size_t i = 0; i < NSPINIT_VARS; i++) {
            if (saved[i]) setenv(spinit_vars[i], saved[i], 1);
            else unsetenv(spinit_vars[i]);
            free(saved[i]);
        }
    }
    pthread_mutex_unlock(&init_lock);
    return rc;
}

int ngs_engine_load_copy(ngs_engine *e)
{
    char path[4096];
    int rc;
    ngs_engine_unload_copy(e);
    snprintf(path, sizeof path, "%s/libngspice-%d.so", e->work_dir, ++e->generation);
    if (ngs_private_copy(e->lib_source, path) != 0) {
        ngs_engine_set_error(e, "cannot copy %s to %s: %s", e->lib_source, path, strerror(errno));
        unlink(path);
        return NGS_ERR_LIBNGSPICE;
    }
    e->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    unlink(path); /* stays mapped; nothing is left behind */
    if (!e->handle) {
        ngs_engine_set_error(e, "cannot load %s: %s", e->lib_source, dlerror());
        return NGS_ERR_LIBNGSPICE;
    }
    LOAD_SYM(Init, "ngSpice_Init", 1);
    LOAD_SYM(Command, "ngSpice_Command", 1);
    LOAD_SYM(Circ, "ngSpice_Circ", 1);
    LOAD_SYM(GetVecInfo, "ngGet_Vec_Info", 1);
    LOAD_SYM(CurPlot, "ngSpice_CurPlot", 1);
    LOAD_SYM(Running, "ngSpice_running", 1);
    LOAD_SYM(Reset, "ngSpice_Reset", 0);

    pthread_mutex_lock(&e->lock);
    e->exited = 0;
    e->bg_finished = 0;
    pthread_mutex_unlock(&e->lock);
    e->save_none_sticky = 0;
    e->needs_reload = 0;
    e->copy_used = 0;
    e->capturing_version = 1;
    e->version[0] = '\0';
    e->ctx = calloc(1, sizeof *e->ctx);
    if (!e->ctx) {
        ngs_engine_unload_copy(e);
        return NGS_ERR_NOMEM;
    }
    e->ctx->e = e;
    atomic_init(&e->ctx->dead, 0);
    atomic_init(&e->ctx->inflight, 0);
    atomic_init(&e->ctx->end_bg, 0);
    e->sends_progress = 0;
    for (size_t i = 0; i < e->nhooks; i++)
        if (e->hooks[i].mask & NGS_EV_PROGRESS) e->sends_progress = 1;
    rc = init_copy(e);
    e->capturing_version = 0;
    if (rc != NGS_OK || e->exited) {
        if (rc != NGS_ERR_IO) {
            ngs_engine_set_error(e, "ngSpice_Init failed for %s", e->lib_source);
            rc = NGS_ERR_LIBNGSPICE;
        }
        ngs_engine_unload_copy(e);
        return rc;
    }
    if (!e->version[0]) snprintf(e->version, sizeof e->version, "ngspice (unknown version)");
    /* ngspice's " Reference value : ..." console progress reads the process CPU clock
     * at every output point (a system call that walks all our threads): off */
    e->api.Command("set norefvalue");
    /* the sourcepath spinit and .spiceinit left: ".", ngspice's scripts directory
     * (ciderinit, spectrum...), $NGSPICE_INPUT_DIR. Each run puts its netlist's
     * directory in front of it (run.c), as ngspice -b looks there first. */
    e->api.Command("set ngscale_sourcepath = ( $sourcepath )");
    build_search_dirs(e);
    if (e->config.num_threads > 0) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "set num_threads=%d", e->config.num_threads);
        e->api.Command(cmd);
    }
    return NGS_OK;
}

int ngs_engine_claim(ngs_engine *e) { return ngs_claim_flag(&e->in_run); }

const char *const *ngs_engine_search_dirs(const ngs_engine *e)
{
    return (const char *const *)e->search_dirs;
}

static void free_search_dirs(ngs_engine *e)
{
    for (size_t i = 0; e->search_dirs && e->search_dirs[i]; i++) free(e->search_dirs[i]);
    free(e->search_dirs);
    e->search_dirs = NULL;
}

/* What ngspice echoes of expr (one word: an element may hold blanks), or NULL. */
static char *capture_echo(ngs_engine *e, const char *expr)
{
    char cmd[128], *line;
    snprintf(cmd, sizeof cmd, "echo " CAPTURE_MARK "%s", expr);
    e->captured = strdup("");
    if (!e->captured) return NULL;
    e->api.Command(cmd);
    line = e->captured;
    e->captured = NULL;
    return line;
}

/* ngs_engine_search_dirs' list. A directory that spinit or .spiceinit put in the
 * sourcepath is where ngspice finds an .include: the cache key must hash what is
 * there (it hashes every candidate), else an edit there gave a stale hit, and an
 * include found only there made every run uncacheable. */
static void build_search_dirs(ngs_engine *e)
{
    const char *input_dir = getenv("NGSPICE_INPUT_DIR");
    char *count = capture_echo(e, "$#sourcepath"), *end;
    long n = count ? strtol(count, &end, 10) : 0;
    size_t k = 0;
    if (!count || end == count || n < 0 || n > 1000) n = 0;
    free(count);
    free_search_dirs(e);
    if (!(e->search_dirs = calloc((size_t)n + 3, sizeof *e->search_dirs))) return;
    e->search_dirs[k++] = strdup(e->work_dir);
    if (input_dir && *input_dir) e->search_dirs[k++] = strdup(input_dir);
    for (long i = 1; i <= n; i++) {
        char expr[64], *dir;
        snprintf(expr, sizeof expr, "$sourcepath[%ld]", i);
        dir = capture_echo(e, expr);
        if (!dir || dir[0]) e->search_dirs[k++] = dir; /* NULL: out of memory, caught below */
        else free(dir);
    }
    for (size_t i = 0; i < k; i++)
        if (!e->search_dirs[i]) { /* out of memory: no list rather than a wrong one */
            for (size_t j = 0; j < k; j++) free(e->search_dirs[j]);
            free(e->search_dirs);
            e->search_dirs = NULL;
            return;
        }
}

int ngs_engine_thread_exists(pid_t tid)
{
    return syscall(SYS_tgkill, getpid(), tid, 0) == 0 || errno != ESRCH; /* signal 0: only checks */
}

/* ngspice detaches its threads, so they cannot be joined: poll until the last one
 * is gone. */
static int thread_gone(pid_t tid, int timeout_ms)
{
    /* the thread is normally gone within microseconds of its last callback: poll
     * fast first (a fixed 1 ms sleep cost every job of a batch two milliseconds) */
    double waited_us = 0, step_us = 5;
    while (waited_us < timeout_ms * 1000.0) {
        if (!ngs_engine_thread_exists(tid)) return 1;
        usleep((useconds_t)step_us);
        waited_us += step_us;
        if (step_us < 1000) step_us *= 2;
    }
    return 0;
}

void ngs_engine_wait_thread_exit(ngs_engine *e)
{
    pid_t tid;
    pthread_mutex_lock(&e->lock);
    tid = e->last_thread;
    pthread_mutex_unlock(&e->lock);
    if (tid > 0) thread_gone(tid, 60000);
}

/* The copy's thread runs on where ngspice's halt cannot reach (a .control loop).
 * It ends at its next callback (enter): a loop that runs analyses or prints stops
 * using a core and growing its memory; one that does neither runs on until the
 * process ends. */
void ngs_engine_abandon_copy(ngs_engine *e)
{
    pid_t tid;
    if (e->ctx) {
        atomic_store(&e->ctx->end_bg, 1);
        cut_off(e->ctx);
    }
    pthread_mutex_lock(&e->lock);
    tid = e->bg_thread;
    pthread_mutex_unlock(&e->lock);
    /* a loop that calls back ends within milliseconds */
    e->runaway_thread = tid > 0 && !thread_gone(tid, 500) ? tid : 0;
    e->runaway = 1;
    e->needs_reload = 1;
}

void ngs_engine_unload_copy(ngs_engine *e)
{
    int quiet, unload;
    if (!e->handle) return;
    quiet = !e->runaway && (!e->api.Running || !e->api.Running());
    /* the thread usually ends within microseconds; valgrind can make it seconds */
    if (quiet && e->last_thread > 0) quiet = thread_gone(e->last_thread, 60000);
    unload = quiet;
#ifdef __SANITIZE_ADDRESS__
    unload = 0; /* keep ngspice mapped so leak reports from inside it name the library */
#endif
    if (quiet) {
        if (unload) dlclose(e->handle);
        free(e->ctx);
    } else {
        /* A thread of this copy may still call back: keep the copy mapped and its
         * context alive, but dead, so those calls do nothing. */
        if (e->ctx) cut_off(e->ctx);
    }
    e->ctx = NULL;
    e->handle = NULL;
    e->last_thread = 0;
    e->runaway = 0;
    e->runaway_thread = 0;
    memset(&e->api, 0, sizeof e->api);
}

int ngs_engine_command(ngs_engine *e, const char *cmd)
{
    char *copy = strdup(cmd);
    int rc;
    if (!copy) return NGS_ERR_NOMEM;
    rc = e->api.Command(copy);
    free(copy);
    return rc;
}

int ngs_engine_quiet_command(ngs_engine *e, const char *cmd)
{
    int rc;
    atomic_store(&e->muted_tid, (int)gettid());
    rc = ngs_engine_command(e, cmd);
    atomic_store(&e->muted_tid, 0);
    return rc;
}

void ngs_engine_halt(ngs_engine *e)
{
    /* a consumer slower than ngspice (a slow hook, a slow disk) keeps its thread waiting
     * for room in the ring past the second bg_halt waits: that is no analysis error */
    atomic_store(&e->halting_tid, (int)gettid());
    ngs_engine_command(e, "bg_halt");
    atomic_store(&e->halting_tid, 0);
}

int ngs_engine_wait_bg(ngs_engine *e, int timeout_ms)
{
    struct timespec deadline = ngs_deadline_ms(timeout_ms);
    int done;
    pthread_mutex_lock(&e->lock);
    while (!e->bg_finished && !e->exited)
        if (pthread_cond_timedwait(&e->cond, &e->lock, &deadline) == ETIMEDOUT) break;
    done = e->bg_finished || e->exited;
    pthread_mutex_unlock(&e->lock);
    return done;
}

void ngs_engine_reset_run_state(ngs_engine *e)
{
    pthread_mutex_lock(&e->msg_lock);
    e->errors[0] = '\0';
    e->nerror_lines = 0;
    e->error_follow = 0;
    e->plot_open = 0;
    pthread_mutex_unlock(&e->msg_lock);
    e->plots_in_run = 0;
    e->run_points = 0;
    e->last_error[0] = '\0';
    /* an interrupt that came before the run began stops it (a Ctrl-C while the
     * netlist and its includes loaded); run_deck clears it when the run ends */
    atomic_store(&e->stop_requested, atomic_load(&e->interrupted));
}

/* ---------------------------------- private directories of killed processes -- */

/* Each private directory names its process in an `owner` file, so that a later
 * ngscale removes the ones a killed process (SIGKILL, the OOM killer) left behind:
 * about half a MB of copies each. The process is named by its pid, pid namespace,
 * boot and host: a TMPDIR shared between machines (NFS, cluster scratch) holds
 * directories of processes this one cannot see, which must be left alone. */
static void process_identity(char *buf, size_t n)
{
    char ns[64] = "", boot[64] = "", host[128] = "";
    ssize_t len = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    ns[len > 0 ? len : 0] = '\0';
    if (f) {
        if (!fgets(boot, sizeof boot, f)) boot[0] = '\0';
        boot[strcspn(boot, "\n")] = '\0';
        fclose(f);
    }
    if (gethostname(host, sizeof host) != 0) host[0] = '\0';
    host[sizeof host - 1] = '\0';
    buf[0] = '\0';
    if (ns[0] && boot[0] && host[0] && !strpbrk(host, " \n")) snprintf(buf, n, "%s %s %s", ns, boot, host);
}

static void write_owner(const char *dir)
{
    char path[4200], id[320];
    FILE *f;
    process_identity(id, sizeof id);
    if (!id[0]) return; /* cannot say who we are: never swept */
    snprintf(path, sizeof path, "%s/owner", dir);
    if ((f = fopen(path, "w"))) {
        fprintf(f, "%ld %s\n", (long)getpid(), id);
        fclose(f);
    }
}

/* Stale: its owner is a process of our pid namespace, boot and host that no longer
 * exists. A directory without an owner file (being made, or an older ngscale's) is
 * left alone, and so is one whose pid was reused. */
static int is_stale(const char *dir, const char *id)
{
    char path[4300], line[400] = "";
    long pid = 0;
    int at = 0;
    FILE *f;
    snprintf(path, sizeof path, "%s/owner", dir);
    if (!(f = fopen(path, "r"))) return 0;
    if (!fgets(line, sizeof line, f)) line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    if (sscanf(line, "%ld %n", &pid, &at) != 1 || strcmp(line + at, id) != 0) return 0;
    return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP) rmdir(path);
    else unlink(path);
    return 0;
}

/* A private directory and all it holds: code-model copies, spinit, deck.cir, owner. */
static void remove_private_dir(const char *dir)
{
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Once per process: the first engine looks through its temporary directory. */
static void sweep_stale_dirs(const char *tmp)
{
    static pthread_mutex_t sweep_lock = PTHREAD_MUTEX_INITIALIZER;
    static int swept;
    char id[320], path[4200];
    struct dirent *ent;
    struct stat st;
    DIR *d;
    pthread_mutex_lock(&sweep_lock);
    if (swept++ || (process_identity(id, sizeof id), !id[0]) || !(d = opendir(tmp))) {
        pthread_mutex_unlock(&sweep_lock);
        return;
    }
    while ((ent = readdir(d))) {
        if (strncmp(ent->d_name, "ngscale-", 8) != 0 || strlen(ent->d_name) != 14) continue; /* mkdtemp's */
        snprintf(path, sizeof path, "%s/%s", tmp, ent->d_name);
        if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
        if (is_stale(path, id)) remove_private_dir(path);
    }
    closedir(d);
    pthread_mutex_unlock(&sweep_lock);
}

/* ------------------------------------------------------------- public -- */

static atomic_int system_codemodels_taken;

void ngs_engine_config_init(ngs_engine_config *c)
{
    memset(c, 0, sizeof *c);
    /* on by default: a second engine that loads the same .cm files takes over their
     * callbacks, and the first one's XSPICE runs crash once it is gone */
    c->private_codemodels = 1;
}

int ngs_engine_create(ngs_engine **out, const ngs_engine_config *config)
{
    ngs_engine *e;
    const char *tmp;
    char *dir;
    int rc;
    if (!out) return NGS_ERR_ARG;
    *out = NULL;
    e = calloc(1, sizeof *e);
    if (!e) return NGS_ERR_NOMEM;
    if (config) e->config = *config; else ngs_engine_config_init(&e->config);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    pthread_mutex_init(&e->msg_lock, NULL);
    atomic_init(&e->stop_requested, 0);
    atomic_init(&e->interrupted, 0);
    atomic_init(&e->in_run, 0);
    atomic_init(&e->halting_tid, 0);
    atomic_init(&e->muted_tid, 0);
    tmp = e->config.tmp_dir ? e->config.tmp_dir : getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    if (strpbrk(tmp, " \t\n\"'")) { /* ngspice's source and codemodel commands split paths there */
        ngs_engine_set_error(e, "the directory for private copies, '%s'%s, holds a space or a quote, "
                                "which ngspice's commands cannot take: set %s to a path without them",
                             tmp, e->config.tmp_dir ? "" : " ($TMPDIR)", e->config.tmp_dir ? "tmp_dir" : "TMPDIR");
        *out = e;
        return NGS_ERR_IO;
    }
    dir = malloc(strlen(tmp) + 32);
    if (!dir) {
        ngs_engine_destroy(e);
        return NGS_ERR_NOMEM;
    }
    sweep_stale_dirs(tmp);
    sprintf(dir, "%s/ngscale-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        ngs_engine_set_error(e, "cannot create a private directory in %s: %s", tmp, strerror(errno));
        free(dir);
        *out = e; /* so the caller can read the error */
        return NGS_ERR_IO;
    }
    e->work_dir = dir;
    write_owner(dir);
    /* the system's .cm files serve one engine per process, ever: a second one would
     * share them (see ngs_engine_config) */
    if (!e->config.private_codemodels && atomic_exchange(&system_codemodels_taken, 1))
        e->config.private_codemodels = 1;
    if (e->config.private_codemodels) {
        char err[512];
        if ((rc = ngs_codemodels_prepare(dir, err, sizeof err)) != NGS_OK) {
            ngs_engine_set_error(e, "cannot prepare private code models: %s", err);
            *out = e;
            return rc;
        }
        e->has_private_codemodels = 1;
    }
    if ((rc = ngs_dispatch_create(&e->dispatch, 0)) != NGS_OK ||
        (rc = find_system_libngspice(e)) != NGS_OK || (rc = ngs_engine_load_copy(e)) != NGS_OK) {
        *out = e;
        return rc;
    }
    *out = e;
    return NGS_OK;
}

void ngs_engine_destroy(ngs_engine *e)
{
    if (!e) return;
    /* a run on another thread is stopped and waited for: it returns interrupted,
     * its file says incomplete, and nothing of the engine is freed under it */
    while (!ngs_engine_claim(e)) {
        ngs_engine_interrupt(e);
        usleep(2000);
    }
    if (e->handle && !e->runaway && e->api.Running && e->api.Running()) {
        ngs_engine_halt(e);
        ngs_engine_wait_bg(e, 5000);
    }
    ngs_engine_unload_copy(e);
    if (e->dispatch) ngs_dispatch_destroy(e->dispatch);
    if (e->work_dir) remove_private_dir(e->work_dir);
    free(e->work_dir);
    free_search_dirs(e);
    free(e->lib_source);
    free(e->hooks);
    free(e->vec_map);
    free(e->vec_cplx);
    free_vec_names(e);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->msg_lock);
    free(e);
}

int ngs_engine_add_hook(ngs_engine *e, unsigned mask, ngs_hook_fn fn, void *user)
{
    user_hook *h;
    if (!e) return NGS_ERR_ARG;
    /* a run holds pointers into the hook array: growing it then would free them */
    if (!ngs_engine_claim(e)) return NGS_ERR_STATE;
    if (!fn) { /* said, not the last run's error left in place */
        ngs_engine_set_error(e, "the hook function is NULL");
        atomic_store(&e->in_run, 0);
        return NGS_ERR_ARG;
    }
    h = realloc(e->hooks, (e->nhooks + 1) * sizeof *h);
    if (h) {
        e->hooks = h;
        e->hooks[e->nhooks].fn = fn;
        e->hooks[e->nhooks].user = user;
        e->hooks[e->nhooks].mask = mask;
        e->nhooks++;
        if ((mask & NGS_EV_PROGRESS) && e->handle && !e->sends_progress)
            e->needs_reload = 1; /* the loaded copy has no status callback */
    }
    atomic_store(&e->in_run, 0);
    return h ? NGS_OK : NGS_ERR_NOMEM;
}

void ngs_engine_interrupt(ngs_engine *e)
{
    if (!e) return;
    atomic_store(&e->interrupted, 1);
    atomic_store(&e->stop_requested, 1);
}
