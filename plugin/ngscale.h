/*
 * ngscale.h - public API of libngscale.
 *
 * ngscale drives ngspice through its shared library (libngspice) and streams every
 * analysis into compressed HDF5 while the simulation runs. An embedding program
 * creates an engine (one private copy of libngspice), optionally registers hooks
 * for the typed events, and runs netlists.
 *
 * Conventions (after zstd's lib/): opaque contexts, explicit parameters, every
 * function that can fail returns an int status: NGS_OK (0) or a negative
 * ngs_status code. ngs_strerror() names a code; ngs_engine_last_error() gives the
 * full message (ngspice's own text where it has one).
 */
#ifndef NGSCALE_H
#define NGSCALE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NGSCALE_FORMAT_VERSION 1 /* HDF5 schema version, see storage/SCHEMA.md */

const char *ngs_version(void);

/* ---- status codes ------------------------------------------------------------ */
typedef enum {
    NGS_OK = 0,
    NGS_ERR_NOMEM = -1,       /* out of memory */
    NGS_ERR_ARG = -2,         /* invalid argument */
    NGS_ERR_IO = -3,          /* file system error (message says which file) */
    NGS_ERR_LIBNGSPICE = -4,  /* libngspice could not be found, copied or loaded */
    NGS_ERR_NETLIST = -5,     /* ngspice rejected the netlist */
    NGS_ERR_SIMULATION = -6,  /* an analysis failed (e.g. timestep too small) */
    NGS_ERR_EXIT = -7,        /* ngspice quit or exited; the instance was replaced */
    NGS_ERR_HDF5 = -8,        /* HDF5 library error */
    NGS_ERR_TIMEOUT = -9,     /* the run went past its time limit */
    NGS_ERR_INTERRUPTED = -10,/* stopped by ngs_engine_interrupt() (Ctrl-C) */
    NGS_ERR_FORMAT = -11,     /* corrupt or unsupported input file */
    NGS_ERR_STATE = -12,      /* call not allowed now (e.g. engine busy) */
    NGS_ERR_CODEC = -13       /* compression error */
} ngs_status;

const char *ngs_strerror(int status);

/* ---- compression codecs for HDF5 datasets --------------------------------------- */
typedef enum {
    NGS_CODEC_ZSTD = 0,    /* byte shuffle + zstd (HDF5 filter 32015): default */
    NGS_CODEC_DEFLATE = 1, /* byte shuffle + deflate: stock HDF5, no plugin needed */
    NGS_CODEC_NONE = 2,    /* uncompressed */
    /* lossy, with a guaranteed bound: every sample within abs_err (or rel_err x the
     * chunk's range) of the original; filter 52807, readers need ngscale's plugin */
    NGS_CODEC_BOUNDED = 3,
    /* lossy, no plugin: keep `bits` mantissa bits, then shuffle + deflate */
    NGS_CODEC_BITROUND = 4
} ngs_codec;

/* Parameters of the lossy codecs (0 = unset). The scale vector (time, frequency,
 * sweep) always stays lossless. With neither abs_err nor rel_err, bounded uses a
 * default far below the simulator's tolerances (storage/bounded.h). */
typedef struct ngs_lossy_options {
    double abs_err;
    double rel_err;
    int bits;        /* bitround: mantissa bits kept (not with rel_err); 0: from rel_err, else 24 */
} ngs_lossy_options;

/* Parses "zstd", "deflate", "none", "bounded" or "bitround"; returns -1 when unknown. */
int ngs_codec_from_name(const char *name);
/* The codec's name; NULL for a value outside ngs_codec. */
const char *ngs_codec_name(ngs_codec codec);

/* ---- events ------------------------------------------------------------------------
 * The ngspice callbacks become these events. They are delivered one at a time, in
 * order, on the engine's dispatcher thread, or at the end of a run on the thread
 * that called the run function (which hands over what is left without waking the
 * dispatcher); never on ngspice's simulation thread, which only copies each row
 * into a ring buffer. They arrive at most about 50 ms after ngspice produced them,
 * and all of a run's events before the run function returns. Pointers in an event
 * are valid only during the hook call.
 */
typedef enum {
    NGS_EV_PLOT_BEGIN = 1 << 0, /* an analysis starts: plot and vectors described */
    NGS_EV_ROWS = 1 << 1,       /* a batch of accepted points */
    NGS_EV_PLOT_END = 1 << 2,   /* the analysis ended (status says how) */
    NGS_EV_MESSAGE = 1 << 3,    /* a line ngspice printed */
    NGS_EV_PROGRESS = 1 << 4,   /* progress of the running analysis; ngspice reports it
                                   (at a cost per step) only while a hook asks for it */
    NGS_EV_ALL = 0x1f
} ngs_event_kind;

typedef struct ngs_vector_desc {
    const char *name;         /* name as ngspice writes it in RAW files: "v(out)", "i(v1)", "time" */
    const char *ngspice_name; /* name inside ngspice: "out", "v1#branch" */
    int type;                 /* ngspice vector type (enum simulation_types) */
    const char *type_name;    /* "time", "voltage", "current", ... as in RAW headers */
    const char *unit;         /* "s", "V", "A", ... ("" when none) */
    int is_complex;           /* 1: two doubles (re, im) per point */
    int is_scale;             /* 1: the plot's scale (time, frequency, sweep) */
    int column;               /* index of its first double in a row */
} ngs_vector_desc;

typedef struct ngs_plot_desc {
    const char *name;        /* ngspice plot name: "tran1", "ac1", "op1", "noise2" ... */
    const char *plotname;    /* "Transient Analysis", "AC Analysis", ... */
    const char *analysis;    /* "tran", "ac", "op", "dc", "noise", ... */
    const char *title;       /* circuit title */
    const char *date;        /* ngspice's date string */
    int index;               /* 0-based order of this plot within the run */
    int nvectors;            /* vectors kept (after --save filtering), RAW order, scale first */
    const ngs_vector_desc *vectors;
    int scale_index;         /* index into vectors of the scale: time, frequency, the swept
                                source; in an op plot its first vector, as RAW files have it
                                (so --save always keeps that one too) */
    int is_complex;          /* any complex vector ("Flags: complex") */
    int row_doubles;         /* doubles per row (complex vectors count twice) */
} ngs_plot_desc;

typedef struct ngs_event {
    ngs_event_kind kind;
    const ngs_plot_desc *plot; /* PLOT_BEGIN, ROWS, PLOT_END */
    const double *rows;        /* ROWS: nrows x plot->row_doubles, row-major */
    size_t nrows;
    uint64_t first_row;        /* ROWS: index of rows[0] within the plot */
    uint64_t total_rows;       /* PLOT_END: points in the plot */
    int status;                /* PLOT_END: NGS_OK or the failure code */
    const char *text;          /* MESSAGE: the line; PLOT_END: failure message or NULL */
    int is_error;              /* MESSAGE: 1 when ngspice wrote it to stderr */
    double percent;            /* PROGRESS: 0..100, or -1 when unknown */
} ngs_event;

/* A hook returns 0 to continue; any other value stops the run (NGS_ERR_INTERRUPTED).
 * A hook may call ngs_engine_interrupt; a run function on its own engine from a hook
 * returns NGS_ERR_STATE. */
typedef int (*ngs_hook_fn)(const ngs_event *event, void *user);

/* ---- engine: one private instance of ngspice ------------------------------------- */
typedef struct ngs_engine ngs_engine;

typedef struct ngs_engine_config {
    const char *libngspice_path; /* NULL: $NGSCALE_LIBNGSPICE, else the system's libngspice.so.0 */
    const char *tmp_dir;         /* where private copies go; NULL: $TMPDIR or /tmp. At most
                                    469 bytes (ngspice's init cannot take a longer path;
                                    less with $NGSPICE_INPUT_DIR set): NGS_ERR_IO */
    int num_threads;             /* ngspice's OpenMP threads; 0 = ngspice default */
    /* Where ngspice's messages go besides hooks: a FILE* (stderr, a log); NULL = nowhere. */
    void *message_stream;
    /* 1 (the default): private copies of the XSPICE code models (0.5 MB, about a
     * millisecond). 0 loads the system's files, for the first engine of the process
     * only (later ones get copies anyway): engines sharing a .cm file compute wrong
     * results, and once one is destroyed the other's XSPICE runs crash. */
    int private_codemodels;
} ngs_engine_config;

void ngs_engine_config_init(ngs_engine_config *config);

/* Note: ngspice seeds the C library's rand() when a copy is loaded (at create, and
 * again when a run replaces a copy that quit, timed out or was interrupted): a host
 * program that draws from rand() itself should seed it after those.
 * Copies libngspice (and, with private_codemodels, the code models) into a private
 * directory under tmp_dir and loads it. On failure *engine is still set (NULL only
 * when engine is NULL or memory ran out): read ngs_engine_last_error, then
 * ngs_engine_destroy (a run on it fails again). config may be NULL. */
int ngs_engine_create(ngs_engine **engine, const ngs_engine_config *config);
/* Unloads the copy and removes the private directory. A run on another thread is
 * interrupted first and waited for (it returns NGS_ERR_INTERRUPTED, its file says
 * incomplete); then no call on the engine may follow. Never from one of its hooks. */
void ngs_engine_destroy(ngs_engine *engine);

/* Hooks receive the events whose bits are in event_mask, for every later run. Not
 * during a run (from a hook or another thread): NGS_ERR_STATE. A NULL hook:
 * NGS_ERR_ARG. */
int ngs_engine_add_hook(ngs_engine *engine, unsigned event_mask, ngs_hook_fn hook, void *user);

/* Asks the running simulation to stop, or the next one when none runs yet (safe from
 * any thread and from a signal handler); a run's end clears the request. */
void ngs_engine_interrupt(ngs_engine *engine);

/* Text of the last error, "" when none. Valid until the next call on this engine. */
const char *ngs_engine_last_error(const ngs_engine *engine);

/* "ngspice-39 (shared library, created ...)" */
const char *ngs_engine_ngspice_version(const ngs_engine *engine);

/* ---- runs --------------------------------------------------------------------------- */
typedef enum {
    NGS_MEMORY_AUTO = 0, /* flat unless the netlist reads vectors after an analysis */
    NGS_MEMORY_FLAT = 1, /* always `.save none` (scripts reading vectors will see none) */
    NGS_MEMORY_KEEP = 2  /* never: ngspice keeps its vectors, as `ngspice -b` would */
} ngs_memory_mode;

typedef struct ngs_run_options {
    const char *output_path;  /* HDF5 file to write (an existing HDF5 file is replaced, any
                                 other file refused: NGS_ERR_IO); NULL: events only */
    const char *group;        /* group for this run in the file; NULL: "run". One level:
                                 '/' is stored as %2F and '%' as %25 (as vector names) */
    int append;               /* 1: add the group to an existing file */
    ngs_codec codec;
    int level;                /* codec level; 0 = codec default */
    const char *save;         /* vectors to keep, space-separated ("v(out) i(vdd)"); NULL = all */
    ngs_memory_mode memory;
    int swmr;                 /* 1 (default): readers can follow the file live (HDF5 SWMR) */
    double flush_interval_s;  /* data reaches the file at least this often (default 1 s;
                                 <= 0: only as each plot ends) */
    /* 0 = none. Past it ngspice is halted (NGS_ERR_TIMEOUT, data so far kept); a
     * .control loop that halt cannot reach is abandoned 2 s later: the run returns,
     * but a loop that never calls back (only `let`, `setseed`) keeps a core until the
     * process ends. */
    double timeout_s;
    size_t chunk_points;      /* points per HDF5 chunk; 0 = automatic */
    int encoder_threads;      /* threads compressing chunks; 0 = cores - 1 */
    ngs_lossy_options lossy;  /* codec bounded / bitround */
    /* Result cache: NULL = none; "DIR" (local store); "redis://[user:pass@]host:port/db"
     * (the default local store $XDG_CACHE_HOME/ngscale first, then Redis); or
     * "DIR,redis://...". Looked up before ngspice runs; complete runs are stored. */
    const char *cache;
} ngs_run_options;

void ngs_run_options_init(ngs_run_options *options);

typedef struct ngs_run_result {
    int status;              /* same as the run function's return value */
    int nplots;
    uint64_t points;         /* over all plots */
    double wall_s;
    int memory_flat;         /* 1 when `.save none` was used */
    char memory_reason[256]; /* why memory was (not) kept flat */
    int cache_hit;           /* 1: replayed from the cache, nothing simulated */
    char cache_note[384];    /* what the cache did ("cache hit (local...)", "not cached: ...") */
    char warning[384];       /* what the user should hear although the run completed: no
                                analysis ran, --save names matched nothing; "" if none */
} ngs_run_result;

/* Runs a netlist file: its analysis cards, or its .control blocks unchanged.
 * One run at a time per engine: a run function called while another runs on the
 * same engine (from another thread, or from one of its hooks) returns NGS_ERR_STATE
 * at once and leaves that run alone. Use one engine per thread to run in parallel.
 * Options are checked before ngspice runs: an empty output_path, an unknown codec or
 * memory mode, a level outside the codec's range, lossy bounds that are not positive
 * (or given to a lossless codec), chunk_points over 16777216, a negative timeout or
 * encoder_threads is NGS_ERR_ARG with the reason in ngs_engine_last_error, and nothing is written.
 * result may be NULL; when given, it is filled whatever the outcome. A NULL engine,
 * a NULL or empty netlist_path, NULL lines or nlines 0 is NGS_ERR_ARG (the error says
 * which). */
int ngs_run_file(ngs_engine *engine, const char *netlist_path,
                 const ngs_run_options *options, ngs_run_result *result);

/* Runs a netlist given as lines (first line is the title). Relative .include paths
 * resolve against base_dir (NULL: the current directory). */
int ngs_run_lines(ngs_engine *engine, const char *const *lines, size_t nlines,
                  const char *base_dir, const ngs_run_options *options,
                  ngs_run_result *result);

/* ---- batches: many jobs on a pool of engines ------------------------------------- */
typedef struct ngs_job {
    const char *netlist;                /* netlist file */
    const char *label;                  /* name in the summary; NULL: derived */
    size_t nparams;                     /* .param overrides, values as SPICE text ("1k") */
    const char *const *param_names;
    const char *const *param_values;
    const char *temp;                   /* a number in C; NULL or "": the netlist's own */
    long long seed;                     /* < 0: the netlist's own; else `.options seed=`, 1..NGS_SEED_MAX */
} ngs_job;

#define NGS_SEED_MAX 2147483647LL /* ngspice ignores `.options seed` outside 1..2^31-1 */

/* A job of netlist with no overrides (seed -1: the netlist's own). */
void ngs_job_init(ngs_job *job, const char *netlist);

#define NGS_BATCH_JOBS_MAX 1024

typedef struct ngs_batch_options {
    int jobs;                 /* parallel instances, 1..NGS_BATCH_JOBS_MAX; 0 = number of cores */
    const char *output_path;  /* required: one HDF5 file, one group per job + /summary;
                                 an HDF5 file there is replaced when ngs_batch_run ends
                                 (interrupted too), and left as it was when the run
                                 cannot write (written beside it, then renamed) */
    ngs_codec codec;
    int level;
    const char *save;
    ngs_memory_mode memory;
    double timeout_s;         /* per job; 0 = none */
    const char *cache;        /* as in ngs_run_options; consulted per job */
    ngs_lossy_options lossy;
} ngs_batch_options;

typedef struct ngs_batch_progress {
    size_t total;
    size_t done;              /* jobs that ended on their own: complete, failed or timed out */
    size_t failed;            /* of those, the ones that did not complete */
    size_t interrupted;       /* stopped by ngs_batch_interrupt while running (kept, "interrupted") */
    size_t cache_hits, running;
    double elapsed_s, eta_s;  /* eta_s < 0: unknown yet */
    char warning[384];        /* the latest job warning: cache trouble (unusable store,
                                 Redis down: jobs ran without that tier), no analysis ran,
                                 --save names matching nothing; before the first, the
                                 batch's own: jobs' seeds for a netlist that draws no
                                 random numbers; "" if none yet */
} ngs_batch_progress;

typedef void (*ngs_batch_progress_fn)(const ngs_batch_progress *progress, void *user);

typedef struct ngs_batch ngs_batch;

void ngs_batch_options_init(ngs_batch_options *options);
/* ngs_batch_destroy stops a run under way on another thread and waits for it (its
 * file keeps the finished jobs); one ngs_batch_run at a time per batch, a second is
 * NGS_ERR_STATE. */
/* Checks the options (as each job's run would: codec, level, lossy, memory, timeout,
 * and a cache spec or directory that is not a cache) and starts the instances.
 * NGS_ERR_ARG for a bad option, before any instance starts. On any failure *batch is
 * still set (NULL only when options or output_path is missing or memory ran out):
 * read ngs_batch_last_error, then ngs_batch_destroy; ngs_batch_run on it returns
 * NGS_ERR_STATE. */
int ngs_batch_create(ngs_batch **batch, const ngs_batch_options *options);
void ngs_batch_destroy(ngs_batch *batch);
/* Runs every job; returns NGS_OK when all succeeded, NGS_ERR_SIMULATION when some
 * failed (each recorded in /summary with its message; ngs_batch_last_error counts them), NGS_ERR_INTERRUPTED after
 * ngs_batch_interrupt (finished jobs kept, the rest marked "not run"), or an I/O
 * error for the output file. */
int ngs_batch_run(ngs_batch *batch, const ngs_job *jobs, size_t njobs,
                  ngs_batch_progress_fn progress, void *user, ngs_batch_progress *final);
/* Stops the running batch, or the next one when none runs yet; safe from any thread
 * and from a signal handler. */
void ngs_batch_interrupt(ngs_batch *batch);
/* The reason of the last failure of create or run, "" when the last run had none. */
const char *ngs_batch_last_error(const ngs_batch *batch);

#ifdef __cplusplus
}
#endif
#endif /* NGSCALE_H */
