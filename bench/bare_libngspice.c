/*
 * bare_libngspice.c - the ceiling for any program built on libngspice: one netlist run
 * through the shared library as ngscale runs it (`.save none` added, SendData on every
 * point), with every point thrown away. bench_batch.py runs it under xargs -P beside
 * `ngspice -b -r`: its throughput is what ngscale would reach if writing HDF5 cost
 * nothing.
 *
 *   bare_libngspice NETLIST     exit 0 when the analyses ran and sent points
 */
#define _GNU_SOURCE /* strdup */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ngspice/sharedspice.h>

static long points;
static int exited;

static int on_char(char *text, int id, void *user)
{
    (void)id, (void)user;
    if (strncmp(text, "stderr Error", 12) == 0) fprintf(stderr, "%s\n", text + 7);
    return 0;
}

static int on_exit_request(int status, NG_BOOL unload, NG_BOOL quit, int id, void *user)
{
    (void)status, (void)unload, (void)quit, (void)id, (void)user;
    exited = 1;
    return 0;
}

static int on_data(pvecvaluesall values, int count, int id, void *user)
{
    (void)values, (void)count, (void)id, (void)user;
    points++;
    return 0;
}

static int on_init_data(pvecinfoall info, int id, void *user)
{
    (void)info, (void)id, (void)user;
    return 0;
}

int main(int argc, char **argv)
{
    static char *lines[100000], buf[65536]; /* static: 800 KB off the stack */
    int n = 0, end_at = -1;
    FILE *f;
    if (argc != 2 || !(f = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: bare_libngspice NETLIST\n");
        return 2;
    }
    while (n < 99998 && fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (end_at < 0 && strncmp(buf, ".end", 4) == 0 && (buf[4] == '\0' || buf[4] == ' ')) {
            end_at = n;
            lines[n++] = strdup(".save none"); /* what ngscale adds for flat memory */
        }
        lines[n++] = strdup(buf);
    }
    fclose(f);
    lines[n] = NULL;
    /* no SendStat: ngscale's batch does not ask for progress either */
    ngSpice_Init(on_char, NULL, on_exit_request, on_data, on_init_data, NULL, NULL);
    if (ngSpice_Circ(lines) != 0 || exited || ngSpice_Command("run") != 0 || exited || points == 0) {
        fprintf(stderr, "bare_libngspice: %s did not run\n", argv[1]);
        return 1;
    }
    return 0;
}
