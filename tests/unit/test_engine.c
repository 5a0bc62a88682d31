/* Unit tests of the engine through the public API, with the real libngspice:
 * hooks see what the file gets, a copy that quit or failed is replaced, a hook can
 * stop a run, and the flat-memory decision follows the deck. */
#include <check.h>
#include "tests/unit/ngs_check.h"
#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ngscale.h"
#include "plugin/deck.h"
#include "storage/h5attr.h"

static const char *const rc_deck[] = {
    "rc", "V1 in 0 PULSE(0 1 0 1n 1n 5u 10u)", "R1 in out 1k", "C1 out 0 1n",
    ".tran 10n 20u", ".end"};
static const char *const quit_deck[] = {
    "quits", "V1 in 0 DC 1", "R1 in 0 1k", ".control", "op", "quit", ".endc", ".end"};
static const char *const broken_deck[] = {
    "broken", "V1 in 0 DC 1", "Q1 a b c nosuchmodel", ".op", ".end"};
#define N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    int begins, ends, messages;
    unsigned long long rows;
    int columns;
    double last_time;
    int stop_after;
} counter;

static int count(const ngs_event *ev, void *user)
{
    counter *c = user;
    switch (ev->kind) {
    case NGS_EV_PLOT_BEGIN: c->begins++; c->columns = ev->plot->row_doubles; break;
    case NGS_EV_ROWS:
        c->rows += ev->nrows;
        c->last_time = ev->rows[(ev->nrows - 1) * (size_t)ev->plot->row_doubles];
        if (c->stop_after && c->rows >= (unsigned long long)c->stop_after) return 1;
        break;
    case NGS_EV_PLOT_END: c->ends++; break;
    case NGS_EV_MESSAGE: c->messages++; break;
    default: break;
    }
    return 0;
}

static ngs_engine *engine(void) { return ngs_check_engine(); }

START_TEST(hooks_see_every_point)
{
    ngs_engine *e = engine();
    counter c = {0};
    ngs_run_result res;
    ck_assert_int_eq(ngs_engine_add_hook(e, NGS_EV_ALL, count, &c), NGS_OK);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_int_eq(c.begins, 1);
    ck_assert_int_eq(c.ends, 1);
    ck_assert_uint_eq(c.rows, res.points);
    ck_assert_uint_gt(c.rows, 1000);
    ck_assert_int_eq(c.columns, 4); /* time, v(in), v(out), i(v1) */
    ck_assert(c.last_time > 19.9e-6 && c.last_time <= 20e-6);
    ck_assert_int_eq(res.memory_flat, 1);
    ck_assert_ptr_nonnull(strstr(ngs_engine_ngspice_version(e), "ngspice-"));
    ngs_engine_destroy(e);
}
END_TEST

typedef struct {
    int progress, reference_lines;
    double last_percent;
} progress_seen;

static int watch_progress(const ngs_event *ev, void *user)
{
    progress_seen *p = user;
    if (ev->kind == NGS_EV_PROGRESS) {
        p->progress++;
        p->last_percent = ev->percent;
    }
    if (ev->kind == NGS_EV_MESSAGE && ev->text && strstr(ev->text, "Reference value")) p->reference_lines++;
    return 0;
}

/* ngspice is given a status callback only while a hook wants progress; a hook added
 * later still gets it on the next run. Its per-point console progress stays off. */
START_TEST(progress_only_when_a_hook_wants_it)
{
    ngs_engine *e = engine();
    progress_seen messages = {0}, progress = {0};
    ngs_run_result res;
    static const char *const long_deck[] = {
        "longer", "V1 in 0 SIN(0 1 1meg)", "R1 in out 1k", "C1 out 0 1n", ".tran 1n 2m", ".end"};
    ngs_engine_add_hook(e, NGS_EV_MESSAGE, watch_progress, &messages);
    ck_assert_int_eq(ngs_run_lines(e, long_deck, N(long_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_uint_gt(res.points, 100000); /* long enough for ngspice's 0.25 s reference print */
    ck_assert_int_eq(messages.reference_lines, 0);
    ngs_engine_add_hook(e, NGS_EV_PROGRESS, watch_progress, &progress);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_int_gt(progress.progress, 0);
    ck_assert(progress.last_percent == 100.0);
    ck_assert_int_eq(messages.reference_lines, 0);
    ngs_engine_destroy(e);
}
END_TEST

START_TEST(quit_replaces_the_copy)
{
    ngs_engine *e = engine();
    counter c = {0};
    ngs_run_result res;
    ngs_engine_add_hook(e, NGS_EV_ALL, count, &c);
    ck_assert_int_eq(ngs_run_lines(e, quit_deck, N(quit_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_int_eq(res.nplots, 1);
    /* the copy that quit is unusable: the next run must still work */
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_int_eq(res.nplots, 1);
    ck_assert_int_eq(c.begins, 2);
    ngs_engine_destroy(e);
}
END_TEST

START_TEST(broken_netlist_then_good_run)
{
    ngs_engine *e = engine();
    ngs_run_result res;
    ck_assert_int_eq(ngs_run_lines(e, broken_deck, N(broken_deck), NULL, NULL, &res), NGS_ERR_NETLIST);
    ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "rejected"));
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_int_eq(ngs_run_file(e, "/nonexistent.cir", NULL, &res), NGS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "/nonexistent.cir"));
    ngs_engine_destroy(e);
}
END_TEST

START_TEST(a_missing_argument_is_what_the_error_says)
{
    /* an NGS_ERR_ARG refusal left the last run's error in place: a NULL netlist
     * after a broken one read "ngspice rejected the netlist" */
    ngs_engine *e = engine();
    ngs_run_result res;
    ck_assert_int_eq(ngs_run_lines(e, broken_deck, N(broken_deck), NULL, NULL, &res), NGS_ERR_NETLIST);
    ck_assert_int_eq(ngs_run_file(e, NULL, NULL, &res), NGS_ERR_ARG);
    ck_assert_str_eq(ngs_engine_last_error(e), "no netlist: netlist_path is NULL");
    ck_assert_int_eq(ngs_run_file(e, "", NULL, &res), NGS_ERR_ARG); /* said ": No such file or directory" */
    ck_assert_str_eq(ngs_engine_last_error(e), "no netlist: the netlist path is empty");
    ck_assert_int_eq(ngs_run_lines(e, NULL, 3, NULL, NULL, &res), NGS_ERR_ARG);
    ck_assert_str_eq(ngs_engine_last_error(e), "no netlist: lines is NULL");
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, 0, NULL, NULL, &res), NGS_ERR_ARG);
    ck_assert_str_eq(ngs_engine_last_error(e), "no netlist: nlines is 0");
    ck_assert_int_eq(ngs_engine_add_hook(e, NGS_EV_ALL, NULL, NULL), NGS_ERR_ARG);
    ck_assert_str_eq(ngs_engine_last_error(e), "the hook function is NULL");
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_str_eq(ngs_engine_last_error(e), "");
    ngs_engine_destroy(e);
}
END_TEST

START_TEST(hook_can_stop_a_run)
{
    ngs_engine *e = engine();
    counter c = {0};
    ngs_run_result res;
    static const char *const long_deck[] = {
        "long", "V1 in 0 SIN(0 1 1meg)", "R1 in out 1k", "C1 out 0 1n", ".tran 1n 10m", ".end"};
    c.stop_after = 500;
    ngs_engine_add_hook(e, NGS_EV_ROWS, count, &c);
    ck_assert_int_eq(ngs_run_lines(e, long_deck, N(long_deck), NULL, NULL, &res), NGS_ERR_INTERRUPTED);
    ck_assert(c.last_time < 5e-3); /* stopped well before the end */
    c.stop_after = 0;
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ngs_engine_destroy(e);
}
END_TEST

START_TEST(an_interrupt_before_the_run_stops_it_and_only_it)
{
    ngs_engine *e = engine();
    counter c = {0};
    ngs_run_result res;
    static const char *const control_deck[] = {
        "control", "V1 in 0 DC 1", "R1 in 0 1k", ".control", "op", "print v(in)", ".endc", ".end"};
    ngs_engine_add_hook(e, NGS_EV_ALL, count, &c);
    /* a Ctrl-C while the netlist loads came before the run cleared it, and was lost */
    ngs_engine_interrupt(e);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_ERR_INTERRUPTED);
    ck_assert_uint_eq(c.rows, 0);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK); /* the next runs */
    ck_assert_uint_gt(c.rows, 0);
    /* a .control script too: it ran, kept nothing, and said NGS_OK */
    c.begins = 0;
    ngs_engine_interrupt(e);
    ck_assert_int_eq(ngs_run_lines(e, control_deck, N(control_deck), NULL, NULL, &res), NGS_ERR_INTERRUPTED);
    ck_assert_int_eq(res.status, NGS_ERR_INTERRUPTED);
    ck_assert_int_eq(c.begins, 0);
    ck_assert_int_eq(ngs_run_lines(e, control_deck, N(control_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_int_eq(c.begins, 1);
    /* a refused run ends too: the request was for it, not for the next one */
    {
        ngs_run_options o;
        ngs_run_options_init(&o);
        o.memory = (ngs_memory_mode)7;
        ngs_engine_interrupt(e);
        ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &res), NGS_ERR_ARG);
        ngs_engine_interrupt(e);
        ck_assert_int_eq(ngs_run_file(e, "/nonexistent/x.cir", NULL, &res), NGS_ERR_IO);
        ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    }
    ngs_engine_destroy(e);
}
END_TEST

/* What a hook returns is "stop" or "go on": -7 is not NGS_ERR_EXIT */
static int stop_with_minus_seven(const ngs_event *ev, void *user)
{
    (void)ev;
    (void)user;
    return -7;
}

typedef struct {
    ngs_engine *e;
    int nested_rc, add_rc, calls;
} nested;

/* a run, or a new hook (which would move the hook array the run reads), from a hook */
static int run_from_a_hook(const ngs_event *ev, void *user)
{
    nested *n = user;
    (void)ev;
    n->calls++;
    n->nested_rc = ngs_run_lines(n->e, rc_deck, N(rc_deck), NULL, NULL, NULL);
    n->add_rc = ngs_engine_add_hook(n->e, NGS_EV_ALL, stop_with_minus_seven, NULL);
    return 0;
}

START_TEST(one_run_at_a_time_and_hooks_only_stop_or_go_on)
{
    ngs_engine *e = engine();
    ngs_run_result res;
    nested n = {e, 0, 0, 0};
    /* a run started from a hook of a run on the same engine hung the process */
    ngs_engine_add_hook(e, NGS_EV_PLOT_BEGIN | NGS_EV_PLOT_END, run_from_a_hook, &n);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_int_eq(n.calls, 2);
    ck_assert_int_eq(n.nested_rc, NGS_ERR_STATE);
    ck_assert_int_eq(n.add_rc, NGS_ERR_STATE);
    ck_assert_uint_gt(res.points, 0);
    ngs_engine_destroy(e);
    e = engine();
    ngs_engine_add_hook(e, NGS_EV_ROWS, stop_with_minus_seven, NULL);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_ERR_INTERRUPTED);
    ck_assert_str_ne(ngs_engine_last_error(e), "");
    ngs_engine_destroy(e);
    /* an output that exists and is not HDF5 (the netlist, notes) is never replaced */
    {
        char path[] = "/tmp/ngs-notes-XXXXXX", text[32] = "";
        ngs_run_options o;
        int fd = mkstemp(path);
        FILE *f;
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "precious\n", 9), 9);
        close(fd);
        e = engine();
        ngs_run_options_init(&o);
        o.output_path = path;
        ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &res), NGS_ERR_IO);
        ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "not an HDF5 file"));
        f = fopen(path, "r");
        ck_assert_ptr_nonnull(fgets(text, sizeof text, f));
        fclose(f);
        ck_assert_str_eq(text, "precious\n");
        unlink(path);
        ngs_engine_destroy(e);
    }
    /* early refusals fill the result too; a NULL engine has no version */
    memset(&res, 0x5a, sizeof res);
    ck_assert_int_eq(ngs_run_file(NULL, "x.cir", NULL, &res), NGS_ERR_ARG);
    ck_assert_int_eq(res.status, NGS_ERR_ARG);
    ck_assert_int_eq(res.nplots, 0);
    ck_assert_str_eq(ngs_engine_ngspice_version(NULL), "");
}
END_TEST

START_TEST(cache_hit_replays_the_same_events)
{
    ngs_engine *e = engine();
    counter first = {0}, second = {0};
    ngs_run_options o;
    ngs_run_result res;
    char dir[] = "/tmp/ngs-cache-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ngs_run_options_init(&o);
    o.cache = dir;
    ngs_engine_add_hook(e, NGS_EV_ALL, count, &first);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &res), NGS_OK);
    ck_assert_int_eq(res.cache_hit, 0);
    ngs_engine_destroy(e);
    e = engine();
    ngs_engine_add_hook(e, NGS_EV_ALL, count, &second);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &res), NGS_OK);
    ck_assert_int_eq(res.cache_hit, 1);
    ck_assert_ptr_nonnull(strstr(res.cache_note, "hit"));
    ck_assert_int_eq(second.begins, first.begins);
    ck_assert_int_eq(second.ends, first.ends);
    ck_assert_uint_eq(second.rows, first.rows);
    ck_assert(second.last_time == first.last_time);
    ck_assert_int_eq(second.messages, first.messages);
    /* a pending interrupt stops a hit as it stops a simulation */
    ngs_engine_interrupt(e);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &res), NGS_ERR_INTERRUPTED);
    ck_assert_int_eq(res.cache_hit, 0);
    ngs_engine_destroy(e);
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* A directory under a fresh one in /tmp whose path is exactly len bytes (< 4096). */
static void make_dir_of_length(char *path, size_t len)
{
    size_t n;
    strcpy(path, "/tmp/ngs-long-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(path));
    while ((n = strlen(path)) < len) {
        size_t k = len - n - 1 > 200 ? 200 : len - n - 1;
        if (len - n - 1 - k == 1) k--; /* never leave a 1-byte gap: a component needs 2 */
        path[n] = '/';
        memset(path + n + 1, 'd', k);
        path[n + 1 + k] = '\0';
        ck_assert_int_eq(mkdir(path, 0700), 0);
    }
}

static void remove_tree(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%.20s'", path); /* the mkdtemp'd top */
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(a_tmp_dir_too_long_for_ngspice_is_refused)
{
    /* ngspice's init sprintf's its scripts path into 512 bytes: a tmp_dir of 470
     * bytes aborted the process ("buffer overflow detected") */
    ngs_engine *e = NULL;
    ngs_engine_config cfg;
    ngs_run_result res;
    char dir[4096];
    unsetenv("NGSPICE_INPUT_DIR");
    make_dir_of_length(dir, 470);
    ngs_engine_config_init(&cfg);
    cfg.tmp_dir = dir;
    ck_assert_int_eq(ngs_engine_create(&e, &cfg), NGS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "set tmp_dir to a shorter directory"));
    ck_assert_int_ne(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ngs_engine_destroy(e);
    remove_tree(dir);
    make_dir_of_length(dir, 469); /* the longest that fits */
    cfg.tmp_dir = dir;
    ck_assert_int_eq(ngs_engine_create(&e, &cfg), NGS_OK);
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, NULL, &res), NGS_OK);
    ck_assert_uint_gt(res.points, 0);
    ngs_engine_destroy(e);
    remove_tree(dir);
}
END_TEST

START_TEST(includes_beside_a_netlist_in_a_long_directory_are_found)
{
    /* ngspice's lexer cuts a command at 1024 bytes: the sourcepath command of a
     * directory of 1000 bytes lost its end, and 'sub.inc' was not found */
    ngs_engine *e = engine();
    ngs_run_result res;
    char dir[4096], path[4200];
    FILE *f;
    make_dir_of_length(dir, 1000);
    snprintf(path, sizeof path, "%s/sub.inc", dir);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs("R1 in out 1k\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/n.cir", dir);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs("rc\n.include sub.inc\nV1 in 0 DC 1\nC1 out 0 1n\n.tran 10n 2u\n.end\n", f);
    fclose(f);
    ck_assert_msg(ngs_run_file(e, path, NULL, &res) == NGS_OK, "%s", ngs_engine_last_error(e));
    ck_assert_uint_gt(res.points, 0);
    ck_assert_msg(ngs_run_lines(e, (const char *const[]){"rc", ".include sub.inc", "V1 in 0 DC 1", "C1 out 0 1n",
                                                         ".tran 10n 2u", ".end"},
                                6, dir, NULL, &res) == NGS_OK,
                  "%s", ngs_engine_last_error(e));
    ngs_engine_destroy(e);
    remove_tree(dir);
}
END_TEST

START_TEST(bad_library_path_is_an_error)
{
    ngs_engine *e = NULL;
    ngs_engine_config cfg;
    ngs_engine_config_init(&cfg);
    cfg.libngspice_path = "/nonexistent/libngspice.so";
    ck_assert_int_eq(ngs_engine_create(&e, &cfg), NGS_ERR_LIBNGSPICE);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "/nonexistent/libngspice.so"));
    ngs_engine_destroy(e);
    /* ngspice's commands cannot take a path with a space: said, not "ngspice exited" later */
    ngs_engine_config_init(&cfg);
    cfg.tmp_dir = "/tmp/with space";
    ck_assert_int_eq(ngs_engine_create(&e, &cfg), NGS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "holds a space or a quote"));
    ngs_engine_destroy(e);
}
END_TEST

/* Two jobs of one netlist with the same parameters, nothing else set. */
static void two_jobs_with_params(ngs_job jobs[2], const char *netlist, size_t n, const char **names,
                                 const char **values)
{
    for (int i = 0; i < 2; i++) {
        ngs_job_init(&jobs[i], netlist);
        jobs[i].nparams = n;
        jobs[i].param_names = names;
        jobs[i].param_values = values;
    }
}

/* ngspice ignores `.options seed` outside 1..2^31-1 with only a warning: the batch
 * refuses such a job before it writes anything, naming the job and the seed; so it
 * does a parameter without a name or value, or one /summary has no column for. */
START_TEST(batch_refuses_bad_jobs_before_writing)
{
    static const long long bad[] = {0, NGS_SEED_MAX + 1};
    tmpdir t;
    char netlist[512], out[512];
    ngs_batch_options o;
    ngs_batch *b = NULL;
    ngs_job jobs[2];
    tmp_make(&t);
    path_in(&t, "rc.cir", netlist, sizeof netlist);
    path_in(&t, "out.h5", out, sizeof out);
    write_file(netlist, "rc\nV1 in 0 DC 1\nR1 in 0 1k\n.op\n.end\n", 36);
    ngs_batch_options_init(&o);
    o.jobs = 1;
    o.output_path = out;
    ck_assert_int_eq(ngs_batch_create(&b, &o), NGS_OK);
    for (size_t i = 0; i < N(bad); i++) {
        char want[64];
        memset(jobs, 0, sizeof jobs);
        jobs[0].netlist = jobs[1].netlist = netlist;
        jobs[0].seed = NGS_SEED_MAX; /* the largest seed is fine */
        jobs[1].seed = bad[i];
        ck_assert_int_eq(ngs_batch_run(b, jobs, 2, NULL, NULL, NULL), NGS_ERR_ARG);
        snprintf(want, sizeof want, "job 1: seed %lld", bad[i]);
        ck_assert_msg(strstr(ngs_batch_last_error(b), want), "%s", ngs_batch_last_error(b));
        ck_assert_int_ne(access(out, F_OK), 0);
    }
    {
        const char *names[] = {"r1", NULL}, *values[] = {"1k", "2k"}, *other[] = {"r2", "r3"};
        two_jobs_with_params(jobs, netlist, 2, names, values);
        ck_assert_int_eq(ngs_batch_run(b, jobs, 2, NULL, NULL, NULL), NGS_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(ngs_batch_last_error(b), "job 0: parameter 2 has no name"));
        names[1] = "r2";
        jobs[1].param_names = other;
        ck_assert_int_eq(ngs_batch_run(b, jobs, 2, NULL, NULL, NULL), NGS_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(ngs_batch_last_error(b), "job 1: its parameters differ"));
        ck_assert_int_ne(access(out, F_OK), 0);
    }
    { /* `.param r1=5k x=2k` would set r1 to 5k and call the job's value x's */
        const char *names[] = {"r1=5k x"}, *values[] = {"2k"};
        two_jobs_with_params(jobs, netlist, 1, names, values);
        ck_assert_int_eq(ngs_batch_run(b, jobs, 2, NULL, NULL, NULL), NGS_ERR_ARG);
        ck_assert_msg(strstr(ngs_batch_last_error(b), "job 0: parameter 'r1=5k x' is not a name"), "%s",
                      ngs_batch_last_error(b));
        ck_assert_int_ne(access(out, F_OK), 0);
        ck_assert(ngs_param_name_ok("r1") && ngs_param_name_ok("_r") && ngs_param_name_ok("r[1]"));
        ck_assert(!ngs_param_name_ok("1r") && !ngs_param_name_ok("r 1") && !ngs_param_name_ok("{r1}") &&
                  !ngs_param_name_ok("v(out)") && !ngs_param_name_ok("r-1") && !ngs_param_name_ok(""));
    }
    { /* a temperature that is no number: ngspice warns and simulates at 27 C */
        memset(jobs, 0, sizeof jobs);
        jobs[0].netlist = jobs[1].netlist = netlist;
        jobs[0].seed = jobs[1].seed = -1;
        jobs[0].temp = ""; /* the netlist's own, as a CSV's empty cell */
        jobs[1].temp = "hot";
        ck_assert_int_eq(ngs_batch_run(b, jobs, 2, NULL, NULL, NULL), NGS_ERR_ARG);
        ck_assert_ptr_nonnull(strstr(ngs_batch_last_error(b), "job 1: temp 'hot' is not a temperature"));
        ck_assert_int_ne(access(out, F_OK), 0);
    }
    ngs_batch_destroy(b);
    tmp_free(&t);
}
END_TEST

/* A run with an option the writer cannot honour fails before ngspice runs (no hook
 * sees a plot, no file), and says which; the engine runs the next good one. A batch
 * refuses the same, and a --cache directory that is not a cache, before any instance
 * starts; running the failed batch is a state error, not a crash. */
START_TEST(bad_options_are_refused_before_anything_runs)
{
    tmpdir t;
    char out[512], notcache[512], stray[600];
    ngs_engine *e = engine();
    ngs_run_options o;
    ngs_run_result r;
    counter c = {0};
    ngs_batch_options bo;
    ngs_batch *b = NULL;
    ngs_job job;
    tmp_make(&t);
    path_in(&t, "out.h5", out, sizeof out);
    ck_assert_int_eq(ngs_engine_add_hook(e, NGS_EV_ALL, count, &c), NGS_OK);
    ngs_run_options_init(&o);
    o.output_path = out;
    o.codec = NGS_CODEC_DEFLATE;
    o.level = 12;
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &r), NGS_ERR_ARG);
    ck_assert_int_eq(r.status, NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "level 12 does not suit codec deflate"));
    ck_assert_int_eq(c.begins, 0);
    ck_assert_int_ne(access(out, F_OK), 0);
    o.level = 0;
    o.memory = (ngs_memory_mode)7;
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &r), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "unknown memory mode 7"));
    o.memory = NGS_MEMORY_AUTO;
    /* an empty path was NGS_ERR_IO ": cannot create the HDF5 file", after the run began */
    o.output_path = "";
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &r), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_engine_last_error(e), "the output path is empty"));
    ck_assert_int_eq(c.begins, 0);
    o.output_path = out;
    ck_assert_int_eq(ngs_run_lines(e, rc_deck, N(rc_deck), NULL, &o, &r), NGS_OK);
    ck_assert_int_eq(c.begins, 1);
    ngs_engine_destroy(e);

    path_in(&t, "project", notcache, sizeof notcache);
    ck_assert_int_eq(mkdir(notcache, 0700), 0);
    snprintf(stray, sizeof stray, "%s/notes.txt", notcache);
    write_file(stray, "mine\n", 5);
    unlink(out);
    ngs_batch_options_init(&bo);
    bo.jobs = 1;
    bo.output_path = out;
    bo.lossy.abs_err = 1e-3; /* codec zstd ignores it: a mistake, said so */
    ck_assert_int_eq(ngs_batch_create(&b, &bo), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_batch_last_error(b), "apply to codec bounded or bitround"));
    memset(&job, 0, sizeof job);
    job.seed = -1;
    job.netlist = stray;
    ck_assert_int_eq(ngs_batch_run(b, &job, 1, NULL, NULL, NULL), NGS_ERR_STATE);
    ngs_batch_destroy(b);
    bo.lossy.abs_err = 0;
    bo.cache = notcache;
    ck_assert_int_eq(ngs_batch_create(&b, &bo), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_batch_last_error(b), "is not an ngscale cache"));
    ngs_batch_destroy(b);
    bo.cache = NULL;
    bo.jobs = -1;
    ck_assert_int_eq(ngs_batch_create(&b, &bo), NGS_ERR_ARG);
    ngs_batch_destroy(b);
    ck_assert_int_ne(access(out, F_OK), 0);
    ck_assert_int_eq(access(stray, F_OK), 0); /* the directory is left as it was */
    snprintf(stray, sizeof stray, "%s/CACHEDIR.TAG", notcache);
    ck_assert_int_ne(access(stray, F_OK), 0);
    tmp_free(&t);
}
END_TEST

/* Two engines on the system's .cm files crashed the first one's XSPICE runs once the
 * second was gone: only the first engine of a process may use them. */
START_TEST(a_second_engine_never_shares_the_code_models)
{
    static const char *const xspice[] = {"gain", "V1 in 0 SIN(0 1 1k)", "A1 in out amp",
                                         ".model amp gain(gain=2)", "R1 out 0 1k", ".tran 10u 1m", ".end"};
    ngs_engine_config c;
    ngs_engine *a = NULL, *b = NULL;
    counter n = {0};
    ngs_engine_config_init(&c);
    ck_assert_int_eq(c.private_codemodels, 1); /* the default */
    c.private_codemodels = 0;
    ck_assert_int_eq(ngs_engine_create(&a, &c), NGS_OK);
    ck_assert_int_eq(ngs_engine_create(&b, &c), NGS_OK);
    ck_assert_int_eq(ngs_run_lines(b, xspice, N(xspice), NULL, NULL, NULL), NGS_OK);
    ngs_engine_destroy(b);
    ck_assert_int_eq(ngs_engine_add_hook(a, NGS_EV_ALL, count, &n), NGS_OK);
    ck_assert_int_eq(ngs_run_lines(a, xspice, N(xspice), NULL, NULL, NULL), NGS_OK);
    ck_assert_int_eq(n.begins, 1);
    ck_assert_uint_gt(n.rows, 50);
    ngs_engine_destroy(a);
}
END_TEST

typedef struct {
    ngs_engine *e;
    const char *out;
    int rc;
} long_run;

static void *run_long(void *arg)
{
    static const char *const lines[] = {"long tran", "V1 in 0 SIN(0 1 1k)", "R1 in out 1k", "C1 out 0 1u",
                                        ".tran 1u 2", ".end"};
    long_run *r = arg;
    ngs_run_options o;
    ngs_run_options_init(&o);
    o.output_path = r->out;
    r->rc = ngs_run_lines(r->e, lines, N(lines), NULL, &o, NULL);
    return NULL;
}

/* An embedder closing its window destroys the engine while a run goes on: the run
 * is stopped and waited for (it returned NGS_OK with a tenth of the points, its file
 * "complete", or crashed on the freed engine). */
START_TEST(destroy_during_a_run_stops_it_first)
{
    tmpdir t;
    char out[512];
    pthread_t th;
    long_run r = {engine(), out, 1234};
    hid_t f, g;
    char *status;
    tmp_make(&t);
    path_in(&t, "long.h5", out, sizeof out);
    ck_assert_int_eq(pthread_create(&th, NULL, run_long, &r), 0);
    usleep(400000);
    ngs_engine_destroy(r.e);
    pthread_join(th, NULL);
    ck_assert_int_eq(r.rc, NGS_ERR_INTERRUPTED);
    f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    g = H5Gopen2(f, "run", H5P_DEFAULT);
    status = ngs_h5_attr_dup_str(g, "status");
    ck_assert_ptr_nonnull(status);
    ck_assert_str_eq(status, "incomplete");
    free(status);
    H5Gclose(g);
    H5Fclose(f);
    tmp_free(&t);
}
END_TEST

/* An interrupt is for one batch run: instances that took no job after it kept their
 * request, and the next run had "interrupted" jobs. */
static void most_running(const ngs_batch_progress *p, void *user)
{
    size_t *peak = user;
    if (p->running > *peak) *peak = p->running;
}

START_TEST(a_batch_interrupt_is_for_one_run)
{
    size_t peak = 0;
    tmpdir t;
    char netlist[512], out[512];
    ngs_batch_options o;
    ngs_batch *b = NULL;
    ngs_batch_progress fin;
    ngs_job jobs[4];
    tmp_make(&t);
    path_in(&t, "rc.cir", netlist, sizeof netlist);
    path_in(&t, "out.h5", out, sizeof out);
    write_file(netlist, "rc\nV1 in 0 DC 1\nR1 in 0 1k\n.op\n.end\n", 36);
    for (int i = 0; i < 4; i++) ngs_job_init(&jobs[i], netlist);
    ngs_batch_options_init(&o);
    o.jobs = 2;
    o.output_path = out;
    ck_assert_int_eq(ngs_batch_create(&b, &o), NGS_OK);
    ngs_batch_interrupt(b);
    ck_assert_int_eq(ngs_batch_run(b, jobs, 4, NULL, NULL, &fin), NGS_ERR_INTERRUPTED);
    ck_assert_uint_eq(fin.done, 0);
    ck_assert_int_eq(ngs_batch_run(b, jobs, 4, most_running, &peak, &fin), NGS_OK);
    ck_assert_uint_eq(fin.done, 4);
    ck_assert_uint_eq(fin.interrupted, 0);
    ck_assert_uint_eq(fin.running, 0);
    ck_assert_uint_le(peak, 2); /* never more than the instances */
    ck_assert_str_eq(ngs_batch_last_error(b), "");
    jobs[3].netlist = "/nonexistent/x.cir"; /* a failure is counted in the error */
    ck_assert_int_eq(ngs_batch_run(b, jobs, 4, NULL, NULL, &fin), NGS_ERR_SIMULATION);
    ck_assert_ptr_nonnull(strstr(ngs_batch_last_error(b), "1 of 4 jobs failed"));
    ngs_batch_destroy(b);
    /* no output: refused, and *batch is NULL as the header says */
    b = (ngs_batch *)&o;
    o.output_path = NULL;
    ck_assert_int_eq(ngs_batch_create(&b, &o), NGS_ERR_ARG);
    ck_assert_ptr_null(b);
    tmp_free(&t);
}
END_TEST

static int decide(const char *const *lines, size_t n, char *reason, size_t len)
{
    ngs_deck d;
    int reads;
    ck_assert_int_eq(ngs_deck_from_lines(&d, lines, n), NGS_OK);
    reads = d.reads_vectors;
    snprintf(reason, len, "%s", d.reason);
    ngs_deck_free(&d);
    return reads;
}

START_TEST(memory_decision_follows_the_deck)
{
    char why[256];
    static const char *const plain[] = {"t", "R1 a 0 1", ".tran 1n 1u", ".end"};
    static const char *const meas[] = {"t", "R1 a 0 1", ".tran 1n 1u", ".meas tran x max v(a)", ".end"};
    static const char *const ctl_ok[] = {"t", "R1 a 0 1", ".control", "set x=1", "tran 1n 1u", "quit", ".endc", ".end"};
    static const char *const ctl_let[] = {"t", "R1 a 0 1", ".control", "tran 1n 1u", "let y = v(a)*2", ".endc", ".end"};
    static const char *const interp[] = {"t", "R1 a 0 1", ".options reltol=1e-4 INTERP", ".tran 1n 1u", ".end"};
    static const char *const echo_vec[] = {"t", ".control", "op", "echo $&v(a)", ".endc", ".end"};
    ck_assert_int_eq(decide(plain, N(plain), why, sizeof why), 0);
    ck_assert_int_eq(decide(ctl_ok, N(ctl_ok), why, sizeof why), 0);
    ck_assert_int_eq(decide(meas, N(meas), why, sizeof why), 1);
    ck_assert_ptr_nonnull(strstr(why, ".meas"));
    ck_assert_int_eq(decide(ctl_let, N(ctl_let), why, sizeof why), 1);
    ck_assert_ptr_nonnull(strstr(why, "'let'"));
    ck_assert_int_eq(decide(interp, N(interp), why, sizeof why), 1);
    ck_assert_ptr_nonnull(strstr(why, "interp"));
    ck_assert_int_eq(decide(echo_vec, N(echo_vec), why, sizeof why), 1);
    { /* `set` is harmless, unless it reads a vector's value */
        static const char *const set_vec[] = {"t", "R1 a 0 1", ".control", "dc v1 0 1 0.5", "set vo = $&v(a)",
                                              "echo $vo", ".endc", ".end"};
        static const char *const script[] = {"*ng_script", "source x.cir", "op"};
        ck_assert_int_eq(decide(set_vec, N(set_vec), why, sizeof why), 1);
        ck_assert_ptr_nonnull(strstr(why, "$&"));
        ck_assert_int_eq(decide(script, N(script), why, sizeof why), 1); /* no card can be added */
        ck_assert_ptr_nonnull(strstr(why, "ng_script"));
    }
    { /* a card goes on over its '+' lines: interp there stores only grid points too */
        static const char *const interp_cont[] = {"t", "R1 a 0 1", ".options reltol=1e-3", "+ interp",
                                                  ".tran 1n 1u", ".end"};
        static const char *const plus_alone[] = {"t", "R1 a 0", "+ 1", ".options reltol=1e-3", "+ gmin=1e-12",
                                                 ".tran 1n 1u", ".end"};
        ck_assert_int_eq(decide(interp_cont, N(interp_cont), why, sizeof why), 1);
        ck_assert_ptr_nonnull(strstr(why, "interp"));
        ck_assert_int_eq(decide(plus_alone, N(plus_alone), why, sizeof why), 0);
    }
    { /* device currents have no value in AC: ngspice sends none of its points, read back from its vectors */
        static const char *const sc_ac[] = {"t", ".options savecurrents", "R1 a 0 1", ".ac dec 1 1 10", ".end"};
        static const char *const sc_ctl[] = {"t", ".option reltol=1e-3", "+ savecurrents", "R1 a 0 1", ".control",
                                             "ac dec 1 1 10", ".endc", ".end"};
        static const char *const sc_tran[] = {"t", ".options savecurrents", "R1 a 0 1", ".tran 1n 1u", ".end"};
        ck_assert_int_eq(decide(sc_ac, N(sc_ac), why, sizeof why), 1);
        ck_assert_ptr_nonnull(strstr(why, "savecurrents"));
        ck_assert_int_eq(decide(sc_ctl, N(sc_ctl), why, sizeof why), 1);
        ck_assert_int_eq(decide(sc_tran, N(sc_tran), why, sizeof why), 0); /* a transient has them all */
    }
    { /* a card that sets a seed may set interp too */
        static const char *const seed_interp[] = {"t", "R1 a 0 1", ".options seed=42 interp", ".tran 1n 1u", ".end"};
        ck_assert_int_eq(decide(seed_interp, N(seed_interp), why, sizeof why), 1);
        ck_assert_ptr_nonnull(strstr(why, "interp"));
    }
    /* ...and so does interp set by the script (ngspice takes all three) */
    for (const char *const *cmd = (const char *const[]){"option interp", "set interp", "options reltol=1e-3 INTERP",
                                                         NULL}; *cmd; cmd++) {
        const char *lines[] = {"t", "R1 a 0 1", ".tran 1n 1u", ".control", *cmd, "run", ".endc", ".end"};
        ck_assert_msg(decide(lines, N(lines), why, sizeof why) == 1, "%s", *cmd);
        ck_assert_ptr_nonnull(strstr(why, "interp"));
    }
}
END_TEST

/* What a batch refuses to add a seed to: a netlist that sets its own, in a card or in
 * its script; a parameter or node named like the option is no seed. */
START_TEST(decks_that_set_their_own_seed)
{
    static const struct { const char *line; int sets; } cases[] = {
        {".options seed=42", 1}, {".OPTION reltol=1e-4 SEED=random", 1}, {".opt seed = 3", 1},
        {".param seed=3", 0}, {"Rseed a 0 1k", 0}, {".options reltol=1e-4", 0},
        {".options reltol=1e-4\n+ seed=7", 1}, /* on a continuation line */
    };
    static const struct { const char *line; int sets; } commands[] = {
        {"setseed 5", 1}, {"set rndseed=7", 1}, {"option seed=9", 1}, {"set width=80", 0}, {"echo seed", 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        const char *lines[] = {"t", cases[i].line, ".op", ".end"};
        ngs_deck d;
        ck_assert_int_eq(ngs_deck_from_lines(&d, lines, N(lines)), NGS_OK);
        ck_assert_msg(d.sets_seed == cases[i].sets, "%s", cases[i].line);
        ngs_deck_free(&d);
    }
    for (size_t i = 0; i < N(commands); i++) {
        const char *lines[] = {"t", "R1 a 0 1", ".control", commands[i].line, "op", ".endc", ".end"};
        ngs_deck d;
        ck_assert_int_eq(ngs_deck_from_lines(&d, lines, N(lines)), NGS_OK);
        ck_assert_msg(d.sets_seed == commands[i].sets, "%s", commands[i].line);
        ngs_deck_free(&d);
    }
}
END_TEST

/* What a batch refuses to add a temp to: a script that sets the temperature itself,
 * after the job's `.temp` card; a card, a longer name or a comparison sets none. */
START_TEST(decks_that_set_their_own_temperature)
{
    static const struct { const char *line; int sets; } commands[] = {
        {"set temp=100", 1}, {"set temp = 100", 1}, {"option TEMP=100", 1}, {"options reltol=1e-4 temp=$t", 1},
        {"set temp_dir=/tmp", 0}, {"set mytemp=3", 0}, {"echo temp=3", 0}, {"option tnom=50", 0},
        {"if temp == 3", 0},
    };
    for (size_t i = 0; i < N(commands); i++) {
        const char *lines[] = {"t", "R1 a 0 1", ".options temp=50", ".control", commands[i].line, "op", ".endc", ".end"};
        ngs_deck d;
        ck_assert_int_eq(ngs_deck_from_lines(&d, lines, N(lines)), NGS_OK);
        ck_assert_msg(d.sets_temp == commands[i].sets, "%s", commands[i].line);
        ngs_deck_free(&d);
    }
}
END_TEST

/* Which runs take the process-wide lock of ngspice's random generator: whole names
 * only, so a node called "brand" or a model "seedling" does not serialise a batch. */
static int draws(const char *const *lines, size_t n)
{
    ngs_deck d;
    int r;
    ck_assert_int_eq(ngs_deck_from_lines(&d, lines, n), NGS_OK);
    r = ngs_deck_draws_while_running(&d);
    ngs_deck_free(&d);
    return r;
}

START_TEST(random_functions_are_found_by_whole_name)
{
    static const char *const names[] = {"t", "R1 brand 0 1", "R2 seedling 0 1", ".control", "op", ".endc", ".end"};
    static const char *const agauss[] = {"t", ".param r=AGAUSS(1k, 10, 3)", "R1 a 0 {r}", ".control", "op",
                                         ".endc", ".end"};
    static const char *const seeded[] = {"t", "R1 a 0 1", ".options seed=5", ".control", "op", ".endc", ".end"};
    static const char *const noise[] = {"t", "V1 a 0 trnoise(1m 1n 0 0)", "R1 a 0 1", ".tran 1n 1u", ".end"};
    static const char *const plain[] = {"t", ".param r=gauss_x", "R1 a 0 {r}", ".tran 1n 1u", ".end"};
    ck_assert_int_eq(draws(names, N(names)), 0);
    ck_assert_int_eq(draws(agauss, N(agauss)), 1);
    ck_assert_int_eq(draws(seeded, N(seeded)), 1); /* seeding moves the shared generator */
    ck_assert_int_eq(draws(noise, N(noise)), 1);
    ck_assert_int_eq(draws(plain, N(plain)), 0);   /* no .control, no noise source: nothing while running */
    { /* a comment, or an XSPICE limit model, draws nothing: such decks ran one at a time */
        static const char *const comment[] = {"t", "* no gauss here, no limit either", "R1 a 0 1", ".control",
                                              "* seed the generator? no", "op", ".endc", ".end"};
        static const char *const model[] = {"t", "A1 a b lim", ".model lim limit(gain=1 out_lower_limit=-1)",
                                            "R1 a 0 1", ".control", "op", ".endc", ".end"};
        static const char *const model_draws[] = {"t", ".model lim limit(gain={agauss(1, 0.1, 3)})", "R1 a 0 1",
                                                  ".control", "op", ".endc", ".end"};
        ck_assert_int_eq(draws(comment, N(comment)), 0);
        ck_assert_int_eq(draws(model, N(model)), 0);
        ck_assert_int_eq(draws(model_draws, N(model_draws)), 1);
    }
}
END_TEST

START_TEST(spice_numbers_are_one_number_or_nan)
{
    ck_assert_double_eq(ngs_spice_number("1k"), 1e3);
    ck_assert_double_eq(ngs_spice_number("2.5meg"), 2.5e6);
    ck_assert_double_eq(ngs_spice_number(" 10pF "), 10e-12);
    ck_assert_double_eq(ngs_spice_number("1kohm"), 1e3);
    ck_assert_double_eq(ngs_spice_number("-3m"), -3e-3);
    ck_assert_double_eq(ngs_spice_number("1e3"), 1e3);
    ck_assert_double_eq(ngs_spice_number("100"), 100);
    ck_assert(isnan(ngs_spice_number("2*1k")));
    ck_assert(isnan(ngs_spice_number("1 k")));
    ck_assert(isnan(ngs_spice_number("{r}")));
    ck_assert(isnan(ngs_spice_number("abc")));
    ck_assert(isnan(ngs_spice_number("inf")));
    ck_assert(isnan(ngs_spice_number("0x10")));
    ck_assert(isnan(ngs_spice_number("")));
    /* "mil": 25.4u on device lines, milli in .param, as ngspice reads them */
    ck_assert_double_eq_tol(ngs_spice_number("2mil"), 50.8e-6, 1e-18);
    ck_assert_double_eq_tol(ngs_param_number("2mil"), 2e-3, 1e-15);
    ck_assert_double_eq_tol(ngs_param_number("1mils"), 1e-3, 1e-15);
    ck_assert_double_eq(ngs_param_number("2.5meg"), 2.5e6);
    /* the micro sign, which ngspice takes for u on device lines and in .param */
    ck_assert_double_eq_tol(ngs_param_number("2\u00b5"), 2e-6, 1e-21);
    ck_assert_double_eq_tol(ngs_spice_number("4.7\u00b5F"), 4.7e-6, 1e-21);
    ck_assert(isnan(ngs_spice_number("2\u00b5 3")));
}
END_TEST

START_TEST(strerror_names_every_code)
{
    for (int c = NGS_OK; c >= NGS_ERR_CODEC; c--)
        ck_assert_str_ne(ngs_strerror(c), "unknown error");
    ck_assert_str_eq(ngs_strerror(42), "unknown error");
    ck_assert_int_eq(ngs_codec_from_name("deflate"), NGS_CODEC_DEFLATE);
    ck_assert_int_eq(ngs_codec_from_name("lz4"), -1);
}
END_TEST

static void write_text(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert_ptr_nonnull(f = fopen(path, "w"));
    fputs(text, f);
    fclose(f);
}

static void load_with_included(ngs_deck *d, const char *const *lines, size_t n, const char *dir)
{
    ck_assert_int_eq(ngs_deck_from_lines(d, lines, n), NGS_OK);
    ck_assert_int_eq(ngs_deck_add_included(d, dir, NULL), NGS_OK);
}

/* What included files hold counts as the deck's own: a random draw on a '+' line of
 * a used .lib section, a .control block that only sets up (it leaves the analysis
 * cards to run), one that runs an analysis; an unused section counts for nothing. */
START_TEST(included_files_count_as_the_decks_own)
{
    char dir[] = "/tmp/ngs-deck-XXXXXX";
    static const char *const with_lib[] = {"t", "R1 a 0 1", ".lib models.lib stat", ".tran 1n 1u", ".end"};
    static const char *const with_setup[] = {"t", "R1 a 0 1", ".include setup.inc", ".tran 1n 1u", ".end"};
    static const char *const with_run[] = {"t", "R1 a 0 1", ".include run.inc", ".end"};
    static const char *const with_script[] = {"t", "R1 a 0 1", ".tran 1n 1u", ".control", "source s.sp", ".endc",
                                              ".end"};
    ngs_deck d;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_text(dir, "models.lib", ".lib stat\n.model dm D(is=1e-14\n+ rs={1+agauss(0,0.1,3)})\n.endl stat\n"
                                  ".lib other\n.control\nrun\n.endc\n.meas tran x max v(a)\n.endl other\n");
    write_text(dir, "setup.inc", ".control\nset num_threads=1\n.endc\n");
    write_text(dir, "run.inc", ".control\nop\nprint v(a)\n.endc\n");
    write_text(dir, "s.sp", "*ng_script\nrun\nmeas tran x max v(a)\n");

    ck_assert_int_eq(ngs_deck_from_lines(&d, with_lib, N(with_lib)), NGS_OK);
    ck_assert_int_eq(ngs_deck_uses_random(&d), 0); /* the deck's own lines draw nothing */
    ngs_deck_free(&d);
    load_with_included(&d, with_lib, N(with_lib), dir);
    ck_assert_int_eq(ngs_deck_uses_random(&d), 1);
    ck_assert_int_eq(d.has_control, 0);
    ck_assert_int_eq(d.reads_vectors, 0);
    ngs_deck_free(&d);

    load_with_included(&d, with_setup, N(with_setup), dir);
    ck_assert_int_eq(d.has_control, 1);
    ck_assert_int_eq(d.control_runs, 0);
    ck_assert_int_eq(d.has_analysis, 1);
    ngs_deck_free(&d);

    load_with_included(&d, with_run, N(with_run), dir);
    ck_assert_int_eq(d.control_runs, 1);
    ck_assert_int_eq(d.reads_vectors, 1);
    ck_assert_ptr_nonnull(strstr(d.reason, "in an included file"));
    ngs_deck_free(&d);

    /* a sourced *ng_script runs as .control: its meas reads vectors */
    load_with_included(&d, with_script, N(with_script), dir);
    ck_assert_int_eq(d.control_runs, 1);
    ck_assert_int_eq(d.reads_vectors, 1);
    ngs_deck_free(&d);

    for (const char *const *f = (const char *const[]){"models.lib", "setup.inc", "run.inc", "s.sp", NULL}; *f; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, *f);
        unlink(path);
    }
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("libngspice");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hooks_see_every_point);
    tcase_add_test(tc, progress_only_when_a_hook_wants_it);
    tcase_add_test(tc, quit_replaces_the_copy);
    tcase_add_test(tc, broken_netlist_then_good_run);
    tcase_add_test(tc, a_missing_argument_is_what_the_error_says);
    tcase_add_test(tc, hook_can_stop_a_run);
    tcase_add_test(tc, an_interrupt_before_the_run_stops_it_and_only_it);
    tcase_add_test(tc, one_run_at_a_time_and_hooks_only_stop_or_go_on);
    tcase_add_test(tc, bad_library_path_is_an_error);
    tcase_add_test(tc, a_tmp_dir_too_long_for_ngspice_is_refused);
    tcase_add_test(tc, includes_beside_a_netlist_in_a_long_directory_are_found);
    tcase_add_test(tc, batch_refuses_bad_jobs_before_writing);
    tcase_add_test(tc, bad_options_are_refused_before_anything_runs);
    tcase_add_test(tc, cache_hit_replays_the_same_events);
    tcase_add_test(tc, memory_decision_follows_the_deck);
    tcase_add_test(tc, decks_that_set_their_own_seed);
    tcase_add_test(tc, decks_that_set_their_own_temperature);
    tcase_add_test(tc, a_second_engine_never_shares_the_code_models);
    tcase_add_test(tc, destroy_during_a_run_stops_it_first);
    tcase_add_test(tc, a_batch_interrupt_is_for_one_run);
    tcase_add_test(tc, included_files_count_as_the_decks_own);
    tcase_add_test(tc, strerror_names_every_code);
    tcase_add_test(tc, random_functions_are_found_by_whole_name);
    tcase_add_test(tc, spice_numbers_are_one_number_or_nan);
    suite_add_tcase(s, tc);
    return ngs_run_suite(s);
}
