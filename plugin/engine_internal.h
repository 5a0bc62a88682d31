/*
 * engine_internal.h - the engine's private state, shared by engine.c (one ngspice
 * instance and its callbacks) and run.c (running a netlist into sinks).
 */
#ifndef NGS_PLUGIN_ENGINE_INTERNAL_H
#define NGS_PLUGIN_ENGINE_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <ngspice/sharedspice.h>

#include "ngscale.h"
#include "hooks/dispatch.h"

typedef struct {
    int (*Init)(SendChar *, SendStat *, ControlledExit *, SendData *, SendInitData *,
                BGThreadRunning *, void *);
    int (*Command)(char *);
    int (*Circ)(char **);
    pvector_info (*GetVecInfo)(char *);
    char *(*CurPlot)(void);
    bool (*Running)(void);
    int (*Reset)(void); /* optional (newer than ngspice 39) */
} ngspice_api;

typedef struct {
    ngs_hook_fn fn;
    void *user;
    unsigned mask;
} user_hook;

struct ngs_engine {
    ngs_engine_config config;
    char *lib_source;   /* the libngspice we copy */
    char *work_dir;     /* private directory: decks written for ngspice */
    int has_private_codemodels; /* work_dir holds scripts/spinit and cm/ copies */
    void *handle;       /* dlopen handle of our private copy */
    struct copy_ctx *ctx; /* what that copy's callbacks receive (engine.c) */
    ngspice_api api;
    int generation;     /* how many copies were loaded */
    int save_none_sticky;/* `.save none` was used: stays on for this copy */
    int needs_reload;   /* exited, halted or broken: load a fresh copy first */
    int copy_used;      /* a run has gone through this copy since it was loaded */
    int runaway;        /* its thread ignored bg_halt: the copy is abandoned, not waited for */
    pid_t runaway_thread; /* ...and its thread, if it had not ended 0.5 s later (else 0) */
    int sends_progress; /* this copy was given a status callback (a hook wants progress) */
    char version[160];

    ngs_dispatch *dispatch;
    user_hook *hooks;
    size_t nhooks;

    /* background thread state, guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int bg_finished;
    int exited, exit_status, exit_quit;
    pid_t bg_thread;    /* the background thread that reported its start last */
    pid_t last_thread;  /* ngspice thread that last reported its end: it is still
                           returning through the copy's code, so unloading waits for it */

    /* simulation-thread state (one run at a time) */
    const char *const *save_names; /* --save filter, NULL = all */
    size_t nsave;
    unsigned char *save_seen;      /* [nsave]: the name matched a vector of some plot */
    ngs_plot_desc *plot_template;  /* kept only while its plot is open (for counting) */
    int *vec_map;                  /* kept vector k <- callback index vec_map[k] */
    int *vec_cplx;
    char **vec_names;              /* [nkept]: ngspice's names of the kept vectors */
    char plot_type[64];            /* ngspice's name of the open plot (ac1) */
    long plot_rows;                /* points ngspice said the plot has ("No. of Data Rows") */
    int nkept, row_doubles, cb_count;
    int plot_open, plots_in_run, map_checked;
    int dedupe_by_index;           /* keep mode: rows only when vecindex moves */
    int last_vecindex;
    uint64_t plot_points, run_points;
    int plot_errors;               /* error lines while the current plot ran */
    int plot_finished;             /* its analysis reached its end ("No. of Data Rows"):
                                      what a script does after it is not the plot's */
    char plot_error[512];

    atomic_int stop_requested;     /* interrupt, timeout or a hook asked to stop */
    atomic_int halting_tid;        /* thread inside bg_halt (ngs_engine_halt), else 0 */
    atomic_int muted_tid;          /* thread inside ngs_engine_quiet_command, else 0 */
    atomic_int in_run;             /* a run function is on it (from any thread, or a hook) */
    atomic_int interrupted;

    /* messages: the run's error lines, for error reports */
    pthread_mutex_t msg_lock;
    char errors[2048];
    int nerror_lines;
    int error_follow;   /* stderr lines still to come of a report ("Error on line N": card, reason) */
    char last_error[2048];
    int capturing_version;
    char *captured; /* a line of ours that ngspice echoes (capture_echo), or NULL */
    char **search_dirs; /* ngs_engine_search_dirs, built at each load */
};

/* engine.c */
int ngs_engine_load_copy(ngs_engine *e);
void ngs_engine_unload_copy(ngs_engine *e);
/* Waits until the thread that last reported its end is gone. */
void ngs_engine_wait_thread_exit(ngs_engine *e);
int ngs_engine_command(ngs_engine *e, const char *cmd);
/* A command of ngscale's own (the cleanup after a run): what ngspice prints for it
 * ("there is no circuit loaded") is neither shown nor logged nor an error. */
int ngs_engine_quiet_command(ngs_engine *e, const char *cmd);
/* bg_halt: stops the background thread, waiting up to 1 s (ngspice's own limit). What
 * ngspice prints meanwhile on this thread ("Error: Couldn't stop ngspice") is the
 * halt's report, not an error of the analysis it stops. */
void ngs_engine_halt(ngs_engine *e);
/* Gives up on a copy whose background thread does not stop (a .control loop that
 * never looks at ngspice's interrupt flag): its callbacks are cut off, the thread
 * ends at its next callback, the copy stays mapped, and the next run loads a fresh
 * one. runaway_thread says whether the thread was still there 0.5 s later. */
void ngs_engine_abandon_copy(ngs_engine *e);

/* One user of the engine at a time: a run, adding a hook, destroying it. A second
 * run (from another thread, or from a hook of the first) would drive the same ngspice
 * and wreck both, or wait on itself. 1 when claimed (release: in_run = 0); 0 when in
 * use, and nothing of the engine is touched, last_error included. */
int ngs_engine_claim(ngs_engine *e);

/* The same for any such flag (a batch's): 0 -> 1, or 0 when it is held. */
static inline int ngs_claim_flag(atomic_int *in_use)
{
    int idle = 0;
    return atomic_compare_exchange_strong(in_use, &idle, 1);
}

/* Where, after the netlist's directory and the current one, ngspice finds a relative
 * .include or sourced file: the instance's work directory, $NGSPICE_INPUT_DIR, and
 * ngspice's sourcepath as spinit and .spiceinit left it (read at the copy's load).
 * NULL-terminated (NULL when none could be kept); for the deck walk and the cache key. */
const char *const *ngs_engine_search_dirs(const ngs_engine *e);

/* Whether the thread tid of this process still exists. */
int ngs_engine_thread_exists(pid_t tid);

/* Waits until the background thread finished or the engine exited; 1 if it finished,
 * 0 on timeout. */
int ngs_engine_wait_bg(ngs_engine *e, int timeout_ms);
void ngs_engine_set_error(ngs_engine *e, const char *fmt, ...);
void ngs_engine_reset_run_state(ngs_engine *e);
void ngs_engine_close_plot(ngs_engine *e);
/* Whether a vector (its RAW name and ngspice's) passes --save; marks the names it matched. */
int ngs_engine_save_matches(ngs_engine *e, const char *raw, const char *ngname);

/* run.c: NGS_OK, or NGS_ERR_ARG with the reason in err (unknown memory mode, bad
 * timeout, or the writer's options: ngs_h5_options_check). Every run checks first. */
int ngs_run_options_check(const ngs_run_options *options, char *err, size_t errlen);

/* run.c: a run written into an HDF5 file its caller keeps open (a batch's output).
 * options->output_path names that file in messages and options->group is the
 * run's group; its extra attributes are written as the group is created. The
 * caller flushes and closes the file. */
typedef struct ngs_run_into {
    int64_t file; /* hid_t */
    pthread_mutex_t *file_lock; /* see ngs_h5_options.shared_lock; NULL: none */
    const char *netlist_path; /* the file the lines came from (its netlist_path attribute); NULL: none */
    const char *const *attr_keys;
    const char *const *attr_values;
    size_t nattrs;
} ngs_run_into;

int ngs_run_lines_into(ngs_engine *engine, const char *const *lines, size_t nlines,
                       const char *base_dir, const ngs_run_options *options,
                       const ngs_run_into *into, ngs_run_result *result);

#endif
