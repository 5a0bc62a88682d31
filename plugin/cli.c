/*
 * cli.c - the `ngscale` command.
 *
 *   ngscale run circuit.cir -o out.h5 [options]   simulate, streaming into HDF5
 *   ngscale info out.h5                           what a file holds
 *
 * Exit codes are documented in usage(); they let scripts tell a bad netlist from
 * a full disk from an interrupted run.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "ngscale.h"
#include "hooks/clock.h"
#include "storage/h5info.h"
#include "storage/h5writer.h"
#include "cache/cache.h"
#include "cache/cache_key.h"
#include "gpu/spectrum.h"
#include "gpu/spectrum_h5.h"
#include "storage/convert.h"
#include "plugin/deck.h"
#include "plugin/runcache.h"
#include "storage/pool.h"

enum {
    EXIT_OK = 0,
    EXIT_SIM = 1,      /* netlist rejected, analysis failed, ngspice exited */
    EXIT_USAGE = 2,
    EXIT_IO = 3,       /* file, HDF5 or compression error */
    EXIT_NGSPICE = 4,  /* libngspice missing or unusable */
    EXIT_TRUNCATED = 5,/* convert, export: the input was truncated, incomplete or held a
                          plot that could not be read; what it held was kept */
    EXIT_TIMEOUT = 124,
    EXIT_INTERRUPTED = 130
};

static void usage(FILE *f)
{
    fputs(
        "usage: ngscale <command> [options]\n"
        "\n"
        "Commands:\n"
        "  run NETLIST -o OUT.h5   run NETLIST with ngspice (its analysis cards, or its\n"
        "                          .control block unchanged) and stream every analysis\n"
        "                          into compressed HDF5 while it runs\n"
        "  batch NETLIST... -o OUT.h5   run many jobs on parallel ngspice instances:\n"
        "                          one per netlist given, or one per row of --params, or\n"
        "                          --monte-carlo N runs; one group per job plus /summary\n"
        "  convert IN.raw OUT.h5   a RAW file (ngspice, Xyce, LTspice; binary or ASCII; any\n"
        "                          size, in bounded memory) to the same HDF5 schema\n"
        "                          (--codec, --group, --append... as for run); an HDF5\n"
        "                          file at OUT.h5 is replaced only when the conversion\n"
        "                          finishes (an error or Ctrl-C leaves it as it was), an\n"
        "                          input or any other file is refused; --append adds in\n"
        "                          place\n"
        "  export IN.h5 OUT.raw    back to RAW for tools that need it (--group G); each\n"
        "                          plot binary or ASCII as the RAW file it came from was\n"
        "                          (binary from run/batch), or all --ascii or --binary;\n"
        "                          RAW -> HDF5 -> RAW gives ngspice's bytes back\n"
        "  spectrum FILE.h5 --vector V   spectra and THD/SNR/SINAD/SFDR/ENOB of a transient\n"
        "                          vector of every run (or batch job) in FILE; written\n"
        "                          back into FILE and printed as a table\n"
        "  cache stats|list|clear|gc [--cache SPEC]   inspect or tidy the result cache\n"
        "  info FILE.h5            list runs, plots, vectors, points, stored size and\n"
        "                          compression ratio of an ngscale HDF5 file\n"
        "\n"
        "Options of run:\n"
        "  -o, --output FILE       HDF5 file to write (required); an HDF5 file there is\n"
        "                          replaced unless a program has it open; an input or any\n"
        "                          other file is refused\n"
        "      --codec NAME        zstd (default; shuffle + zstd, HDF5 filter 32015: readers\n"
        "                          need the ngscale plugin in HDF5_PLUGIN_PATH), deflate\n"
        "                          (shuffle + gzip: any HDF5 reader), none; lossy with a\n"
        "                          guaranteed error: bounded (filter 52807, plugin\n"
        "                          libh5zbounded.so) or bitround (no plugin needed)\n"
        "      --abs-err E         bounded: every sample within E of the simulated value\n"
        "      --rel-err R         bounded: within R x the range of each chunk; bitround:\n"
        "                          keep enough bits for a relative error R\n"
        "      --bits N            bitround: mantissa bits kept (default 24; or --rel-err)\n"
        "                          (bounded without --abs-err/--rel-err: a default far\n"
        "                          below ngspice's vntol/abstol; time/frequency stay exact)\n"
        "      --level N           compression level: zstd -7..-1 (fast) or 1..22, default\n"
        "                          -1 (as small as 1 on simulation data, 1.5x as fast);\n"
        "                          deflate 1..9, default 4\n"
        "      --save 'V1 V2 ...'  keep only these vectors, named as in RAW files or in\n"
        "                          ngspice (v(out) or out, i(vdd) or vdd#branch); the scale\n"
        "                          (time, frequency, sweep) is always kept\n"
        "      --memory MODE       auto (default): flat memory (`.save none`) unless the\n"
        "                          netlist reads vectors after an analysis (.meas, .print,\n"
        "                          let/print/meas/write in .control); flat; keep\n"
        "      --timeout SECONDS   stop the run after this long (exit 124)\n"
        "      --group NAME        group of this run in the file (default: run)\n"
        "      --append            add the run to an existing ngscale file\n"
        "      --chunk POINTS      points per HDF5 chunk (default: automatic)\n"
        "      --flush SECONDS     completed chunks reach the file at least this often\n"
        "                          (default 1); points of a chunk still filling wait at\n"
        "                          most 10 times as long\n"
        "      --no-swmr           do not let readers follow the file live (SWMR)\n"
        "      --log FILE          write ngspice's messages to FILE instead of the terminal\n"
        "      --cache SPEC        consult a result cache before simulating and store\n"
        "                          complete runs: DIR, redis://[user:pass@]host:port/db\n"
        "                          (after the local store ~/.cache/ngscale), or\n"
        "                          DIR,redis://...; a hit writes the same file\n"
        "  -q, --quiet             do not show ngspice's standard output or progress\n"
        "\n"
        "Options of batch (and, for each job as for run: --codec, --level, --abs-err,\n"
        "--rel-err, --bits, --save, --memory, --timeout, --cache):\n"
        "  -o, --output FILE       HDF5 file to write (required); an HDF5 file there is\n"
        "                          replaced when the batch ends (Ctrl-C too: the finished\n"
        "                          jobs); an error or a kill leaves it as it was\n"
        "  -j, --jobs N            parallel ngspice instances (default: number of cores)\n"
        "      --params FILE.csv   one job per row; the header names .param parameters,\n"
        "                          and the columns temp, seed and label are special (an\n"
        "                          empty temp, seed or label cell keeps the netlist's own)\n"
        "      --monte-carlo N     N jobs of the netlist, job i with `.options seed=S+i`\n"
        "      --seed S            first seed (default 1; seeds are 1..2147483647)\n"
        "      --spectrum V        run `spectrum --vector V` on the output at the end\n"
        "  -q, --quiet             no progress line, nor the closing count when all went\n"
        "                          well (warnings and errors are still said)\n"
        "\n"
        "Options of spectrum:\n"
        "      --vector V          v(out), out, i(vdd), vdd#branch... (required)\n"
        "      --window W          rect, hann, hamming, blackman, blackman-harris (default),\n"
        "                          flattop, kaiser[:beta]\n"
        "      --fund F            fundamental in Hz (default: the largest tone)\n"
        "      --periods P         analyse the last P whole periods of the fundamental (at\n"
        "                          least 2L for the window's lobe L: rect 2, hann 4,\n"
        "                          blackman-harris 8; the default: as many as fit)\n"
        "      --harmonics N       harmonics 2..N count as distortion (default 9)\n"
        "      --points N          uniform points after resampling (default: automatic)\n"
        "      --resample M        cubic (default) or linear\n"
        "      --backend B         auto (default), cpu (FFTW) or gpu (cuFFT)\n"
        "      --run GROUP         only this run or job (repeatable); by default every run\n"
        "                          whose plot holds the vector, those cut short skipped\n"
        "      --plot NAME         the plot to analyse (default: the first transient one)\n"
        "      --no-write          print the table only: FILE is opened read-only and left as it\n"
        "                          was (a read-only file, or one a reader has open)\n"
        "\n"
        "Other options:\n"
        "  -h, --help              this text\n"
        "  -V, --version           versions of ngscale and ngspice\n"
        "\n"
        "Exit status: 0 success; 1 the netlist was rejected, an analysis failed or ngspice\n"
        "exited with an error; 2 usage error; 3 file, HDF5 or compression error;\n"
        "4 libngspice missing or unusable; 5 convert: the RAW input was truncated or a\n"
        "plot header in it corrupt (every complete point and readable plot converted, the\n"
        "run marked incomplete), export: the run exported is\n"
        "not complete (the RAW file holds the points it has); 124 timeout; 130 interrupted\n"
        "(SIGINT or SIGTERM; a second one more than 2 s later kills at once).\n"
        "batch exits 1 when any job failed; every job's status is in /summary.\n"
        "An unfinished run leaves a readable file whose run status says 'incomplete'.\n"
        "\n"
        "Environment: NGSCALE_LIBNGSPICE (path of libngspice.so), NGSCALE_CACHE_SIZE (cap\n"
        "of the local cache, least recently used entries go first; default 10G),\n"
        "HDF5_PLUGIN_PATH (for other readers of zstd files: the directory holding\n"
        "libh5zzstd.so).\n",
        f);
}

static int exit_code(int status)
{
    switch (status) {
    case NGS_OK: return EXIT_OK;
    case NGS_ERR_ARG: return EXIT_USAGE;
    case NGS_ERR_IO: case NGS_ERR_HDF5: case NGS_ERR_CODEC: case NGS_ERR_NOMEM:
    case NGS_ERR_FORMAT: return EXIT_IO;
    case NGS_ERR_LIBNGSPICE: return EXIT_NGSPICE;
    case NGS_ERR_TIMEOUT: return EXIT_TIMEOUT;
    case NGS_ERR_INTERRUPTED: return EXIT_INTERRUPTED;
    default: return EXIT_SIM;
    }
}

/* ------------------------------------------------------------ progress -- */

typedef struct {
    int show_progress; /* stderr is a terminal */
    int quiet;
    FILE *log;
    int line_shown;    /* a progress line is on the terminal */
    double last_draw;
    char plot[64];
    double percent;
    unsigned long long points;
} cli_state;

static void clear_progress(cli_state *s)
{
    if (s->line_shown) {
        fputs("\r\033[K", stderr);
        s->line_shown = 0;
    }
}

static void draw_progress(cli_state *s, int force)
{
    double t = ngs_now_s();
    if (!s->show_progress || (!force && t - s->last_draw < 0.1)) return;
    s->last_draw = t;
    if (s->percent >= 0)
        fprintf(stderr, "\r\033[K%s %5.1f%%  %llu points", s->plot, s->percent, s->points);
    else
        fprintf(stderr, "\r\033[K%s  %llu points", s->plot, s->points);
    s->line_shown = 1;
}

static int cli_hook(const ngs_event *ev, void *user)
{
    cli_state *s = user;
    switch (ev->kind) {
    case NGS_EV_MESSAGE:
        if (s->log) {
            fprintf(s->log, "%s\n", ev->text);
        } else if (ev->is_error) {
            clear_progress(s);
            fprintf(stderr, "%s\n", ev->text);
        } else if (!s->quiet) {
            clear_progress(s);
            fprintf(stdout, "%s\n", ev->text);
            fflush(stdout);
        }
        break;
    case NGS_EV_PLOT_BEGIN:
        snprintf(s->plot, sizeof s->plot, "%s", ev->plot->name);
        s->percent = -1;
        s->points = 0;
        draw_progress(s, 1);
        break;
    case NGS_EV_ROWS:
        s->points = ev->first_row + ev->nrows;
        draw_progress(s, 0);
        break;
    case NGS_EV_PROGRESS:
        s->percent = ev->percent;
        draw_progress(s, 0);
        break;
    case NGS_EV_PLOT_END:
        s->points = ev->total_rows;
        draw_progress(s, 1);
        clear_progress(s);
        break;
    default:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------ run -- */

/* What a first SIGINT/SIGTERM stops cleanly: the run's engine or the batch. */
static ngs_engine *volatile g_engine;
static ngs_batch *volatile g_batch;
static volatile sig_atomic_t g_stop_requested;
static struct timespec g_stop_at;

#define STOP_REPEAT_S 2 /* a second signal within this is the same request */

/* The first signal stops cleanly. One within STOP_REPEAT_S is the same request, not
 * a new one: timeout(1) and a kill of the process group deliver two at once, which
 * used to kill ngscale mid-flush and leave a file HDF5 would not open. A signal
 * after that kills at once (the user insists). */
static void on_stop_signal(int sig)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!g_stop_requested) {
        g_stop_at = now; /* before the flag; the mask keeps a second signal out meanwhile */
        g_stop_requested = 1;
        if (g_engine) ngs_engine_interrupt(g_engine); /* only atomic stores */
        if (g_batch) ngs_batch_interrupt(g_batch);
        return;
    }
    if ((double)(now.tv_sec - g_stop_at.tv_sec) + (double)(now.tv_nsec - g_stop_at.tv_nsec) * 1e-9 <
        STOP_REPEAT_S)
        return;
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Installed before the instances start: a signal while they start (each makes a
 * private directory) only asks to stop, which the caller checks once they exist. */
static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a file copy or read as instances start goes on */
    g_stop_requested = 0;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Only once the private directories are gone: a signal between the run's end and
 * the engine's destroy, with the default action back, killed ngscale and left them. */
static void default_stop_signals(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    g_engine = NULL;
    g_batch = NULL;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && end != s && *end == '\0' && isfinite(*out); /* "nan" passed every "d <= 0" */
}

/* The path with its directory resolved (the file itself may not exist yet), or NULL. */
static char *canonical_path(const char *path)
{
    char *copy = strdup(path), *copy2 = strdup(path), *dir, *out = NULL;
    if (copy && copy2 && (dir = realpath(dirname(copy), NULL)) != NULL) {
        const char *base = basename(copy2);
        if ((out = malloc(strlen(dir) + strlen(base) + 2)) != NULL) sprintf(out, "%s/%s", dir, base);
        free(dir);
    }
    free(copy);
    free(copy2);
    return out;
}

/* Whether two paths name one file: the same inode, or (one not there yet) the same
 * place once their directories are resolved. */
static int names_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    char *ca, *cb;
    int same;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    ca = canonical_path(a);
    cb = canonical_path(b);
    same = ca && cb && strcmp(ca, cb) == 0;
    free(ca);
    free(cb);
    return same;
}

/* Refuses an output that is one of the inputs, or an existing file that is not HDF5
 * (a netlist given as -o by mistake): either would be overwritten. An existing HDF5
 * output is replaced (run --append adds to it). */
static int output_is_safe(const char *cmd, const char *out, const char *const *inputs, size_t n)
{
    struct stat so;
    if (stat(out, &so) != 0) return 1; /* a new file */
    for (size_t i = 0; i < n; i++)
        if (inputs[i] && names_same_file(out, inputs[i])) {
            fprintf(stderr, "ngscale %s: the output %s is also an input (%s): not overwriting it\n", cmd, out,
                    inputs[i]);
            return 0;
        }
    if (ngs_h5_is_foreign_file(out)) { /* said here too: before a batch starts its instances */
        fprintf(stderr, "ngscale %s: %s exists and is not an HDF5 file: not overwriting it (remove it first)\n",
                cmd, out);
        return 0;
    }
    return 1;
}

/* A whole number in lo..hi, also written as a float ("7.0", "1e4": spreadsheets and
 * pandas write those); "2x", "1.5" and "" are refused, not cut short. */
static int parse_integer(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (end != s && (*end == '.' || *end == 'e' || *end == 'E')) {
        double d;
        if (!parse_double(s, &d) || d != floor(d) || d < (double)lo || d > (double)hi) return 0;
        v = (long long)d;
    } else if (errno != 0 || end == s || *end != '\0') {
        return 0;
    }
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* Options run and batch share (same letters in both getopt tables). Returns 1 when
 * c was one of them, 0 when not, -1 on a bad value (message printed). */
typedef struct {
    ngs_codec *codec;
    int *level;
    const char **save, **cache;
    ngs_memory_mode *memory;
    double *timeout_s;
    ngs_lossy_options *lossy;
} shared_options;

/* What parse_shared cannot see option by option: the level and the lossy options
 * against the codec (the writer's own check, so that both refuse the same). */
static int check_shared(const shared_options *so)
{
    ngs_h5_options ho;
    char why[256];
    ngs_h5_options_init(&ho);
    ho.codec = *so->codec;
    ho.level = *so->level;
    ho.lossy = *so->lossy;
    if (ngs_h5_options_check(&ho, why, sizeof why) != NGS_OK) {
        fprintf(stderr, "ngscale: %s\n", why);
        return -1;
    }
    if (*so->cache) { /* a wrong spec is refused before anything is written */
        char err[768];
        if (ngs_run_cache_check(*so->cache, err, sizeof err) != NGS_OK) {
            fprintf(stderr, "ngscale: --cache: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static int parse_shared(int c, const char *arg, const shared_options *so)
{
    double d;
    long long n;
    switch (c) {
    case 'c':
        if (ngs_codec_from_name(arg) < 0) {
            fprintf(stderr, "ngscale: unknown codec '%s' (zstd, deflate, none, bounded or bitround)\n", arg);
            return -1;
        }
        *so->codec = (ngs_codec)ngs_codec_from_name(arg);
        return 1;
    case 'l':
        if (!parse_integer(arg, -7, 22, &n) || n == 0) {
            fprintf(stderr, "ngscale: --level must be -7..-1 or 1..22 (deflate: 1..9)\n");
            return -1;
        }
        *so->level = (int)n;
        return 1;
    case 's': *so->save = arg; return 1;
    case 'C': *so->cache = arg; return 1;
    case 'A':
    case 'R':
        if (!parse_double(arg, &d) || d <= 0) {
            fprintf(stderr, "ngscale: --%s needs a positive number\n", c == 'A' ? "abs-err" : "rel-err");
            return -1;
        }
        if (c == 'A') so->lossy->abs_err = d; else so->lossy->rel_err = d;
        return 1;
    case 'B':
        if (!parse_integer(arg, 1, 52, &n)) {
            fprintf(stderr, "ngscale: --bits must be 1..52 mantissa bits\n");
            return -1;
        }
        so->lossy->bits = (int)n;
        return 1;
    case 'm':
        if (strcmp(arg, "auto") == 0) *so->memory = NGS_MEMORY_AUTO;
        else if (strcmp(arg, "flat") == 0) *so->memory = NGS_MEMORY_FLAT;
        else if (strcmp(arg, "keep") == 0) *so->memory = NGS_MEMORY_KEEP;
        else {
            fprintf(stderr, "ngscale: --memory must be auto, flat or keep\n");
            return -1;
        }
        return 1;
    case 't':
        if (!parse_double(arg, &d) || d <= 0) {
            fprintf(stderr, "ngscale: --timeout needs a positive number of seconds\n");
            return -1;
        }
        *so->timeout_s = d;
        return 1;
    default:
        return 0;
    }
}

/* A netlist must be a readable file: a directory passes access(R_OK) and would only
 * fail later, as a job, after the others had started. EXIT_OK, or the exit status. */
static int netlist_check(const char *cmd, const char *path)
{
    struct stat st;
    if (!*path) { /* an unset shell variable, say: "cannot read : No such file" said little */
        fprintf(stderr, "ngscale %s: a netlist path is empty\n", cmd);
        return EXIT_USAGE;
    }
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "ngscale %s: cannot read %s: %s\n", cmd, path, strerror(errno));
        return EXIT_IO;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ngscale %s: %s is a directory, not a netlist\n", cmd, path);
        return EXIT_IO;
    }
    return EXIT_OK;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"codec", required_argument, 0, 'c'},
        {"level", required_argument, 0, 'l'},  {"save", required_argument, 0, 's'},
        {"memory", required_argument, 0, 'm'}, {"timeout", required_argument, 0, 't'},
        {"group", required_argument, 0, 'g'},  {"append", no_argument, 0, 'a'},
        {"chunk", required_argument, 0, 'k'},  {"flush", required_argument, 0, 'f'},
        {"no-swmr", no_argument, 0, 'n'},      {"log", required_argument, 0, 'L'},
        {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
        {"cache", required_argument, 0, 'C'},  {"abs-err", required_argument, 0, 'A'},
        {"rel-err", required_argument, 0, 'R'}, {"bits", required_argument, 0, 'B'},
        {0, 0, 0, 0}};
    ngs_run_options o;
    ngs_run_result res;
    ngs_engine_config cfg;
    ngs_engine *e = NULL;
    cli_state st;
    const char *log_path = NULL, *netlist;
    int c, rc;
    double d;
    long long n;

    ngs_run_options_init(&o);
    memset(&st, 0, sizeof st);
    shared_options shared = {&o.codec, &o.level, &o.save, &o.cache, &o.memory, &o.timeout_s, &o.lossy};
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o.output_path = optarg; break;
        case 'g': o.group = optarg; break;
        case 'a': o.append = 1; break;
        case 'k':
            if (!parse_integer(optarg, 1, 1 << 24, &n)) {
                fprintf(stderr, "ngscale: --chunk needs a number of points (1..16777216)\n");
                return EXIT_USAGE;
            }
            o.chunk_points = (size_t)n;
            break;
        case 'f':
            if (!parse_double(optarg, &d) || d <= 0) {
                fprintf(stderr, "ngscale: --flush needs a positive number of seconds\n");
                return EXIT_USAGE;
            }
            o.flush_interval_s = d;
            break;
        case 'n': o.swmr = 0; break;
        case 'L': log_path = optarg; break;
        case 'q': st.quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: {
            int r = parse_shared(c, optarg, &shared);
            if (r == 1) break;
            if (r == 0) fprintf(stderr, "Try 'ngscale --help'.\n");
            return EXIT_USAGE;
        }
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "ngscale run: give exactly one netlist (see 'ngscale --help')\n");
        return EXIT_USAGE;
    }
    netlist = argv[optind];
    if (!o.output_path) {
        fprintf(stderr, "ngscale run: -o OUT.h5 is required\n");
        return EXIT_USAGE;
    }
    if (check_shared(&shared) != 0) return EXIT_USAGE;
    if ((rc = netlist_check("run", netlist)) != EXIT_OK) return rc;
    {
        const char *inputs[] = {netlist, log_path};
        if (!output_is_safe("run", o.output_path, inputs, 2)) return EXIT_USAGE;
    }
    if (log_path) { /* the output check above saw an existing output only */
        const char *clash = names_same_file(log_path, netlist) ? "netlist"
                          : names_same_file(log_path, o.output_path) ? "output file" : NULL;
        if (clash) {
            fprintf(stderr, "ngscale run: --log %s names the %s: not overwriting it\n", log_path, clash);
            return EXIT_USAGE;
        }
    }
    if (log_path) {
        st.log = fopen(log_path, "w");
        if (!st.log) {
            fprintf(stderr, "ngscale: cannot write log %s: %s\n", log_path, strerror(errno));
            return EXIT_IO;
        }
    }
    st.show_progress = !st.quiet && isatty(STDERR_FILENO);

    ngs_engine_config_init(&cfg);
    catch_stop_signals();
    rc = ngs_engine_create(&e, &cfg);
    if (rc == NGS_OK) g_engine = e;
    if (g_stop_requested) rc = NGS_ERR_INTERRUPTED; /* before anything ran (or what failed was cut short) */
    if (rc != NGS_OK) {
        g_engine = NULL;
        if (rc == NGS_ERR_INTERRUPTED)
            fprintf(stderr, "ngscale: interrupted before the run started; no file written\n");
        else
            fprintf(stderr, "ngscale: %s\n", e ? ngs_engine_last_error(e) : ngs_strerror(rc));
        ngs_engine_destroy(e);
        default_stop_signals();
        if (st.log) fclose(st.log);
        return exit_code(rc);
    }
    /* progress events cost ngspice work at every step: asked for only when shown */
    ngs_engine_add_hook(e, st.show_progress ? NGS_EV_ALL : NGS_EV_ALL & ~NGS_EV_PROGRESS, cli_hook, &st);

    rc = ngs_run_file(e, netlist, &o, &res);
    clear_progress(&st);
    g_engine = NULL; /* nothing left to stop; the handler stays until the engine is gone */

    if (res.cache_note[0] && (!st.quiet || strstr(res.cache_note, "warning")))
        fprintf(stderr, "ngscale: %s\n", res.cache_note);
    if (res.warning[0]) fprintf(stderr, "ngscale: warning: %s: %s\n", netlist, res.warning);
    if (rc == NGS_OK) {
        if (!st.quiet)
            fprintf(stderr, "ngscale: %d plot%s, %llu points in %.2f s -> %s (%s)\n",
                    res.nplots, res.nplots == 1 ? "" : "s", (unsigned long long)res.points,
                    res.wall_s, o.output_path, res.cache_hit ? "replayed from the cache" : res.memory_reason);
    } else {
        fprintf(stderr, "ngscale: %s: %s\n", netlist, ngs_engine_last_error(e)[0]
                                                         ? ngs_engine_last_error(e)
                                                         : ngs_strerror(rc));
        if (res.nplots > 0 && rc == NGS_ERR_IO) /* a write failed: the file was frozen */
            fprintf(stderr, "ngscale: %s keeps what its last flush wrote (its run says incomplete): 'ngscale "
                            "info' and SWMR readers open it as it is, any reader after 'h5clear -s %s'\n",
                    o.output_path, o.output_path);
        else if (res.nplots > 0)
            fprintf(stderr, "ngscale: %s keeps the %d plot%s written so far (run status: %s)\n",
                    o.output_path, res.nplots, res.nplots == 1 ? "" : "s",
                    rc == NGS_ERR_INTERRUPTED || rc == NGS_ERR_TIMEOUT ? "incomplete" : "failed");
    }
    ngs_engine_destroy(e);
    default_stop_signals();
    if (st.log) fclose(st.log);
    return exit_code(rc);
}

/* ------------------------------------------------------------- spectrum -- */

static int spectrum_of(const char *path, const ngs_spectrum_file_options *options)
{
    char err[1024];
    ngs_spectrum_file_options so = *options;
    int rc;
    /* a signal stops it before the file is written; writing, once begun, ends first
     * (a kill mid-write leaves a file HDF5 will not open without h5clear) */
    catch_stop_signals();
    so.stop = &g_stop_requested;
    rc = ngs_spectrum_file(path, &so, stdout, err, sizeof err);
    default_stop_signals();
    /* the library's own messages start "spectrum: ": said once */
    if (rc != NGS_OK)
        fprintf(stderr, "ngscale spectrum: %s\n", strncmp(err, "spectrum: ", 10) == 0 ? err + 10 : err);
    return rc;
}

/* ---------------------------------------------------------------- batch -- */

typedef struct {
    char **cells;    /* rows x cols, row-major; row 0 is the header */
    size_t *lineno;  /* each row's line in the file, for messages */
    size_t rows, cols;
    size_t ncells;   /* cells allocated (a bad line's too) */
    size_t cells_cap;
} csv_table;

/* Splits one line into cells: commas separate; a cell in double quotes may hold
 * commas, and "" stands for a quote; blanks around a cell are dropped. Returns the
 * number of cells (appended to t's), or -1 with a reason. */
static long split_csv_line(const char *p, csv_table *t, const char **why)
{
    long count = 0;
    for (;;) {
        const char *end;
        char *cell, *w, **grown;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '"') { /* the cell's extent first: memory and time linear in the line */
            for (end = p + 1; *end && !(*end == '"' && end[1] != '"'); end += *end == '"' ? 2 : 1) {}
            if (!*end) return *why = "a quote is not closed", -1;
        } else {
            end = p + strcspn(p, ",");
        }
        if (!(cell = w = malloc((size_t)(end - p) + 1))) return *why = "out of memory", -1;
        if (*p == '"') {
            for (p++; p < end; p++) *w++ = *p == '"' ? *++p : *p; /* "" -> " */
            for (p++; *p == ' ' || *p == '\t'; p++) {}
            if (*p && *p != ',') {
                free(cell);
                return *why = "text after a closing quote", -1;
            }
        } else {
            while (p < end) *w++ = *p++;
            while (w > cell && (w[-1] == ' ' || w[-1] == '\t')) w--;
        }
        *w = '\0';
        if (t->ncells == t->cells_cap) {
            size_t more = t->cells_cap ? 2 * t->cells_cap : 64;
            if (!(grown = realloc(t->cells, more * sizeof *t->cells))) {
                free(cell);
                return *why = "out of memory", -1;
            }
            t->cells = grown;
            t->cells_cap = more;
        }
        t->cells[t->ncells++] = cell;
        count++;
        if (*p != ',') return count;
        p++;
    }
}

/* One line of a CSV into t (a header or a row), or -1 with err set. */
static int csv_add_line(csv_table *t, char *p, size_t lineno, size_t *blank_tail, const char *path, char *err,
                        size_t errlen)
{
    const char *why = NULL;
    size_t *lines;
    long n;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '#') return 0;
    if (!*p) {
        /* in a one-column table a blank line is that column's empty cell, as a
         * spreadsheet writes it (skipped, its job was lost without a word);
         * blank lines at the end are no rows */
        if (t->rows == 0 || t->cols != 1) return 0;
        ++*blank_tail;
    } else {
        *blank_tail = 0;
    }
    n = split_csv_line(p, t, &why);
    if (n < 0) {
        snprintf(err, errlen, "%s: line %zu: %s", path, lineno, why);
        return -1;
    }
    /* a trailing comma (some exporters write one) adds no column */
    while (n > 1 && !*t->cells[t->ncells - 1] && (t->rows == 0 || (size_t)n > t->cols)) {
        free(t->cells[--t->ncells]);
        n--;
    }
    if (t->rows == 0) t->cols = (size_t)n;
    if ((size_t)n != t->cols) {
        snprintf(err, errlen, "%s: line %zu has %ld values, the header has %zu", path, lineno, n, t->cols);
        return -1;
    }
    lines = realloc(t->lineno, (t->rows + 1) * sizeof *t->lineno);
    if (!lines) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    t->lineno = lines;
    t->lineno[t->rows++] = lineno;
    return 0;
}

/* A small CSV reader: a header line, then one line per row; '#' comment lines and
 * blank lines skipped (but for a one-column table's empty cells), a UTF-8 byte-order
 * mark ignored, lines of any length, ended by LF, CRLF, or CR alone (the old Mac
 * CSV that Excel still writes); an empty cell is kept as "". A NUL byte (UTF-16, or
 * a spreadsheet's own file) is refused as not text. Errors name the file and line. */
static int read_csv(const char *path, csv_table *t, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0, lineno = 0, blank_tail = 0;
    ssize_t len;
    int rc = -1;
    memset(t, 0, sizeof *t);
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *p = line;
        if (memchr(line, '\0', (size_t)len)) { /* its cells would end at the first: refused as "no row" */
            snprintf(err, errlen, "%s: line %zu: NUL bytes: not a text CSV (UTF-16, or a spreadsheet's own "
                                  "format?): save it as CSV, UTF-8", path, lineno + 1);
            goto out;
        }
        if (lineno == 0 && strncmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
        if (lineno == 0 && line[len - 1] != '\n' && memchr(line, '\r', (size_t)len)) {
            /* no LF in the whole file: its lines end with CR (read as one header
             * line, it was "needs a header line and at least one row") */
            for (char *cr; *p; p = cr + 1) {
                if ((cr = strchr(p, '\r')) == NULL) cr = p + strlen(p) - 1;
                else *cr = '\0';
                if (csv_add_line(t, p, ++lineno, &blank_tail, path, err, errlen) != 0) goto out;
            }
            continue;
        }
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (csv_add_line(t, p, lineno, &blank_tail, path, err, errlen) != 0) goto out;
    }
    for (; blank_tail > 0; blank_tail--) {
        free(t->cells[--t->ncells]);
        t->rows--;
    }
    if (ferror(f)) snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (t->rows < 2) snprintf(err, errlen, "%s: needs a header line and at least one row", path);
    else rc = 0;
out:
    free(line);
    fclose(f);
    return rc;
}

static void free_csv(csv_table *t)
{
    for (size_t i = 0; i < t->ncells; i++) free(t->cells[i]);
    free(t->cells);
    free(t->lineno);
}

#define BATCH_WARNINGS 5 /* different job warnings said; more are in the jobs' attributes */

typedef struct {
    int tty;
    int quiet;
    char said[BATCH_WARNINGS][sizeof(((ngs_batch_progress *)0)->warning)];
    int nsaid, said_more;
} batch_view;

static int has_digit(const char *s, size_t n)
{
    return strcspn(s, "0123456789") < n;
}

/* Two job warnings are of one kind when, from their "warning" on (a hit's cache note
 * and a miss's differ before it), they differ only in words that hold a digit: byte
 * counts, seconds, keys, ports. */
static int same_kind(const char *a, const char *b)
{
    const char *wa = strstr(a, "warning"), *wb = strstr(b, "warning");
    if (wa && wb) { a = wa; b = wb; }
    for (;;) {
        size_t na = strcspn(a, " "), nb = strcspn(b, " ");
        if (!(has_digit(a, na) && has_digit(b, nb)) && (na != nb || memcmp(a, b, na) != 0)) return 0;
        a += na;
        b += nb;
        if (!*a || !*b) return !*a && !*b;
        a++;
        b++;
    }
}

/* Each kind of job warning once (jobs mostly share theirs), even with -q: they are
 * about what the user asked for (a cache, --save names). */
static void say_batch_warning(batch_view *v, const char *warning)
{
    const char *clear = v->tty && !v->quiet ? "\r\033[K" : "";
    for (int i = 0; i < v->nsaid; i++)
        if (same_kind(v->said[i], warning)) return;
    if (v->nsaid == BATCH_WARNINGS) {
        if (!v->said_more++)
            fprintf(stderr, "%sngscale batch: more warnings: see each job's cache and warning attributes\n", clear);
        return;
    }
    snprintf(v->said[v->nsaid++], sizeof v->said[0], "%s", warning);
    fprintf(stderr, "%sngscale batch: %s%s (said once for the batch)\n", clear,
            strstr(warning, "warning") ? "" : "warning: ", warning);
}

static void batch_progress(const ngs_batch_progress *p, void *user)
{
    batch_view *v = user;
    char eta[32] = "?";
    if (p->warning[0]) say_batch_warning(v, p->warning);
    if (v->quiet || !v->tty) return;
    if (p->eta_s >= 0) snprintf(eta, sizeof eta, "%.0fs", p->eta_s);
    fprintf(stderr, "\r\033[K[%zu/%zu] %zu failed, %zu cache hits, %.1f jobs/s, ETA %s",
            p->done, p->total, p->failed, p->cache_hits,
            p->elapsed_s > 0 ? (double)p->done / p->elapsed_s : 0.0, eta);
}

/* A CSV column that no card of the netlist mentions (a typo, or the wrong netlist)
 * is defined by its .param and used by nothing: every job would run the same
 * circuit. Said as a warning, even with -q: the check reads the deck's text and
 * cannot see a name that ngspice would build at run time. */
static void warn_unused_params(const char *netlist, const char *csv_path, const char *const *names, size_t n)
{
    char err[512];
    int *seen = calloc(n + 1, sizeof *seen);
    if (!seen || ngs_netlist_mentions(netlist, NULL, names, seen, err, sizeof err) != NGS_OK) {
        free(seen);
        return; /* an unreadable netlist is reported by its jobs */
    }
    enum { NAMED = 5 }; /* a wrong netlist leaves every column unused: name a few, count the rest */
    size_t unused = 0;
    for (size_t i = 0; i < n; i++) {
        if (seen[i] || ++unused > NAMED) continue;
        fprintf(stderr, "ngscale batch: warning: %s column '%s' appears nowhere in %s or the files it "
                        "includes: that parameter changes nothing\n", csv_path, names[i], netlist);
    }
    if (unused > NAMED) fprintf(stderr, "ngscale batch: warning: ... and %zu more such columns\n", unused - NAMED);
    free(seen);
}

static int cmd_batch(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'}, {"jobs", required_argument, 0, 'j'},
        {"params", required_argument, 0, 'p'}, {"monte-carlo", required_argument, 0, 'M'},
        {"seed", required_argument, 0, 'S'},   {"codec", required_argument, 0, 'c'},
        {"level", required_argument, 0, 'l'},  {"save", required_argument, 0, 's'},
        {"memory", required_argument, 0, 'm'}, {"timeout", required_argument, 0, 't'},
        {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
        {"cache", required_argument, 0, 'C'},  {"abs-err", required_argument, 0, 'A'},
        {"rel-err", required_argument, 0, 'R'}, {"bits", required_argument, 0, 'B'},
        {"spectrum", required_argument, 0, 'F'}, {0, 0, 0, 0}};
    ngs_batch_options o;
    ngs_batch *b = NULL;
    ngs_batch_progress fin = {0};
    batch_view view;
    csv_table csv = {0};
    const char *params = NULL;
    long long mc = 0, seed0 = 1, n;
    int seed_given = 0;
    ngs_job *jobs = NULL;
    const char **names = NULL;
    char **values = NULL, err[512];
    size_t njobs = 0, nparams = 0;
    int c, rc, temp_col = -1, seed_col = -1, label_col = -1;

    const char *spectrum_vector = NULL;
    ngs_batch_options_init(&o);
    memset(&view, 0, sizeof view);
    shared_options shared = {&o.codec, &o.level, &o.save, &o.cache, &o.memory, &o.timeout_s, &o.lossy};
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o.output_path = optarg; break;
        case 'j':
            if (!parse_integer(optarg, 1, NGS_BATCH_JOBS_MAX, &n)) {
                fprintf(stderr, "ngscale batch: -j needs 1..%d instances\n", NGS_BATCH_JOBS_MAX);
                return EXIT_USAGE;
            }
            o.jobs = (int)n;
            break;
        case 'p':
            if (params) { /* the last one silently winning would drop a whole sweep */
                fprintf(stderr, "ngscale batch: --params is given twice ('%s', '%s'): one CSV per batch\n",
                        params, optarg);
                return EXIT_USAGE;
            }
            if (!*optarg) { /* an unset variable: ": No such file or directory" said little */
                fprintf(stderr, "ngscale batch: --params: the CSV path is empty\n");
                return EXIT_USAGE;
            }
            params = optarg;
            break;
        case 'M':
            if (!parse_integer(optarg, 1, NGS_SEED_MAX, &mc)) {
                fprintf(stderr, "ngscale batch: --monte-carlo needs a whole number of runs, 1..%lld: '%s'\n",
                        NGS_SEED_MAX, optarg);
                return EXIT_USAGE;
            }
            break;
        case 'S':
            seed_given = 1;
            if (!parse_integer(optarg, 1, NGS_SEED_MAX, &seed0)) {
                fprintf(stderr, "ngscale batch: --seed needs a whole number in 1..%lld (ngspice's seeds)\n",
                        NGS_SEED_MAX);
                return EXIT_USAGE;
            }
            break;
        case 'q': view.quiet = 1; break;
        case 'F': spectrum_vector = optarg; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: {
            int r = parse_shared(c, optarg, &shared);
            if (r == 1) break;
            if (r == 0) fprintf(stderr, "Try 'ngscale --help'.\n");
            return EXIT_USAGE;
        }
        }
    }
    if (!o.output_path || optind >= argc) {
        fprintf(stderr, "ngscale batch: give NETLIST... and -o OUT.h5 (see 'ngscale --help')\n");
        return EXIT_USAGE;
    }
    if (check_shared(&shared) != 0) return EXIT_USAGE;
    if (spectrum_vector && !*spectrum_vector) { /* said after the whole batch, it was */
        fprintf(stderr, "ngscale batch: --spectrum needs a vector (e.g. 'v(out)')\n");
        return EXIT_USAGE;
    }
    if ((params || mc) && argc - optind != 1) {
        fprintf(stderr, "ngscale batch: --params and --monte-carlo take exactly one netlist\n");
        return EXIT_USAGE;
    }
    if (params && mc) {
        fprintf(stderr, "ngscale batch: give --params or --monte-carlo, not both (a seed column in "
                        "the CSV seeds each row)\n");
        return EXIT_USAGE;
    }
    if (seed_given && !mc) {
        fprintf(stderr, "ngscale batch: --seed goes with --monte-carlo (a --params CSV has its own seed "
                        "column)\n");
        return EXIT_USAGE;
    }
    if (mc && seed0 > NGS_SEED_MAX - (mc - 1)) {
        fprintf(stderr, "ngscale batch: seeds %lld..%lld go past %lld, ngspice's largest: lower --seed\n",
                seed0, seed0 + (mc - 1), NGS_SEED_MAX);
        return EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++)
        if ((rc = netlist_check("batch", argv[i])) != EXIT_OK) return rc;
    {
        int safe;
        const char **inputs = calloc((size_t)(argc - optind) + 1, sizeof *inputs);
        if (!inputs) return EXIT_IO;
        for (int i = optind; i < argc; i++) inputs[i - optind] = argv[i];
        inputs[argc - optind] = params;
        safe = output_is_safe("batch", o.output_path, inputs, (size_t)(argc - optind) + 1);
        free(inputs);
        if (!safe) return EXIT_USAGE;
    }
    if (params) {
        if (read_csv(params, &csv, err, sizeof err) != 0) {
            fprintf(stderr, "ngscale batch: %s\n", err);
            free_csv(&csv);
            return EXIT_USAGE;
        }
        names = calloc(csv.cols + 1, sizeof *names); /* NULL-terminated */
        for (size_t k = 0; names && k < csv.cols; k++) {
            const char *h = csv.cells[k];
            if (!*h) {
                snprintf(err, sizeof err, "%s: line %zu: column %zu has no name", params, csv.lineno[0], k + 1);
                goto bad_params;
            }
            for (size_t k2 = 0; k2 < k; k2++)
                if (strcasecmp(csv.cells[k2], h) == 0) { /* ngspice does not tell case apart */
                    snprintf(err, sizeof err, "%s: line %zu: column '%s' is given twice ('%s')", params,
                             csv.lineno[0], h, csv.cells[k2]);
                    goto bad_params;
                }
            if (strcasecmp(h, "temp") == 0) temp_col = (int)k;
            else if (strcasecmp(h, "seed") == 0) seed_col = (int)k;
            else if (strcasecmp(h, "label") == 0) label_col = (int)k;
            else if (!ngs_param_name_ok(h)) { /* `.param r1=5k x=2k` would set r1 */
                snprintf(err, sizeof err, "%s: line %zu: column '%s' is not a parameter name (a letter or _, "
                                          "then letters, digits or _)%s", params, csv.lineno[0], h,
                         strpbrk(h, ";\t") ? ": cells are separated by commas, not ';' or tabs" : "");
                goto bad_params;
            } else names[nparams++] = h;
        }
        if (names) warn_unused_params(argv[optind], params, (const char *const *)names, nparams);
        njobs = csv.rows - 1;
    } else if (mc) {
        njobs = (size_t)mc;
    } else {
        njobs = (size_t)(argc - optind);
    }
    jobs = calloc(njobs, sizeof *jobs);
    values = calloc(njobs * (nparams ? nparams : 1), sizeof *values);
    if (!jobs || !values || (params && !names)) {
        fprintf(stderr, "ngscale batch: out of memory for %zu jobs\n", njobs);
        rc = NGS_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < njobs; i++) {
        ngs_job *j = &jobs[i];
        j->seed = -1;
        if (params) {
            char **row = &csv.cells[(i + 1) * csv.cols];
            size_t k2 = 0;
            j->netlist = argv[optind];
            j->param_names = names;
            j->nparams = nparams;
            /* an empty temp, seed or label cell keeps the netlist's own (or the default) */
            for (size_t k = 0; k < csv.cols; k++) {
                if ((int)k == temp_col) {
                    j->temp = *row[k] ? row[k] : NULL;
                    /* ngspice reads ".temp abc" as no temperature: the job would run at 27 */
                    if (j->temp && isnan(ngs_spice_number(j->temp))) {
                        snprintf(err, sizeof err, "%s: line %zu: temp '%s' is not a number (degrees C)",
                                 params, csv.lineno[i + 1], row[k]);
                        goto bad_params;
                    }
                } else if ((int)k == label_col) j->label = *row[k] ? row[k] : NULL;
                else if ((int)k == seed_col) {
                    if (*row[k] && !parse_integer(row[k], 1, NGS_SEED_MAX, &j->seed)) {
                        snprintf(err, sizeof err, "%s: line %zu: seed '%s' is not a whole number in 1..%lld",
                                 params, csv.lineno[i + 1], row[k], NGS_SEED_MAX);
                        goto bad_params;
                    }
                } else if (!*row[k]) {
                    snprintf(err, sizeof err, "%s: line %zu: no value for %s", params, csv.lineno[i + 1],
                             csv.cells[k]);
                    goto bad_params;
                } else values[i * nparams + k2++] = row[k];
            }
            j->param_values = (const char *const *)&values[i * nparams];
        } else if (mc) {
            j->netlist = argv[optind];
            j->seed = seed0 + (long long)i;
        } else {
            j->netlist = argv[optind + (int)i];
            j->label = argv[optind + (int)i];
        }
    }
    view.tty = isatty(STDERR_FILENO);
    /* an instance per job at most: each costs a library copy and its start */
    if ((size_t)(o.jobs > 0 ? o.jobs : ngs_cpu_count()) > njobs) o.jobs = (int)njobs;
    catch_stop_signals();
    rc = ngs_batch_create(&b, &o);
    if (rc == NGS_OK) g_batch = b;
    if (g_stop_requested) rc = NGS_ERR_INTERRUPTED; /* no job started: no file */
    if (rc == NGS_OK) {
        rc = ngs_batch_run(b, jobs, njobs, batch_progress, &view, &fin);
        g_batch = NULL; /* nothing left to stop; the handler stays until the instances are gone */
        if (view.tty && !view.quiet) fputs("\r\033[K", stderr);
        if (fin.total && (!view.quiet || rc != NGS_OK)) {
            char stopped[64] = "";
            if (fin.interrupted) snprintf(stopped, sizeof stopped, ", %zu interrupted", fin.interrupted);
            fprintf(stderr, "ngscale batch: %zu/%zu jobs done, %zu failed%s, %zu cache hits, in %.2f s (%.2f jobs/s) -> %s\n",
                    fin.done, fin.total, fin.failed, stopped, fin.cache_hits, fin.elapsed_s,
                    fin.elapsed_s > 0 ? (double)fin.done / fin.elapsed_s : 0.0, o.output_path);
        }
        if (rc != NGS_OK && rc != NGS_ERR_SIMULATION && ngs_batch_last_error(b)[0])
            fprintf(stderr, "ngscale batch: %s\n", ngs_batch_last_error(b));
        if (rc == NGS_ERR_SIMULATION)
            fprintf(stderr, "ngscale batch: see /summary in %s for each failure's message\n", o.output_path);
    } else {
        g_batch = NULL;
        if (rc == NGS_ERR_INTERRUPTED)
            fprintf(stderr, "ngscale batch: interrupted before any job started; no file written\n");
        else
            fprintf(stderr, "ngscale batch: %s\n", b ? ngs_batch_last_error(b) : ngs_strerror(rc));
    }
    ngs_batch_destroy(b);
    b = NULL;
    /* a signal after the last job (while the instances were removed) still stops what
     * comes next: spectrum_of starts with the flag cleared */
    if (g_stop_requested && spectrum_vector && (rc == NGS_OK || rc == NGS_ERR_SIMULATION)) {
        fprintf(stderr, "ngscale batch: interrupted: --spectrum not run (%s holds every job)\n", o.output_path);
        rc = NGS_ERR_INTERRUPTED;
    }
    default_stop_signals();
    if (spectrum_vector && (rc == NGS_OK || rc == NGS_ERR_SIMULATION)) {
        /* every job that finished, failed ones skipped and listed */
        ngs_spectrum_file_options so;
        int src;
        ngs_spectrum_file_options_init(&so);
        so.vector = spectrum_vector;
        src = spectrum_of(o.output_path, &so);
        if (rc == NGS_OK) rc = src;
    }
    goto done;
bad_params:
    fprintf(stderr, "ngscale batch: %s\n", err);
    rc = NGS_ERR_ARG;
done:
    ngs_batch_destroy(b);
    free(jobs);
    free(values);
    free(names);
    free_csv(&csv);
    return exit_code(rc);
}

/* ---------------------------------------------------------------- cache -- */

static int print_entry(const ngs_cache_entry *en, void *user)
{
    char when[32];
    time_t t = (time_t)en->last_used;
    struct tm tm;
    (void)user;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    printf("%.16s  %10llu bytes  last used %s UTC  saves %.3g s  %s\n", en->key,
           (unsigned long long)en->bytes, when, en->sim_seconds, en->ngspice_version);
    return 0;
}

static int cmd_cache(int argc, char **argv)
{
    const char *spec = NULL, *what = argc > 1 ? argv[1] : NULL;
    char dir[4096], url[1024] = "", err[512];
    ngs_cache *c;
    ngs_cache_options copt;
    int rc;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) what = argv[i];
        else if (strcmp(argv[i], "--cache") == 0 && i + 1 < argc) spec = argv[++i];
        else if (strncmp(argv[i], "--cache=", 8) == 0) spec = argv[i] + 8;
        else {
            fprintf(stderr, "ngscale cache: unknown option %s\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (!what || (strcmp(what, "stats") && strcmp(what, "list") && strcmp(what, "clear") && strcmp(what, "gc"))) {
        int help = what && (strcmp(what, "--help") == 0 || strcmp(what, "-h") == 0);
        fprintf(help ? stdout : stderr,
                "usage: ngscale cache stats|list|clear|gc [--cache DIR|redis://...|DIR,redis://...]\n"
                "  The local directory is the default one unless named (see 'ngscale --help');\n"
                "  stats and list show the local tier; clear and gc act on it only: Redis is never cleared.\n");
        return help ? EXIT_OK : EXIT_USAGE;
    }
    dir[0] = '\0';
    if (spec && ngs_cache_spec_parse(spec, dir, sizeof dir, url, sizeof url, err, sizeof err) != NGS_OK) {
        fprintf(stderr, "ngscale cache: %s\n", err);
        return EXIT_USAGE;
    }
    if (url[0] && strcmp(what, "clear") == 0 && !dir[0]) {
        fprintf(stderr, "ngscale cache clear: it clears a local directory, and Redis is never cleared (its "
                        "entries are shared by a team, and expire when unused): name the directory, "
                        "--cache DIR\n");
        return EXIT_USAGE;
    }
    if (!dir[0] && ngs_cache_default_dir(dir, sizeof dir) != NGS_OK) {
        fprintf(stderr, "ngscale cache: no cache directory: set XDG_CACHE_HOME or HOME, or give --cache DIR\n");
        return EXIT_USAGE;
    }
    { /* looking at a cache creates none: a mistyped path is said, not made */
        struct stat st;
        if (stat(dir, &st) != 0) {
            fprintf(stderr, "ngscale cache: no cache at %s: %s\n", dir, strerror(errno));
            return EXIT_IO;
        }
    }
    ngs_cache_options_init(&copt);
    /* the local tier only: with a URL, an unusable directory would open as Redis alone */
    rc = ngs_cache_open(&c, dir, NULL, &copt, err, sizeof err);
    if (rc != NGS_OK) {
        fprintf(stderr, "ngscale cache: %s\n", err);
        return exit_code(rc);
    }
    if (url[0]) fprintf(stderr, "ngscale cache %s: the local tier %s only; Redis is not %s\n", what, dir,
                        strcmp(what, "clear") == 0 ? "cleared" : strcmp(what, "gc") == 0 ? "collected" : "listed");
    if (strcmp(what, "stats") == 0) {
        ngs_cache_stats s;
        rc = ngs_cache_get_stats(c, &s);
        if (rc == NGS_OK)
            printf("cache %s\n  entries %llu, %llu bytes (cap %llu)\n  hits %llu (redis %llu), misses %llu, "
                   "hit rate %.1f%%\n  stored %llu, evicted %llu, corrupt %llu\n  served %llu bytes, "
                   "simulation time saved %.2f s\n",
                   ngs_cache_dir(c), (unsigned long long)s.entries, (unsigned long long)s.bytes,
                   (unsigned long long)s.max_bytes, (unsigned long long)s.hits,
                   (unsigned long long)s.redis_hits, (unsigned long long)s.misses,
                   s.hits + s.misses ? 100.0 * (double)s.hits / (double)(s.hits + s.misses) : 0.0,
                   (unsigned long long)s.stores, (unsigned long long)s.evictions,
                   (unsigned long long)s.corrupt, (unsigned long long)s.bytes_served, s.sim_seconds_saved);
    } else if (strcmp(what, "list") == 0) {
        rc = ngs_cache_list(c, print_entry, NULL);
    } else if (strcmp(what, "clear") == 0) {
        uint64_t removed = 0;
        rc = ngs_cache_clear(c, 1, &removed);
        if (rc == NGS_OK) printf("removed %llu entries from %s\n", (unsigned long long)removed, ngs_cache_dir(c));
    } else {
        ngs_cache_gc_result g;
        rc = ngs_cache_gc(c, 1, &g);
        if (rc == NGS_OK)
            printf("removed %llu temporary files and %llu corrupt entries, evicted %llu; %llu entries, "
                   "%llu bytes left\n", (unsigned long long)g.temp_removed,
                   (unsigned long long)g.corrupt_removed, (unsigned long long)g.evicted,
                   (unsigned long long)g.entries, (unsigned long long)g.bytes);
    }
    if (rc != NGS_OK) fprintf(stderr, "ngscale cache %s: %s\n", what, ngs_strerror(rc));
    ngs_cache_close(c);
    return exit_code(rc);
}

static int cmd_spectrum(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"vector", required_argument, 0, 'v'},   {"window", required_argument, 0, 'w'},
        {"fund", required_argument, 0, 'f'},     {"periods", required_argument, 0, 'P'},
        {"harmonics", required_argument, 0, 'H'}, {"points", required_argument, 0, 'N'},
        {"resample", required_argument, 0, 'r'}, {"backend", required_argument, 0, 'b'},
        {"run", required_argument, 0, 'R'},      {"plot", required_argument, 0, 'p'},
        {"no-write", no_argument, 0, 'W'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    ngs_spectrum_file_options so;
    const char *runs[256];
    size_t nruns = 0;
    int c;
    double d;
    long long n;
    ngs_spectrum_file_options_init(&so);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'v': so.vector = optarg; break;
        case 'w': so.window = optarg; break;
        case 'r': so.resample = optarg; break;
        case 'b': so.backend = optarg; break;
        case 'p': so.plot = optarg; break;
        case 'W': so.no_write = 1; break;
        case 'f': /* SPICE suffixes welcome: 1k, 2.5meg */
            d = ngs_spice_number(optarg);
            if (!(d >= 0)) {
                fprintf(stderr, "ngscale spectrum: --fund needs a frequency in Hz (e.g. 1k)\n");
                return EXIT_USAGE;
            }
            so.fundamental = d;
            break;
        case 'P':
            if (!parse_integer(optarg, 0, 1000000000, &n)) { /* 0: as many as fit */
                fprintf(stderr, "ngscale spectrum: --periods needs a whole number of periods\n");
                return EXIT_USAGE;
            }
            so.periods = (unsigned)n;
            break;
        case 'H':
            if (!parse_integer(optarg, 0, NGS_SPECTRUM_MAX_HARMONICS, &n) || n == 1) { /* 0: default */
                fprintf(stderr, "ngscale spectrum: --harmonics must be 2..%d\n", NGS_SPECTRUM_MAX_HARMONICS);
                return EXIT_USAGE;
            }
            so.harmonics = (int)n;
            break;
        case 'N':
            if (!parse_integer(optarg, 0, LLONG_MAX, &n) || (n > 0 && n < 4)) { /* 0: automatic */
                fprintf(stderr, "ngscale spectrum: --points needs a whole number of points (4 or more)\n");
                return EXIT_USAGE;
            }
            so.points = (size_t)n;
            break;
        case 'R':
            if (nruns == sizeof runs / sizeof runs[0]) {
                fprintf(stderr, "ngscale spectrum: at most %zu --run options\n", nruns);
                return EXIT_USAGE;
            }
            runs[nruns++] = optarg;
            break;
        case 'h': usage(stdout); return EXIT_OK;
        default: fprintf(stderr, "Try 'ngscale --help'.\n"); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !so.vector) {
        fprintf(stderr, "usage: ngscale spectrum FILE.h5 --vector V [options] (see 'ngscale --help')\n");
        return EXIT_USAGE;
    }
    so.runs = runs;
    so.nruns = nruns;
    return exit_code(spectrum_of(argv[optind], &so));
}

/* ------------------------------------------------------ convert, export -- */

static int cmd_convert(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"codec", required_argument, 0, 'c'},  {"level", required_argument, 0, 'l'},
        {"group", required_argument, 0, 'g'},  {"append", no_argument, 0, 'a'},
        {"abs-err", required_argument, 0, 'A'}, {"rel-err", required_argument, 0, 'R'},
        {"bits", required_argument, 0, 'B'},   {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    ngs_convert_options o;
    ngs_convert_report rep;
    const char *save = NULL, *cache = NULL;
    ngs_memory_mode memory = NGS_MEMORY_AUTO;
    double timeout = 0;
    char err[1024];
    int c, rc, quiet = 0;
    ngs_convert_options_init(&o);
    shared_options shared = {&o.codec, &o.level, &save, &cache, &memory, &timeout, &o.lossy};
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'g': o.group = optarg; break;
        case 'a': o.append = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: {
            int r = parse_shared(c, optarg, &shared);
            if (r == 1) break;
            if (r == 0) fprintf(stderr, "Try 'ngscale --help'.\n");
            return EXIT_USAGE;
        }
        }
    }
    if (optind != argc - 2) {
        fprintf(stderr, "usage: ngscale convert IN.raw OUT.h5 [--codec ...] (see 'ngscale --help')\n");
        return EXIT_USAGE;
    }
    if (check_shared(&shared) != 0) return EXIT_USAGE;
    {
        const char *inputs[] = {argv[optind]};
        if (!output_is_safe("convert", argv[optind + 1], inputs, 1)) return EXIT_USAGE;
    }
    /* a signal stops it between blocks: a new file keeps what was converted, closed
     * properly (killed mid-write, HDF5 would not open it without h5clear); a file it
     * would replace is left as it was */
    catch_stop_signals();
    o.stop = &g_stop_requested;
    rc = ngs_convert_raw_to_h5(argv[optind], argv[optind + 1], &o, &rep, err, sizeof err);
    default_stop_signals();
    if (rc != NGS_OK) {
        fprintf(stderr, "ngscale convert: %s\n", err);
        return exit_code(rc);
    }
    if (rep.message[0]) fprintf(stderr, "ngscale convert: %s%s\n", rep.truncated ? "" : "warning: ", rep.message);
    if (!quiet)
        fprintf(stderr, "ngscale convert: %d plot%s, %llu points, %.2f GB in %.2f s (%.2f GB/s), "
                        "%.2f GB out (%.2fx smaller)\n",
                rep.plots, rep.plots == 1 ? "" : "s", (unsigned long long)rep.points,
                (double)rep.bytes_in / 1e9, rep.seconds,
                rep.seconds > 0 ? (double)rep.bytes_in / 1e9 / rep.seconds : 0.0,
                (double)rep.bytes_out / 1e9,
                rep.bytes_out ? (double)rep.bytes_in / (double)rep.bytes_out : 0.0);
    return rep.truncated ? EXIT_TRUNCATED : EXIT_OK;
}

static int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"ascii", no_argument, 0, 'a'}, {"binary", no_argument, 0, 'b'},
        {"group", required_argument, 0, 'g'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *group = NULL;
    ngs_convert_report rep;
    ngs_export_encoding enc = NGS_EXPORT_AS_READ;
    char err[1024];
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'a':
        case 'b': {
            ngs_export_encoding e = c == 'a' ? NGS_EXPORT_ASCII : NGS_EXPORT_BINARY;
            if (enc != NGS_EXPORT_AS_READ && enc != e) {
                fprintf(stderr, "ngscale export: --ascii and --binary exclude each other\n");
                return EXIT_USAGE;
            }
            enc = e;
            break;
        }
        case 'g': group = optarg; break;
        case 'h': usage(stdout); return EXIT_OK;
        default: fprintf(stderr, "Try 'ngscale --help'.\n"); return EXIT_USAGE;
        }
    }
    if (optind != argc - 2) {
        fprintf(stderr, "usage: ngscale export IN.h5 OUT.raw [--ascii | --binary] [--group G]\n");
        return EXIT_USAGE;
    }
    rc = ngs_export_h5_to_raw_report(argv[optind], group, argv[optind + 1], enc, &rep, err,
                                     sizeof err);
    if (rc != NGS_OK) {
        fprintf(stderr, "ngscale export: %s\n", err);
        return exit_code(rc);
    }
    /* As convert of a truncated RAW file: the file is usable, the data not all there. */
    if (rep.truncated) fprintf(stderr, "ngscale export: %s\n", rep.message);
    return rep.truncated ? EXIT_TRUNCATED : EXIT_OK;
}

static int cmd_info(int argc, char **argv)
{
    char err[512];
    int rc;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        if (argc < 2) {
            fprintf(stderr, "usage: ngscale info FILE.h5 [FILE.h5 ...]\n");
            return EXIT_USAGE;
        }
        printf("usage: ngscale info FILE.h5 [FILE.h5 ...]\n");
        return EXIT_OK;
    }
    /* As ls: a file that cannot be listed is reported and the others are still listed
     * (`ngscale info *.h5`); the exit status is the first failure's. */
    int status = EXIT_OK;
    for (int i = 1; i < argc; i++) {
        rc = ngs_h5_info_print(argv[i], stdout, err, sizeof err);
        if (rc != NGS_OK) {
            fflush(stdout);
            fprintf(stderr, "ngscale info: %s\n", err);
            if (status == EXIT_OK) status = exit_code(rc);
        }
    }
    return status;
}

static int run_command(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        ngs_engine *e = NULL;
        printf("ngscale %s (HDF5 format version %d)\n", ngs_version(), NGSCALE_FORMAT_VERSION);
        if (ngs_engine_create(&e, NULL) == NGS_OK) printf("%s\n", ngs_engine_ngspice_version(e));
        else printf("libngspice: %s\n", e ? ngs_engine_last_error(e) : "not available");
        ngs_engine_destroy(e);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (strcmp(argv[1], "batch") == 0) return cmd_batch(argc - 1, argv + 1);
    if (strcmp(argv[1], "cache") == 0) return cmd_cache(argc - 1, argv + 1);
    if (strcmp(argv[1], "spectrum") == 0) return cmd_spectrum(argc - 1, argv + 1);
    if (strcmp(argv[1], "convert") == 0) return cmd_convert(argc - 1, argv + 1);
    if (strcmp(argv[1], "export") == 0) return cmd_export(argc - 1, argv + 1);
    fprintf(stderr, "ngscale: unknown command '%s' (see 'ngscale --help')\n", argv[1]);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    int rc;
    /* At exit HDF5 would free its free lists block by block: 20-30 ms after a batch
     * of 200 tiny jobs, for memory the process gives back anyway. Every file is
     * closed before this returns; if one were left open (a file id, or an object that
     * keeps its file open), H5close flushes it. Not after a failure: a file still
     * open then is one whose H5Fclose failed (a full disk), and HDF5 1.10's H5close
     * crashed on it (exit 139, not the command's status); a kill would leave it so. */
    H5dont_atexit();
    rc = run_command(argc, argv);
    if (rc == EXIT_OK &&
        H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE | H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_ATTR) > 0)
        H5close();
    return rc;
}
