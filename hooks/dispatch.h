/*
 * dispatch.h - the callback layer: ngspice callbacks -> typed events -> sinks.
 *
 * Producer side (ngspice's threads): each call copies its data into the ring and
 * returns. Consumer side: one dispatcher thread turns records into ngs_event
 * values and hands them, in order, to the sinks (the HDF5 writer, user hooks).
 */
#ifndef NGS_HOOKS_DISPATCH_H
#define NGS_HOOKS_DISPATCH_H

#include <stddef.h>
#include "ngscale.h"

typedef struct ngs_dispatch ngs_dispatch;

typedef struct ngs_sink {
    unsigned mask;                /* ngs_event_kind bits this sink receives */
    ngs_hook_fn on_event;         /* non-zero return: the run must stop */
    void (*on_idle)(void *user);  /* called when no record came for a while (flushes) */
    void *user;
} ngs_sink;

/* Hands ev to every sink whose mask takes it, in order, each whatever the others
 * returned (as the dispatcher does; a cache replay too); the first non-zero return. */
int ngs_sinks_deliver(const ngs_sink *sinks, size_t nsinks, const ngs_event *ev);

int ngs_dispatch_create(ngs_dispatch **dispatch, size_t ring_bytes);
void ngs_dispatch_destroy(ngs_dispatch *dispatch);

/* Replaces the sinks. Only between runs (after ngs_dispatch_drain). */
int ngs_dispatch_set_sinks(ngs_dispatch *dispatch, const ngs_sink *sinks, size_t nsinks);

/* ---- producer side: any ngspice thread ---- */
/* Takes ownership of plot (allocated with ngs_plot_desc_new). */
void ngs_dispatch_plot_begin(ngs_dispatch *dispatch, ngs_plot_desc *plot);
/* Space for one row of plot->row_doubles doubles; NULL if the ring was closed (or no
 * memory for a row larger than one ring record, which is sent in pieces: the
 * dispatcher's error is then NGS_ERR_NOMEM). */
double *ngs_dispatch_row_begin(ngs_dispatch *dispatch, size_t ndoubles);
void ngs_dispatch_row_commit(ngs_dispatch *dispatch);
void ngs_dispatch_plot_end(ngs_dispatch *dispatch, int status, const char *message);
void ngs_dispatch_message(ngs_dispatch *dispatch, const char *text, int is_error);
void ngs_dispatch_progress(ngs_dispatch *dispatch, double percent);

/* ---- control side ---- */
/* Waits until every record sent so far has reached the sinks. Returns the first
 * sink failure since the last ngs_dispatch_reset_error, or NGS_OK. */
int ngs_dispatch_drain(ngs_dispatch *dispatch);
/* First sink failure (non-blocking), NGS_OK when none. */
int ngs_dispatch_error(const ngs_dispatch *dispatch);
void ngs_dispatch_reset_error(ngs_dispatch *dispatch);

/* ---- plot descriptors ---- */
/* One allocation holding the descriptor, its vectors and their strings.
 * Strings are copied. Vector columns, scale index, complexity and row size are
 * computed from the vectors. */
ngs_plot_desc *ngs_plot_desc_new(const char *name, const char *plotname, const char *analysis,
                                 const char *title, const char *date, int index,
                                 const ngs_vector_desc *vectors, int nvectors);
void ngs_plot_desc_free(ngs_plot_desc *plot);

/* ngspice vector types (enum simulation_types) -> RAW type names and units. */
const char *ngs_vector_type_name(int type);
const char *ngs_vector_type_unit(int type);
/* Inverse of ngs_vector_type_name; 0 (notype) when unknown. */
int ngs_vector_type_from_name(const char *name);

#endif
