/*
 * plotdesc.c - plot descriptors and ngspice's vector type table.
 *
 * A descriptor is built once per analysis (on the simulation thread, or by the RAW
 * converter) and travels through the ring as a pointer; packing it into one
 * allocation keeps that hand-over and its release trivial.
 */
#include "hooks/dispatch.h"

#include <stdlib.h>
#include <string.h>

/* Order and names of ngspice's enum simulation_types as its RAW writer prints them. */
static const struct { const char *name, *unit; } vector_types[] = {
    {"notype", ""},           {"time", "s"},
    {"frequency", "Hz"},      {"voltage", "V"},
    {"current", "A"},         {"voltage-density", "V/sqrt(Hz)"},
    {"current-density", "A/sqrt(Hz)"}, {"sqr-voltage-density", "V^2/Hz"},
    {"sqr-current-density", "A^2/Hz"}, {"sqr-voltage", "V^2"},
    {"sqr-current", "A^2"},   {"pole", ""},
    {"zero", ""},             {"s-param", ""},
    {"temp-sweep", "Celsius"},{"res-sweep", "Ohm"},
    {"impedance", "Ohm"},     {"admittance", "S"},
    {"power", "W"},           {"phase", "degree"},
    {"decibel", "dB"},        {"capacitance", "F"},
    {"charge", "C"},
};
#define NTYPES (int)(sizeof vector_types / sizeof vector_types[0])

const char *ngs_vector_type_name(int type)
{
    return type >= 0 && type < NTYPES ? vector_types[type].name : "notype";
}

const char *ngs_vector_type_unit(int type)
{
    return type >= 0 && type < NTYPES ? vector_types[type].unit : "";
}

int ngs_vector_type_from_name(const char *name)
{
    for (int i = 0; name && i < NTYPES; i++)
        if (strcmp(vector_types[i].name, name) == 0) return i;
    return 0;
}

static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 1; }

static char *put_str(char **pool, const char *s)
{
    char *out = *pool;
    size_t n = str_size(s);
    if (s) memcpy(out, s, n); else out[0] = '\0';
    *pool += n;
    return out;
}

ngs_plot_desc *ngs_plot_desc_new(const char *name, const char *plotname, const char *analysis,
                                 const char *title, const char *date, int index,
                                 const ngs_vector_desc *vectors, int nvectors)
{
    size_t strings = str_size(name) + str_size(plotname) + str_size(analysis) +
                     str_size(title) + str_size(date);
    size_t head = sizeof(ngs_plot_desc) + (size_t)nvectors * sizeof(ngs_vector_desc);
    ngs_plot_desc *p;
    ngs_vector_desc *v;
    char *pool;
    int col = 0;

    if (nvectors < 0) return NULL;
    for (int i = 0; i < nvectors; i++)
        strings += str_size(vectors[i].name) + str_size(vectors[i].ngspice_name) +
                   str_size(vectors[i].type_name) + str_size(vectors[i].unit);
    p = calloc(1, head + strings);
    if (!p) return NULL;
    v = (ngs_vector_desc *)(p + 1);
    pool = (char *)(v + nvectors);
    p->name = put_str(&pool, name);
    p->plotname = put_str(&pool, plotname);
    p->analysis = put_str(&pool, analysis);
    p->title = put_str(&pool, title);
    p->date = put_str(&pool, date);
    p->index = index;
    p->nvectors = nvectors;
    p->vectors = v;
    p->scale_index = -1;
    for (int i = 0; i < nvectors; i++) {
        v[i] = vectors[i];
        v[i].name = put_str(&pool, vectors[i].name);
        v[i].ngspice_name = put_str(&pool, vectors[i].ngspice_name);
        v[i].type_name = put_str(&pool, vectors[i].type_name);
        v[i].unit = put_str(&pool, vectors[i].unit);
        v[i].column = col;
        col += v[i].is_complex ? 2 : 1;
        if (v[i].is_complex) p->is_complex = 1;
        if (v[i].is_scale && p->scale_index < 0) p->scale_index = i;
    }
    p->row_doubles = col;
    return p;
}

void ngs_plot_desc_free(ngs_plot_desc *p) { free(p); }
