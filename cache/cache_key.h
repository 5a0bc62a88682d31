/*
 * cache_key.h - the result-cache key of one run.
 *
 * The key is a SHA-256 over everything that can change a run's result: the
 * netlist text, every file it pulls in by content (.include/.lib recursively,
 * `source`d scripts, `load`ed data, file= model parameters, osdi/codemodel
 * libraries), and what the caller says matters (ngspice version and build,
 * HDF5 format version, --save filter, memory mode, parameters, .cm/OSDI/spinit
 * files). What the key cannot account for (a shell command, a file that cannot be
 * found, random numbers without a fixed seed, files the run writes that a replay
 * would not recreate) makes the run uncacheable: a stale hit is worse than a miss.
 *
 * Paths never enter the key, only contents, so two checkouts of the same design
 * on two machines share entries (the Redis tier).
 */
#ifndef NGS_CACHE_KEY_H
#define NGS_CACHE_KEY_H

#include <stddef.h>
#include "ngscale.h"

typedef struct ngs_cache_key {
    char hex[65];      /* lowercase SHA-256; "" when not cacheable */
    int cacheable;     /* 1: hex identifies the result; 0: see reason */
    char reason[256];  /* why the run is not cacheable (the first cause found) */
    int nfiles;        /* files read by content into the key (netlist excluded) */
} ngs_cache_key;

/*
 * Computes the key of a run.
 *   netlist_path  the netlist file, or NULL when the netlist is given as text;
 *   netlist_text  the netlist text (first line is the title); NULL: read netlist_path;
 *   base_dir      directory relative names resolve against when netlist_path is NULL
 *                 (NULL: the current directory); with a path, the path's directory is
 *                 used, as ngspice does;
 *   search_dirs   NULL-terminated extra directories tried after the including file's
 *                 directory and the current directory (ngspice's `sourcepath`); may be NULL;
 *   extra_strings NULL-terminated strings that affect the result; may be NULL;
 *   extra_files   NULL-terminated files hashed by content (.cm, .osdi, .spiceinit...);
 *                 a missing file is hashed as "absent" (creating it changes the key);
 *                 one whose name holds ".spiceinit" or "spice.rc" is an init file
 *                 ngspice runs as commands (as it does): what it sources or loads is
 *                 hashed too, and a shell command in it makes the run uncacheable;
 *                 may be NULL.
 * A relative name may resolve against the including file's directory, the current
 * directory, or search_dirs (ngspice's order depends on where the deck is run from
 * and on `sourcepath`): every one of those files that exists is hashed, so the key
 * is right whichever ngspice opens. Compute the key in the working directory the
 * run will use, and put in search_dirs every directory the run gives ngspice as
 * `sourcepath` or where it places the deck it runs.
 * Returns NGS_OK (then key->cacheable says whether key->hex may be used),
 * NGS_ERR_ARG (key or both netlist arguments NULL), NGS_ERR_IO (netlist_path
 * unreadable; err says why) or NGS_ERR_NOMEM. err may be NULL.
 */
int ngs_cache_key_compute(ngs_cache_key *key, const char *netlist_path, const char *netlist_text,
                          const char *base_dir, const char *const *search_dirs,
                          const char *const *extra_strings, const char *const *extra_files,
                          char *err, size_t errlen);

/*
 * Which of names (NULL-terminated) the netlist at netlist_path, or a file it pulls
 * in, mentions as a whole identifier, case ignored: seen[i] is set to 1 or 0. It
 * reads the deck as ngs_cache_key_compute does (comments and unused .lib sections
 * aside, .control blocks and `source`d scripts included), so that a parameter no
 * card uses can be reported before a sweep runs. Returns NGS_OK, NGS_ERR_ARG,
 * NGS_ERR_IO (netlist unreadable; err says why) or NGS_ERR_NOMEM.
 */
int ngs_netlist_mentions(const char *netlist_path, const char *const *search_dirs, const char *const *names,
                         int *seen, char *err, size_t errlen);

/*
 * Calls visit(user, line) for the lines ngspice reads from the files the netlist
 * pulls in (.include files, the .lib sections it uses, `source`d scripts; nested),
 * in reading order: each card with its continuation lines joined and comments
 * stripped, and every line of their .control blocks. The netlist's own lines are
 * not visited. Names resolve as for ngs_cache_key_compute (netlist_text with
 * base_dir and search_dirs); every candidate file that exists is visited, and a
 * file that cannot be found is skipped. Returns NGS_OK, NGS_ERR_ARG or NGS_ERR_NOMEM.
 */
int ngs_netlist_visit_included(const char *netlist_text, const char *base_dir, const char *const *search_dirs,
                               void (*visit)(void *user, const char *line), void *user, char *err,
                               size_t errlen);

/* 1 when text has name as a whole identifier (letters, digits, '_'), case ignored:
 * a node called "brand" does not have "rand". */
int ngs_text_has_name(const char *text, const char *name);

/* 1 when s is 64 lowercase hex digits (a key or an entry name), else 0. */
int ngs_cache_key_valid_hex(const char *s);

#endif
