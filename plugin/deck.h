/*
 * deck.h - a netlist as ngscale sees it before handing it to ngspice.
 *
 * Reading the deck ourselves lets us decide, per run, whether ngspice may drop its
 * vectors (`.save none`, flat memory) or must keep them because something reads
 * them after an analysis (.meas, a .control script that prints, lets, writes...).
 */
#ifndef NGS_PLUGIN_DECK_H
#define NGS_PLUGIN_DECK_H

#include <stddef.h>

typedef struct ngs_deck {
    char **lines;        /* the netlist as given, one string per line */
    size_t nlines;
    int has_control;     /* a .control block (its lines run as ngspice reads the deck) */
    int control_runs;    /* ...and runs an analysis itself: the deck's analysis cards wait for it */
    int reads_vectors;   /* something reads vectors after an analysis */
    int has_analysis;    /* an analysis card (.tran, .ac, ...) outside .control */
    int is_script;       /* titled *ng_script: commands only, no cards can be added */
    int sets_seed;       /* .options seed, setseed or set rndseed (here or, after
                            ngs_deck_add_included, in a pulled-in file) */
    int saves_currents;  /* .options savecurrents: every device current is saved... */
    int has_ac;          /* ...and an AC-type analysis (.ac, .sp, or the command) has none */
    int sets_temp;       /* `set temp=` or `option temp=` in .control (there or in a
                            pulled-in file): it wins over a `.temp` card */
    char reason[200];    /* why reads_vectors is set */
    /* set by ngs_deck_add_included: a pulled-in file names a noise source, or a
     * random function or seed */
    int included_noise, included_random;
    /* 1-based line of a .control that had no .endc: the loader closed it before
     * `.end` (ngspice would run `.end` as a command and fail); 0 when none */
    size_t closed_control;
} ngs_deck;

/* Loads a file; on failure err says why. */
int ngs_deck_load_file(ngs_deck *deck, const char *path, char *err, size_t errlen);
int ngs_deck_from_lines(ngs_deck *deck, const char *const *lines, size_t nlines);
void ngs_deck_free(ngs_deck *deck);

/* Adds what the files the deck pulls in (.include, .lib sections, `source`d
 * scripts) hold to has_control, reads_vectors, has_analysis and the random checks:
 * ngspice runs a .control block or a .meas card from an included file as if it
 * were the deck's own. Relative names resolve against base_dir (the netlist's
 * directory), the current directory, then search_dirs. A deck that pulls nothing
 * in costs one pass over its lines. NGS_OK, or NGS_ERR_NOMEM. */
int ngs_deck_add_included(ngs_deck *deck, const char *base_dir, const char *const *search_dirs);

/* Inserts lines before the deck's `.end` card (or at the end when it has none). */
int ngs_deck_insert_before_end(ngs_deck *deck, const char *const *lines, size_t n);

/* Writes the deck to path, with a `.save none` card before `.end` when save_none. */
int ngs_deck_write(const ngs_deck *deck, int save_none, const char *path);

/* A SPICE number ("1k", "2.2u", "3meg", "10") as a double; NAN when it is not one. */
double ngs_spice_number(const char *text);
/* The same as ngspice's .param reads it: "mil" is milli there. */
double ngs_param_number(const char *text);

/* 1 when name can stand before `=` in a `.param` card as one parameter's name: a
 * letter or _, then letters, digits, _ or [ ] (ngspice's numparam names; bytes past
 * ASCII pass). A blank, =, a quote or a brace would set another parameter, or none. */
int ngs_param_name_ok(const char *name);

/* 1 when ngspice may draw random numbers while the deck runs, not only while it is
 * read: sources drawing during an analysis (trnoise, trrandom), or a .control block
 * that mentions randomness. A conservative text match. */
int ngs_deck_draws_while_running(const ngs_deck *deck);

/* 1 when the deck names any of ngspice's random functions, noise sources or seeds,
 * wherever they are (whole names only). */
int ngs_deck_uses_random(const ngs_deck *deck);

/* The whole text, lines joined with '\n' (caller frees). */
char *ngs_deck_text(const ngs_deck *deck);

#endif
