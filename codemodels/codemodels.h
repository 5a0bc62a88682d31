/*
 * codemodels.h - private XSPICE code-model libraries for one ngspice instance.
 *
 * ngspice loads `.cm` libraries with dlopen by path, so instances that load the
 * same file share its global state and silently compute wrong results. Each
 * instance gets its own copies and its own spinit that loads them; ngspice reads
 * that spinit when SPICE_LIB_DIR points at the directory prepared here.
 */
#ifndef NGS_CODEMODELS_H
#define NGS_CODEMODELS_H
#include <stddef.h>

/* Prepares dir/scripts/spinit and dir/cm/<copies of the system's .cm files>, from
 * the system spinit ($SPICE_LIB_DIR/scripts/spinit, else ngspice's default). Its
 * other lines are kept, and the system's other scripts are linked into dir/scripts
 * (ngspice finds scripts there by name). Returns NGS_OK; err says what failed otherwise. */
int ngs_codemodels_prepare(const char *dir, char *err, size_t errlen);

/* The system spinit (the one ngspice reads: $SPICE_SCRIPTS/spinit when that is
 * set, even if absent) and the code-model libraries it loads (what a run's result
 * depends on besides the netlist): a NULL-terminated malloc'ed array of malloc'ed
 * paths. NGS_OK, or NGS_ERR_NOMEM. */
int ngs_codemodels_files(char ***files);

/* Copies a shared library for one instance (libngspice or a code model: both are
 * dlopen'ed by path, so instances need files of their own). 0, or -1 with errno. */
int ngs_private_copy(const char *from, const char *to);

#endif
