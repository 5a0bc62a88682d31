/*
 * codemodels.c - per-instance copies of the XSPICE code models (see codemodels.h).
 */
#include "codemodels/codemodels.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ngscale.h"
#include "cache/record.h"

static const char *const default_lib_dirs[] = {"/usr/share/ngspice", "/usr/local/share/ngspice", NULL};

int ngs_private_copy(const char *from, const char *to)
{
    char buf[1 << 16];
    int in = open(from, O_RDONLY | O_CLOEXEC), out;
    ssize_t n;
    if (in < 0) return -1;
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    if (out < 0) {
        close(in);
        return -1;
    }
    /* in the kernel where it can (half the time of read/write for libngspice's
     * 7.6 MB, copied for every instance); by hand across file systems */
    while ((n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0)) > 0)
        ;
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL) &&
        lseek(in, 0, SEEK_CUR) == 0) {
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (ngs_write_all(out, buf, (size_t)n) != 0) {
                n = -1;
                break;
            }
    }
    close(in);
    if (close(out) != 0 || n < 0) return -1;
    return 0;
}

/* The user's SPICE_LIB_DIR, read once: an instance sets the variable to its own
 * directory during its Init (engine.c), and instances start side by side, so a later
 * read could see another instance's copy. The first read precedes every such Init.
 * SPICE_SCRIPTS, when set (even empty), is where ngspice looks for spinit instead
 * (ivars.c: it wins over SPICE_LIB_DIR/scripts, also for an instance). */
static char user_lib_dir[2048], user_scripts_dir[2048];
static int user_scripts_set;
static pthread_once_t user_lib_dir_once = PTHREAD_ONCE_INIT;

static void read_user_lib_dir(void)
{
    const char *env = getenv("SPICE_LIB_DIR");
    if (env) snprintf(user_lib_dir, sizeof user_lib_dir, "%s", env);
    if ((env = getenv("SPICE_SCRIPTS"))) {
        user_scripts_set = 1;
        snprintf(user_scripts_dir, sizeof user_scripts_dir, "%s", env);
    }
}

/* path: the spinit opened; "" when none was, but with SPICE_SCRIPTS the one ngspice
 * would read (its creation later changes a run). */
static FILE *open_system_spinit(char *path, size_t n)
{
    FILE *f;
    pthread_once(&user_lib_dir_once, read_user_lib_dir);
    path[0] = '\0';
    if (user_scripts_set) { /* empty: ngspice reads no spinit at all */
        if (user_scripts_dir[0]) snprintf(path, n, "%s/spinit", user_scripts_dir);
        return path[0] ? fopen(path, "r") : NULL;
    }
    if (user_lib_dir[0]) {
        snprintf(path, n, "%s/scripts/spinit", user_lib_dir);
        if ((f = fopen(path, "r"))) return f;
    }
    for (int i = 0; default_lib_dirs[i]; i++) {
        snprintf(path, n, "%s/scripts/spinit", default_lib_dirs[i]);
        if ((f = fopen(path, "r"))) return f;
    }
    path[0] = '\0';
    return NULL;
}

/* ngspice runs a command it does not know as a script found on sourcepath, whose
 * scripts directory is now the instance's: the system's other scripts (ciderinit,
 * spectrum, devload...) are linked there. One missing is ngspice's own message. */
static void link_system_scripts(const char *system_spinit, const char *dir)
{
    char from_dir[4096], from[4096 + 256], to[4096 + 256];
    struct dirent *de;
    DIR *d;
    char *slash;
    snprintf(from_dir, sizeof from_dir, "%s", system_spinit);
    if (!(slash = strrchr(from_dir, '/'))) return;
    *slash = '\0';
    if (!(d = opendir(from_dir))) return;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "spinit") == 0) continue;
        snprintf(from, sizeof from, "%s/%s", from_dir, de->d_name);
        snprintf(to, sizeof to, "%s/scripts/%s", dir, de->d_name);
        (void)symlink(from, to);
    }
    closedir(d);
}

int ngs_codemodels_prepare(const char *dir, char *err, size_t errlen)
{
    char src[4096], path[4096], line[4096];
    FILE *in, *out;
    int rc = NGS_OK, n = 0;

    in = open_system_spinit(src, sizeof src);
    snprintf(path, sizeof path, "%s/scripts", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) goto io_error;
    snprintf(path, sizeof path, "%s/cm", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) goto io_error;
    snprintf(path, sizeof path, "%s/scripts/spinit", dir);
    out = fopen(path, "w");
    if (!out) goto io_error;
    fputs("* spinit of one ngscale instance: private copies of the code models\n", out);
    while (in && fgets(line, sizeof line, in)) {
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (strncmp(p, "codemodel", 9) == 0 && isspace((unsigned char)p[9])) {
            char file[2048], copy[4096 + 2048];
            const char *base;
            if (sscanf(p + 9, " %2047s", file) != 1) continue;
            base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
            snprintf(copy, sizeof copy, "%s/cm/%d-%s", dir, n++, base);
            if (ngs_private_copy(file, copy) != 0) {
                /* a missing library is ngspice's own warning to give, as it would */
                fprintf(out, "codemodel %s\n", file);
                continue;
            }
            fprintf(out, " codemodel %s\n", copy);
        } else {
            fputs(line, out);
        }
    }
    if (in) {
        fclose(in);
        link_system_scripts(src, dir);
    }
    if (ferror(out)) rc = NGS_ERR_IO;
    if (fclose(out) != 0) rc = NGS_ERR_IO;
    if (rc != NGS_OK) snprintf(err, errlen, "%s: write error", path);
    return rc;
io_error:
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    if (in) fclose(in);
    return NGS_ERR_IO;
}

int ngs_codemodels_files(char ***out)
{
    char path[4096], line[4096];
    size_t n = 0, cap = 8;
    char **files = calloc(cap, sizeof *files);
    FILE *in = open_system_spinit(path, sizeof path);
    if (!files) {
        if (in) fclose(in);
        return NGS_ERR_NOMEM;
    }
    if (path[0]) files[n++] = strdup(path); /* one absent is hashed as absent */
    while (in && fgets(line, sizeof line, in)) {
        char file[2048], *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (strncmp(p, "codemodel", 9) != 0 || !isspace((unsigned char)p[9])) continue;
        if (sscanf(p + 9, " %2047s", file) != 1) continue;
        if (n + 2 > cap) {
            char **g = realloc(files, (cap *= 2) * sizeof *g);
            if (!g) break;
            files = g;
        }
        files[n++] = strdup(file);
    }
    if (in) fclose(in);
    files[n] = NULL;
    *out = files;
    return NGS_OK;
}
