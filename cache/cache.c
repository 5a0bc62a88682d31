/*
 * cache.c - local content-addressed store of recordings, with Redis as second tier.
 *
 * Why it is built this way (layout in cache.h):
 * - Every file appears by rename() of an fsync'ed temporary, so a reader sees a
 *   whole old file or a whole new one, never a torn one; entries are checked again
 *   (metadata checksum, recording size and SHA-256) before being served, so even a
 *   disk that lies gives a miss, not a wrong result.
 * - DIR/lock is flock'ed around the few steps that must not interleave between
 *   processes: installing an entry (two renames), deleting one, eviction, gc and
 *   the counters. Lookups read without the lock and take it only to confirm that
 *   an entry is really broken before deleting it (it may be mid-install).
 * - "Last used" is the mtime of the .meta file: a hit costs one utimensat().
 * - Writers hold flock on their temporary files, so gc can tell a dead writer's
 *   leftovers (unlocked) from a live writer's work (locked).
 * - Redis errors never propagate: they become warnings, and Redis is skipped for a
 *   while so that a dead server costs one connect timeout, not one per run.
 */
#include "cache/cache.h"
#include "cache/record.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#define DEFAULT_MAX_BYTES ((uint64_t)10 << 30)
#define DEFAULT_TTL_S (30 * 24 * 3600)
#define DEFAULT_CONNECT_MS 200
#define DEFAULT_COMMAND_MS 2000
#define DEFAULT_CHUNK ((size_t)4 << 20)
#define DEFAULT_RETRY_S 30
#define DEFAULT_GRACE_S 60
#define MAX_CHUNK ((size_t)256 << 20)
#define META_MAX 8192
#define REDIS_PREFIX "ngscale:v1:"
#define TMP_PREFIX ".tmp-"

struct ngs_cache {
    char *dir;
    ngs_cache_options o;
    /* Redis: parsed URL, one connection guarded by rmu */
    int has_redis;
    char *host, *user, *pass;
    int port, db;
    pthread_mutex_t rmu;
    redisContext *rc;
    struct timespec retry_at;
    char *url; /* as given: which servers_down entry is this one's */
    /* last warning, guarded by wmu */
    pthread_mutex_t wmu;
    char warning[512];
    int has_warning;
    int read_only; /* an existing cache this process may not write: lookups only */
    int scratch;   /* dir is this handle's own, for Redis hits: nothing is kept there */
    struct ngs_cache *stage; /* read_only with Redis: a scratch store for Redis hits */
};

/* Metadata of one entry (the .meta file, or a Redis manifest). */
typedef struct {
    uint64_t size;
    unsigned char rsha[32]; /* the recording's own checksum (its footer) */
    int64_t created;
    double sim_seconds;
    char ngspice[128];
} meta_t;

typedef struct {
    uint64_t hits, misses, redis_hits, stores, evictions, corrupt, bytes_served, bytes;
    double sim_saved;
} counters;

/* ------------------------------------------------------------------ helpers -- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void warn(ngs_cache *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->wmu);
    memcpy(c->warning, msg, sizeof msg);
    c->has_warning = 1;
    pthread_mutex_unlock(&c->wmu);
    if (c->o.warn) c->o.warn(msg, c->o.warn_user);
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int from_hex(const char *s, unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            int ch = s[2 * i + k];
            v <<= 4;
            if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
            else return -1;
        }
        b[i] = (unsigned char)v;
    }
    return 0;
}

static int sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof tmp) { errno = ENAMETOOLONG; return -1; }
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static int path_fmt(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    int r;
    va_start(ap, fmt);
    r = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    return r < 0 || (size_t)r >= n ? -1 : 0;
}

static void shard_path(const ngs_cache *c, const char *hex, char *out, size_t n)
{
    path_fmt(out, n, "%s/%.2s", c->dir, hex);
}

static void entry_path(const ngs_cache *c, const char *hex, const char *ext, char *out, size_t n)
{
    path_fmt(out, n, "%s/%.2s/%s.%s", c->dir, hex, hex, ext);
}

/* A flock'ed temporary file in dir (gc leaves locked ones alone). */
static int make_temp(const char *dir, char *path, size_t n)
{
    int fd;
    if (path_fmt(path, n, "%s/" TMP_PREFIX "XXXXXX", dir) != 0) { errno = ENAMETOOLONG; return -1; }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) return -1;
    (void)flock(fd, LOCK_EX | LOCK_NB);
    (void)fchmod(fd, 0644);
    return fd;
}

/* flock on DIR/lock: serializes installs, deletions, eviction and counters
 * between threads and processes (each call opens its own descriptor). */
static int dir_lock(const ngs_cache *c)
{
    char path[PATH_MAX];
    int fd;
    if (path_fmt(path, sizeof path, "%s/lock", c->dir) != 0) return -1;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) { close(fd); return -1; }
    }
    return fd;
}

static void dir_unlock(int fd)
{
    if (fd >= 0) close(fd); /* releases the flock */
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

static void mono_now(struct timespec *t) { clock_gettime(CLOCK_MONOTONIC, t); }

/* Copies src into dst, in the kernel when it can. */
static int copy_fd(int src, int dst, uint64_t size)
{
    uint64_t done = 0;
    char *buf = NULL;
    while (done < size) {
        ssize_t n = copy_file_range(src, NULL, dst, NULL, (size_t)(size - done), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += (uint64_t)n;
    }
    if (done == size) return 0;
    /* fallback: plain reads and writes from where copy_file_range stopped */
    if (lseek(src, (off_t)done, SEEK_SET) < 0 || lseek(dst, (off_t)done, SEEK_SET) < 0) return -1;
    if (!(buf = malloc(1 << 20))) return -1;
    while (done < size) {
        ssize_t n = read(src, buf, 1 << 20);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || ngs_write_all(dst, buf, (size_t)n) != 0) break;
        done += (uint64_t)n;
    }
    free(buf);
    return done == size ? 0 : -1;
}

static int read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    size_t got = 0;
    if (fd < 0) return -1;
    while (got < cap - 1 && (n = read(fd, buf + got, cap - 1 - got)) != 0) {
        if (n < 0) {
            if (errno == EINTR) continue;
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return 0;
}

/* ---------------------------------------------------- checksummed text files --
 * .meta files, the counters and Redis manifests are "name value" lines ending
 * with "check <sha256 of everything before that line>". */

static int seal(char *buf, size_t cap, size_t *len)
{
    unsigned char md[32];
    char hex[65];
    int r;
    if (sha256(buf, *len, md) != 0) return -1;
    to_hex(md, 32, hex);
    r = snprintf(buf + *len, cap - *len, "check %s\n", hex);
    if (r < 0 || (size_t)r >= cap - *len) return -1;
    *len += (size_t)r;
    return 0;
}

/* Returns the length of the checked part, or -1 when the seal is wrong. */
static long unseal(const char *buf, size_t len)
{
    const char *p = NULL;
    unsigned char md[32], want[32];
    for (const char *q = buf; (q = strstr(q, "check ")) != NULL; q++)
        if (q == buf || q[-1] == '\n') p = q;
    if (!p || (size_t)(buf + len - p) != 6 + 64 + 1 || p[70] != '\n') return -1;
    if (from_hex(p + 6, want, 32) != 0 || sha256(buf, (size_t)(p - buf), md) != 0) return -1;
    return memcmp(md, want, 32) == 0 ? (long)(p - buf) : -1;
}

/* Value of "name value\n" within buf[0, len), copied to out. */
static int field(const char *buf, size_t len, const char *name, char *out, size_t n)
{
    size_t k = strlen(name);
    for (const char *p = buf; p < buf + len;) {
        const char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        size_t linelen = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
        if (linelen > k && strncmp(p, name, k) == 0 && p[k] == ' ') {
            size_t vlen = linelen - k - 1;
            if (vlen >= n) vlen = n - 1;
            memcpy(out, p + k + 1, vlen);
            out[vlen] = '\0';
            return 0;
        }
        if (!nl) break;
        p = nl + 1;
    }
    return -1;
}

static int field_u64(const char *buf, size_t len, const char *name, uint64_t *v)
{
    char s[32], *end;
    if (field(buf, len, name, s, sizeof s) != 0 || !isdigit((unsigned char)s[0])) return -1;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return *end || errno ? -1 : 0;
}

static int field_double(const char *buf, size_t len, const char *name, double *v)
{
    char s[64], *end;
    if (field(buf, len, name, s, sizeof s) != 0) return -1;
    *v = strtod(s, &end);
    return *end ? -1 : 0;
}

static void one_line(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

/* Text of a meta_t (without seal): shared by .meta files and Redis manifests. */
static int meta_text(const meta_t *m, const char *magic, const char *hex, char *buf, size_t cap, size_t *len)
{
    char rsha[65];
    int r;
    to_hex(m->rsha, 32, rsha);
    r = snprintf(buf, cap, "%s\nkey %s\nsize %llu\nrecording %s\ncreated %lld\nsim_seconds %.17g\nngspice %s\n",
                 magic, hex, (unsigned long long)m->size, rsha, (long long)m->created, m->sim_seconds,
                 m->ngspice);
    if (r < 0 || (size_t)r >= cap) return -1;
    *len = (size_t)r;
    return 0;
}

static int meta_parse(const char *buf, size_t len, const char *magic, const char *hex, meta_t *m)
{
    char s[128];
    uint64_t created;
    size_t k = strlen(magic);
    memset(m, 0, sizeof *m);
    if (len <= k || strncmp(buf, magic, k) != 0 || buf[k] != '\n') return -1;
    if (field(buf, len, "key", s, sizeof s) != 0 || strcmp(s, hex) != 0) return -1;
    if (field_u64(buf, len, "size", &m->size) != 0) return -1;
    if (field(buf, len, "recording", s, sizeof s) != 0 || strlen(s) != 64 || from_hex(s, m->rsha, 32) != 0) return -1;
    if (field_u64(buf, len, "created", &created) != 0) return -1;
    m->created = (int64_t)created;
    if (field_double(buf, len, "sim_seconds", &m->sim_seconds) != 0) return -1;
    if (field(buf, len, "ngspice", m->ngspice, sizeof m->ngspice) != 0) m->ngspice[0] = '\0';
    return 0;
}

#define META_MAGIC "ngscale-cache-entry 1"

static int meta_read(const ngs_cache *c, const char *hex, meta_t *m)
{
    char path[PATH_MAX], buf[META_MAX];
    size_t len;
    long body;
    entry_path(c, hex, "meta", path, sizeof path);
    if (read_small(path, buf, sizeof buf, &len) != 0) return -1;
    if ((body = unseal(buf, len)) < 0) return -1;
    return meta_parse(buf, (size_t)body, META_MAGIC, hex, m);
}

/* The sealed text of a .meta file (buf: META_MAX bytes). */
static int meta_file_text(const meta_t *m, const char *hex, char *buf, size_t *len)
{
    return meta_text(m, META_MAGIC, hex, buf, META_MAX, len) != 0 || seal(buf, META_MAX, len) != 0 ? -1 : 0;
}

/* What an entry takes in the local tier (recording and .meta), as eviction counts it. */
static uint64_t entry_size(const meta_t *m, const char *hex)
{
    char buf[META_MAX];
    size_t len;
    return m->size + (meta_file_text(m, hex, buf, &len) == 0 ? len : META_MAX);
}

/* Writes a sealed .meta into a temporary file of the shard; returns its fd (path set). */
static int meta_write_temp(const ngs_cache *c, const char *hex, const meta_t *m, char *tmp, size_t n)
{
    char shard[PATH_MAX], buf[META_MAX];
    size_t len;
    int fd;
    shard_path(c, hex, shard, sizeof shard);
    if (meta_file_text(m, hex, buf, &len) != 0) {
        errno = EINVAL;
        return -1;
    }
    if ((fd = make_temp(shard, tmp, n)) < 0) return -1;
    if (ngs_write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    return fd;
}

/* ----------------------------------------------------------------- counters -- */

#define STATS_MAGIC "ngscale-cache-stats 1"

static void stats_read(const ngs_cache *c, counters *s)
{
    char path[PATH_MAX], buf[2048];
    size_t len;
    long body;
    memset(s, 0, sizeof *s);
    if (path_fmt(path, sizeof path, "%s/stats", c->dir) != 0 || read_small(path, buf, sizeof buf, &len) != 0) return;
    if ((body = unseal(buf, len)) < 0 || strncmp(buf, STATS_MAGIC "\n", strlen(STATS_MAGIC) + 1) != 0) return;
    len = (size_t)body;
    field_u64(buf, len, "hits", &s->hits);
    field_u64(buf, len, "misses", &s->misses);
    field_u64(buf, len, "redis_hits", &s->redis_hits);
    field_u64(buf, len, "stores", &s->stores);
    field_u64(buf, len, "evictions", &s->evictions);
    field_u64(buf, len, "corrupt", &s->corrupt);
    field_u64(buf, len, "bytes_served", &s->bytes_served);
    field_u64(buf, len, "bytes", &s->bytes);
    field_double(buf, len, "sim_seconds_saved", &s->sim_saved);
}

/* With DIR/lock held: the file is replaced by rename, so readers need no lock. */
static void stats_write(const ngs_cache *c, const counters *s)
{
    char path[PATH_MAX], tmp[PATH_MAX], buf[2048];
    size_t len;
    int fd, r;
    r = snprintf(buf, sizeof buf,
                 STATS_MAGIC "\nhits %llu\nmisses %llu\nredis_hits %llu\nstores %llu\nevictions %llu\n"
                 "corrupt %llu\nbytes_served %llu\nbytes %llu\nsim_seconds_saved %.17g\n",
                 (unsigned long long)s->hits, (unsigned long long)s->misses, (unsigned long long)s->redis_hits,
                 (unsigned long long)s->stores, (unsigned long long)s->evictions,
                 (unsigned long long)s->corrupt, (unsigned long long)s->bytes_served,
                 (unsigned long long)s->bytes, s->sim_saved);
    if (r < 0 || (size_t)r >= sizeof buf) return;
    len = (size_t)r;
    if (seal(buf, sizeof buf, &len) != 0 || path_fmt(path, sizeof path, "%s/stats", c->dir) != 0) return;
    if ((fd = make_temp(c->dir, tmp, sizeof tmp)) < 0) return;
    if (ngs_write_all(fd, buf, len) != 0 || rename(tmp, path) != 0) unlink(tmp);
    close(fd);
}

typedef struct {
    counters add;
    int64_t bytes_delta;
    int set_bytes; /* bytes := add.bytes instead of adding bytes_delta */
    int reset;
} stats_delta;

static void stats_apply_locked(const ngs_cache *c, const stats_delta *d, counters *out)
{
    counters s;
    if (d->reset) memset(&s, 0, sizeof s);
    else stats_read(c, &s);
    s.hits += d->add.hits;
    s.misses += d->add.misses;
    s.redis_hits += d->add.redis_hits;
    s.stores += d->add.stores;
    s.evictions += d->add.evictions;
    s.corrupt += d->add.corrupt;
    s.bytes_served += d->add.bytes_served;
    s.sim_saved += d->add.sim_saved;
    if (d->set_bytes) s.bytes = d->add.bytes;
    else if (d->bytes_delta < 0 && (uint64_t)-d->bytes_delta > s.bytes) s.bytes = 0;
    else s.bytes += (uint64_t)d->bytes_delta;
    stats_write(c, &s);
    if (out) *out = s;
}

static void stats_apply(const ngs_cache *c, const stats_delta *d)
{
    int fd = dir_lock(c);
    if (fd < 0) return; /* read-only cache: counters are best effort */
    stats_apply_locked(c, d, NULL);
    dir_unlock(fd);
}

/* --------------------------------------------------------------- local tier -- */

enum { L_HIT, L_MISS, L_CORRUPT };

/* Full check of one entry: metadata seal, recording checksum, and that the two
 * belong together. */
static int local_check(const ngs_cache *c, const char *hex, meta_t *m, int full)
{
    char path[PATH_MAX];
    ngs_recording_info ri;
    int fd, rc;
    entry_path(c, hex, "ngsc", path, sizeof path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? L_MISS : L_CORRUPT;
    if (meta_read(c, hex, m) != 0) { close(fd); return L_CORRUPT; }
    rc = full ? ngs_recording_verify_fd(fd, &ri, NULL, 0) : ngs_recording_peek_fd(fd, &ri);
    close(fd);
    if (rc != NGS_OK || ri.file_bytes != m->size || memcmp(ri.sha256, m->rsha, 32) != 0) return L_CORRUPT;
    return L_HIT;
}

static uint64_t entry_bytes(const ngs_cache *c, const char *hex)
{
    char path[PATH_MAX];
    struct stat st;
    uint64_t n = 0;
    entry_path(c, hex, "ngsc", path, sizeof path);
    if (stat(path, &st) == 0) n += (uint64_t)st.st_size;
    entry_path(c, hex, "meta", path, sizeof path);
    if (stat(path, &st) == 0) n += (uint64_t)st.st_size;
    return n;
}

/* With DIR/lock held. Returns the bytes freed. */
static uint64_t remove_entry_locked(const ngs_cache *c, const char *hex)
{
    char path[PATH_MAX];
    uint64_t n = entry_bytes(c, hex);
    entry_path(c, hex, "meta", path, sizeof path);
    unlink(path);
    entry_path(c, hex, "ngsc", path, sizeof path);
    unlink(path);
    return n;
}

typedef struct {
    char hex[65];
    struct timespec used;
    uint64_t bytes;
} scan_ent;

static int is_hex_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return 0;
    return 1;
}

/* A shard directory, never through a symbolic link: one to elsewhere would have gc,
 * clear and eviction delete 64-hex-named files outside the cache. */
static DIR *open_shard(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    if (fd < 0) return NULL;
    if (!(d = fdopendir(fd))) close(fd);
    return d;
}

/* Entries that have a .meta file (last use = its mtime) and a recording. */
static int scan_entries(const ngs_cache *c, scan_ent **out, size_t *nout)
{
    DIR *root = opendir(c->dir);
    struct dirent *de;
    scan_ent *v = NULL;
    size_t n = 0, cap = 0;
    if (!root) return NGS_ERR_IO;
    while ((de = readdir(root)) != NULL) {
        char shard[PATH_MAX];
        DIR *sd;
        struct dirent *e;
        if (strlen(de->d_name) != 2 || !is_hex_name(de->d_name, 2)) continue;
        if (path_fmt(shard, sizeof shard, "%s/%s", c->dir, de->d_name) != 0 || !(sd = open_shard(shard))) continue;
        while ((e = readdir(sd)) != NULL) {
            char path[PATH_MAX];
            struct stat st, sd_st;
            size_t len = strlen(e->d_name);
            if (len != 69 || strcmp(e->d_name + 64, ".meta") != 0 || !is_hex_name(e->d_name, 64)) continue;
            if (path_fmt(path, sizeof path, "%s/%s", shard, e->d_name) != 0 || stat(path, &st) != 0) continue;
            if (path_fmt(path, sizeof path, "%s/%.64s.ngsc", shard, e->d_name) != 0 || stat(path, &sd_st) != 0)
                continue;
            if (n == cap) {
                scan_ent *p = realloc(v, (cap ? 2 * cap : 256) * sizeof *p);
                if (!p) { closedir(sd); closedir(root); free(v); return NGS_ERR_NOMEM; }
                v = p;
                cap = cap ? 2 * cap : 256;
            }
            memcpy(v[n].hex, e->d_name, 64);
            v[n].hex[64] = '\0';
            v[n].used = st.st_mtim;
            v[n].bytes = (uint64_t)st.st_size + (uint64_t)sd_st.st_size;
            n++;
        }
        closedir(sd);
    }
    closedir(root);
    *out = v;
    *nout = n;
    return NGS_OK;
}

static int by_use(const void *a, const void *b)
{
    const scan_ent *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec) return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec) return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->hex, y->hex);
}

/* With DIR/lock held: removes least recently used entries (never keep_hex) until
 * the total is at most target. Returns the total left. */
static uint64_t evict_locked(ngs_cache *c, uint64_t target, const char *keep_hex, uint64_t *evicted,
                             uint64_t *entries)
{
    scan_ent *v = NULL;
    size_t n = 0;
    uint64_t total = 0, left;
    if (scan_entries(c, &v, &n) != NGS_OK) return UINT64_MAX;
    left = n;
    for (size_t i = 0; i < n; i++) total += v[i].bytes;
    if (total > target) {
        qsort(v, n, sizeof *v, by_use);
        for (size_t i = 0; i < n && total > target; i++) {
            if (keep_hex && strcmp(v[i].hex, keep_hex) == 0) continue;
            remove_entry_locked(c, v[i].hex);
            total -= v[i].bytes;
            (*evicted)++;
            left--;
        }
    }
    if (entries) *entries = left;
    free(v);
    return total;
}

/* Installs a complete, fsync'ed temporary recording as the entry hex, unless a
 * valid entry is already there (the first complete entry wins). Takes DIR/lock.
 * Returns NGS_OK or NGS_ERR_IO; the temporary file is gone either way. */
static int install_entry(ngs_cache *c, const char *hex, const char *data_tmp, const meta_t *m, int *installed)
{
    char meta_tmp[PATH_MAX], data[PATH_MAX], meta[PATH_MAX], shard[PATH_MAX];
    meta_t old;
    int mfd, lfd, rc = NGS_OK;
    stats_delta d;
    counters now;

    *installed = 0;
    mfd = meta_write_temp(c, hex, m, meta_tmp, sizeof meta_tmp);
    if (mfd < 0) {
        warn(c, "cache %s: cannot write entry metadata: %s", c->dir, strerror(errno));
        unlink(data_tmp);
        return NGS_ERR_IO;
    }
    entry_path(c, hex, "ngsc", data, sizeof data);
    entry_path(c, hex, "meta", meta, sizeof meta);
    shard_path(c, hex, shard, sizeof shard);
    lfd = dir_lock(c);
    if (lfd < 0) {
        rc = NGS_ERR_IO;
    } else if (local_check(c, hex, &old, 0) == L_HIT) {
        /* someone else was first: keep theirs */
    } else if (rename(data_tmp, data) != 0 || rename(meta_tmp, meta) != 0) {
        rc = NGS_ERR_IO;
        unlink(data);
    } else {
        fsync_dir(shard);
        *installed = 1;
    }
    if (rc != NGS_OK) warn(c, "cache %s: cannot install an entry: %s", c->dir, strerror(errno));
    unlink(data_tmp);
    unlink(meta_tmp);
    close(mfd);
    if (*installed) {
        memset(&d, 0, sizeof d);
        d.add.stores = 1;
        d.bytes_delta = (int64_t)entry_bytes(c, hex);
        stats_apply_locked(c, &d, &now);
        if (now.bytes > c->o.max_bytes) {
            uint64_t evicted = 0, target = c->o.max_bytes / 10 * 9;
            memset(&d, 0, sizeof d);
            d.set_bytes = 1;
            d.add.bytes = evict_locked(c, target, hex, &evicted, NULL);
            d.add.evictions = evicted;
            if (d.add.bytes != UINT64_MAX) stats_apply_locked(c, &d, NULL);
        }
    }
    dir_unlock(lfd);
    return rc;
}

/* Local lookup: L_HIT (meta filled, last use updated), L_MISS or L_CORRUPT (deleted). */
static int local_lookup(ngs_cache *c, const char *hex, meta_t *m, int *corrupt)
{
    char meta[PATH_MAX];
    int r = local_check(c, hex, m, 1);
    *corrupt = 0;
    if (r == L_CORRUPT) {
        /* maybe mid-install by another process: decide under the lock */
        int lfd = dir_lock(c);
        r = local_check(c, hex, m, 1);
        if (r == L_CORRUPT) {
            stats_delta d;
            memset(&d, 0, sizeof d);
            d.bytes_delta = -(int64_t)remove_entry_locked(c, hex);
            d.add.corrupt = 1;
            if (lfd >= 0) stats_apply_locked(c, &d, NULL);
            *corrupt = 1;
            warn(c, "cache %s: entry %.12s... was corrupt and has been removed", c->dir, hex);
            r = L_MISS;
        }
        dir_unlock(lfd);
    }
    if (r == L_HIT) {
        entry_path(c, hex, "meta", meta, sizeof meta);
        (void)utimensat(AT_FDCWD, meta, NULL, 0); /* last use = now */
    }
    return r;
}

/* --------------------------------------------------------------- Redis tier -- */

static int url_decode(const char *s, size_t n, char **out)
{
    char *d = malloc(n + 1);
    size_t k = 0;
    if (!d) return NGS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            d[k++] = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            d[k++] = s[i];
        }
    }
    d[k] = '\0';
    *out = d;
    return NGS_OK;
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_url(ngs_cache *c, const char *url, char *err, size_t errlen)
{
    const char *p, *at, *hostend, *slash;
    char *end;
    size_t hl;
    if (strncmp(url, "redis://", 8) != 0) {
        set_err(err, errlen, "Redis URL must start with redis:// (TLS and unix sockets are not supported)");
        return NGS_ERR_ARG;
    }
    p = url + 8;
    slash = strchr(p, '/');
    if (!slash) slash = p + strlen(p);
    at = NULL;
    for (const char *q = p; q < slash; q++)
        if (*q == '@') at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        int rc;
        if (colon) {
            if (colon > p && (rc = url_decode(p, (size_t)(colon - p), &c->user)) != NGS_OK) return rc;
            if ((rc = url_decode(colon + 1, (size_t)(at - colon - 1), &c->pass)) != NGS_OK) return rc;
        } else if ((rc = url_decode(p, (size_t)(at - p), &c->pass)) != NGS_OK) {
            return rc;
        }
        p = at + 1;
    }
    c->port = 6379;
    if (*p == '[') { /* [ipv6]:port */
        const char *close = memchr(p, ']', (size_t)(slash - p));
        if (!close) goto bad;
        hl = (size_t)(close - p - 1);
        c->host = strndup(p + 1, hl);
        hostend = close + 1;
    } else {
        hostend = memchr(p, ':', (size_t)(slash - p));
        if (!hostend) hostend = slash;
        hl = (size_t)(hostend - p);
        c->host = strndup(p, hl);
    }
    if (!c->host) return NGS_ERR_NOMEM;
    if (!hl) goto bad;
    if (*hostend == ':') {
        long port = strtol(hostend + 1, &end, 10);
        if (end != slash || port <= 0 || port > 65535) goto bad;
        c->port = (int)port;
    } else if (hostend != slash) {
        goto bad;
    }
    if (*slash == '/' && slash[1]) {
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1 << 20) goto bad;
        c->db = (int)db;
    }
    c->has_redis = 1;
    return NGS_OK;
bad:
    set_err(err, errlen, "bad Redis URL (expected redis://[[user]:password@]host[:port][/db])");
    return NGS_ERR_ARG;
}

int ngs_cache_spec_parse(const char *spec, char *dir, size_t dn, char *url, size_t un, char *err,
                         size_t errlen)
{
    const char *comma;
    ngs_cache probe;
    int rc;
    if (err && errlen) err[0] = '\0';
    if (!spec || !dir || !url || !dn || !un) return NGS_ERR_ARG;
    dir[0] = url[0] = '\0';
    if (!spec[0]) {
        set_err(err, errlen, "an empty cache spec names no cache (give DIR, redis://... or DIR,redis://...)");
        return NGS_ERR_ARG;
    }
    comma = strchr(spec, ',');
    if (strncmp(spec, "redis://", 8) == 0) { /* a comma in it belongs to the URL */
        if (snprintf(url, un, "%s", spec) >= (int)un) goto too_long;
    } else if (comma) {
        if (comma == spec) {
            set_err(err, errlen, "cache spec '%s': no directory before the comma", spec);
            return NGS_ERR_ARG;
        }
        if (snprintf(dir, dn, "%.*s", (int)(comma - spec), spec) >= (int)dn) goto too_long;
        if (snprintf(url, un, "%s", comma + 1) >= (int)un) goto too_long;
    } else if (snprintf(dir, dn, "%s", spec) >= (int)dn) {
        goto too_long;
    }
    if (!url[0]) return NGS_OK;
    memset(&probe, 0, sizeof probe);
    rc = parse_url(&probe, url, err, errlen);
    free(probe.host);
    free(probe.user);
    free(probe.pass);
    if (rc == NGS_ERR_ARG && err && errlen) { /* name what was given */
        char why[256];
        snprintf(why, sizeof why, "%s", err);
        set_err(err, errlen, "cache spec '%s': %s", spec, why);
    }
    return rc;
too_long:
    set_err(err, errlen, "cache spec '%.64s...' is too long", spec);
    return NGS_ERR_ARG;
}

/* A directory that holds other files is not taken over: the tag and counters a
 * cache writes would replace a file named "stats" and hide the directory from
 * backups. Ours carry ngscale's CACHEDIR.TAG (empty while a first opener writes it). */
static int tag_is_ours(const char *tag)
{
    char text[256];
    ssize_t n = -1;
    int fd = open(tag, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        n = read(fd, text, sizeof text - 1);
        close(fd);
    }
    if (n < 0) return 0;
    text[n] = '\0';
    return n == 0 || strstr(text, "created by ngscale") != NULL;
}

static int dir_is_ours_or_empty(const char *dir, char *err, size_t errlen)
{
    char tag[PATH_MAX];
    struct dirent *de;
    int others = 0;
    DIR *d;
    /* the tag first: an existing cache (every job of a batch opens one) needs no listing */
    if (path_fmt(tag, sizeof tag, "%s/CACHEDIR.TAG", dir) != 0) return NGS_OK; /* open says so */
    if (tag_is_ours(tag)) return NGS_OK;
    if (!(d = opendir(dir))) return NGS_OK; /* absent (created next), or an error open reports */
    while (!others && (de = readdir(d)))
        others = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    /* a first opener writes the tag before anything else: one that did so between
     * the two looks made the directory ours, not foreign */
    if (!others || tag_is_ours(tag)) return NGS_OK;
    set_err(err, errlen, "%s holds other files and is not an ngscale cache (it has no CACHEDIR.TAG of "
                         "ngscale's): give an empty or new directory", dir);
    return NGS_ERR_ARG;
}

static struct timeval ms_tv(int ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

/* Every ngs_cache of the process learns that a Redis (a URL: server, credentials,
 * db) is being skipped: a batch opens one per job, and each would otherwise wait
 * out its own timeouts, 2 s a job with a server that accepts and never answers. */
#define SERVERS_DOWN_MAX 16
static pthread_mutex_t servers_down_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *url;
    struct timespec until;
} servers_down[SERVERS_DOWN_MAX];

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void note_server_down(const char *url, const struct timespec *until)
{
    size_t slot = 0;
    pthread_mutex_lock(&servers_down_lock);
    for (size_t i = 0; i < SERVERS_DOWN_MAX; i++) {
        if (servers_down[i].url && strcmp(servers_down[i].url, url) == 0) { slot = i; break; }
        if (before(&servers_down[i].until, &servers_down[slot].until)) slot = i; /* the oldest, or a free one */
    }
    if (!servers_down[slot].url || strcmp(servers_down[slot].url, url) != 0) {
        free(servers_down[slot].url);
        servers_down[slot].url = strdup(url);
    }
    servers_down[slot].until = *until;
    pthread_mutex_unlock(&servers_down_lock);
}

/* Until when another ngs_cache of the process found url failing (0 if none). */
static struct timespec server_down_until(const char *url)
{
    struct timespec until = {0, 0};
    pthread_mutex_lock(&servers_down_lock);
    for (size_t i = 0; i < SERVERS_DOWN_MAX; i++)
        if (servers_down[i].url && strcmp(servers_down[i].url, url) == 0) until = servers_down[i].until;
    pthread_mutex_unlock(&servers_down_lock);
    return until;
}

/* With rmu held: drops the connection and skips Redis for a while. */
static void redis_down(ngs_cache *c, const char *what, const char *why)
{
    warn(c, "Redis %s:%d %s failed (%s); %s%s", c->host, c->port, what, why,
         c->scratch ? "no cache is used" : "using the local cache only", c->o.redis_retry_s > 0 ? " for now" : "");
    if (c->rc) redisFree(c->rc);
    c->rc = NULL;
    mono_now(&c->retry_at);
    if (c->o.redis_retry_s > 0) {
        c->retry_at.tv_sec += c->o.redis_retry_s;
        note_server_down(c->url, &c->retry_at);
    }
}

/* With rmu held: a command's reply; NULL after a failure (already reported,
 * connection dropped). A WRONGTYPE error comes back as the reply: it is about one
 * key holding something else, not about the server, which stays in use. */
static redisReply *rcmd(ngs_cache *c, const char *what, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;
    va_start(ap, fmt);
    r = redisvCommand(c->rc, fmt, ap);
    va_end(ap);
    if (!r) {
        redis_down(c, what, c->rc->errstr[0] ? c->rc->errstr : "no reply");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR && !(r->str && strncmp(r->str, "WRONGTYPE", 9) == 0)) {
        char why[200];
        snprintf(why, sizeof why, "%s", r->str ? r->str : "error");
        freeReplyObject(r);
        redis_down(c, what, why);
        return NULL;
    }
    return r;
}

/* With rmu held: the connection, made on first use (connect timeout, command
 * timeout, AUTH, SELECT); NULL while Redis is being skipped. */
static redisContext *redis_ctx(ngs_cache *c)
{
    struct timespec now;
    redisReply *r;
    if (c->rc) return c->rc;
    mono_now(&now);
    if (c->o.redis_retry_s > 0) {
        struct timespec elsewhere = server_down_until(c->url); /* set with every Redis URL */
        if (before(&c->retry_at, &elsewhere)) c->retry_at = elsewhere; /* said where it was found */
        if (before(&now, &c->retry_at)) return NULL;
    }
    c->rc = redisConnectWithTimeout(c->host, c->port, ms_tv(c->o.redis_connect_timeout_ms));
    if (!c->rc || c->rc->err) {
        redis_down(c, "connect", c->rc ? c->rc->errstr : "out of memory");
        return NULL;
    }
    if (redisSetTimeout(c->rc, ms_tv(c->o.redis_command_timeout_ms)) != REDIS_OK) {
        redis_down(c, "setup", "cannot set timeouts");
        return NULL;
    }
    if (c->pass) {
        r = c->user ? rcmd(c, "AUTH", "AUTH %s %s", c->user, c->pass) : rcmd(c, "AUTH", "AUTH %s", c->pass);
        if (!r) return NULL;
        freeReplyObject(r);
    }
    if (c->db) {
        if (!(r = rcmd(c, "SELECT", "SELECT %d", c->db))) return NULL;
        freeReplyObject(r);
    }
    return c->rc;
}

/* hiredis writes with write(): a server that goes away mid-transfer would raise
 * SIGPIPE and kill the whole program. The signal goes to the writing thread, so we
 * block it there around Redis I/O and discard it if it came. */
static void sigpipe_block(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void sigpipe_restore(const sigset_t *old)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (!sigismember(old, SIGPIPE) && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) > 0) {}
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

#define MANIFEST_MAGIC "ngscale-redis 1"

static void chunk_key(char *out, size_t n, const char *hex, const unsigned char rsha[32], uint64_t i)
{
    char rs[65];
    to_hex(rsha, 32, rs);
    snprintf(out, n, REDIS_PREFIX "%s:%.16s:%llu", hex, rs, (unsigned long long)i);
}

/* With rmu held: deletes a broken entry so that nobody downloads it again. */
static void redis_delete(ngs_cache *c, const char *hex, const meta_t *m, uint64_t chunks)
{
    char key[256];
    redisReply *r;
    snprintf(key, sizeof key, REDIS_PREFIX "%s", hex);
    if ((r = rcmd(c, "DEL", "DEL %s", key)) == NULL) return;
    freeReplyObject(r);
    for (uint64_t i = 0; i < chunks && chunks < (1u << 20); i++) {
        chunk_key(key, sizeof key, hex, m->rsha, i);
        if ((r = rcmd(c, "DEL", "DEL %s", key)) == NULL) return;
        freeReplyObject(r);
    }
}

/* Uploads a verified recording: chunks first, manifest last, all with a TTL. */
/* 0 when Redis has the entry afterwards (sent now, or already shared) */
static int redis_put(ngs_cache *c, const char *hex, const char *path, const meta_t *m)
{
    char mkey[128], ckey[256], text[META_MAX], sha_hex[65];
    unsigned char md[32];
    unsigned int mdlen = 0;
    size_t len, csize = c->o.redis_chunk_bytes;
    uint64_t chunks = (m->size + csize - 1) / csize, sent = 0;
    char *buf = NULL;
    EVP_MD_CTX *ctx = NULL;
    redisReply *r;
    int fd = -1, result = -1;
    sigset_t mask;

    pthread_mutex_lock(&c->rmu);
    sigpipe_block(&mask);
    if (!redis_ctx(c)) goto out;
    snprintf(mkey, sizeof mkey, REDIS_PREFIX "%s", hex);
    if (!(r = rcmd(c, "EXISTS", "EXISTS %s", mkey))) goto out;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) { /* already shared */
        freeReplyObject(r);
        result = 0;
        goto out;
    }
    freeReplyObject(r);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || !(buf = malloc(csize)) || !(ctx = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        warn(c, "Redis upload of %.12s... skipped: %s", hex, fd < 0 ? strerror(errno) : "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < chunks; i++) {
        size_t want = m->size - sent < csize ? (size_t)(m->size - sent) : csize, got = 0;
        while (got < want) {
            ssize_t n = pread(fd, buf + got, want - got, (off_t)(sent + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) { warn(c, "Redis upload of %.12s... skipped: read failed", hex); goto out; }
            got += (size_t)n;
        }
        EVP_DigestUpdate(ctx, buf, want);
        chunk_key(ckey, sizeof ckey, hex, m->rsha, i);
        if (!(r = rcmd(c, "SET", "SET %s %b EX %d", ckey, buf, want, c->o.redis_ttl_s))) goto out;
        freeReplyObject(r);
        sent += want;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) goto out;
    to_hex(md, 32, sha_hex);
    if (meta_text(m, MANIFEST_MAGIC, hex, text, sizeof text, &len) != 0) goto out;
    len += (size_t)snprintf(text + len, sizeof text - len, "chunk_bytes %zu\nchunks %llu\nsha256 %s\n", csize,
                            (unsigned long long)chunks, sha_hex);
    if (seal(text, sizeof text, &len) != 0) goto out;
    if (!(r = rcmd(c, "SET", "SET %s %b EX %d", mkey, text, len, c->o.redis_ttl_s))) goto out;
    freeReplyObject(r);
    result = 0;
out:
    sigpipe_restore(&mask);
    pthread_mutex_unlock(&c->rmu);
    if (fd >= 0) close(fd);
    free(buf);
    EVP_MD_CTX_free(ctx);
    return result;
}

static ngs_cache *stage_locked(ngs_cache *c);

/* Fetches entry hex from Redis into the local store *intop (c itself, or its
 * stage; an entry over the local size cap goes to the stage, which *intop then
 * names: kept, it would evict everything else and still break the cap). Returns
 * L_HIT (installed, m filled) or L_MISS. */
static int redis_get(ngs_cache *c, ngs_cache **intop, const char *hex, meta_t *m)
{
    ngs_cache *into = *intop;
    char mkey[128], ckey[256], tmp[PATH_MAX], shard[PATH_MAX], s[128];
    unsigned char want_sha[32], md[32];
    unsigned int mdlen = 0;
    uint64_t csize = 0, chunks = 0, done = 0;
    redisReply *r = NULL;
    EVP_MD_CTX *ctx = NULL;
    ngs_recording_info ri;
    int fd = -1, result = L_MISS, installed = 0, broken = 0;
    long body;
    sigset_t mask;

    pthread_mutex_lock(&c->rmu);
    sigpipe_block(&mask);
    if (!redis_ctx(c)) goto out;
    snprintf(mkey, sizeof mkey, REDIS_PREFIX "%s", hex);
    if (!(r = rcmd(c, "GET", "GET %s", mkey))) goto out;
    if (r->type == REDIS_REPLY_NIL) goto out;
    if (r->type != REDIS_REPLY_STRING || (body = unseal(r->str, r->len)) < 0 ||
        meta_parse(r->str, (size_t)body, MANIFEST_MAGIC, hex, m) != 0 ||
        field_u64(r->str, (size_t)body, "chunk_bytes", &csize) != 0 ||
        field_u64(r->str, (size_t)body, "chunks", &chunks) != 0 ||
        field(r->str, (size_t)body, "sha256", s, sizeof s) != 0 || strlen(s) != 64 ||
        from_hex(s, want_sha, 32) != 0 || csize == 0 || csize > MAX_CHUNK ||
        chunks != (m->size + csize - 1) / csize) {
        /* deleted, or the next store of this key would find it "already shared" */
        warn(c, "Redis entry %.12s... has a bad manifest (%s): removed", hex,
             r->type == REDIS_REPLY_STRING ? "not ngscale's text" : "not a string");
        chunks = 0; /* its chunks, if any, are not known: they expire */
        broken = 1;
        goto out;
    }
    freeReplyObject(r);
    r = NULL;
    if (!into->scratch && entry_size(m, hex) > into->o.max_bytes) {
        if (!(into = stage_locked(c))) goto out;
        *intop = into;
        warn(c, "Redis entry %.12s... of %llu bytes is over the local cache's size cap of %llu: used, not kept "
                "locally", hex, (unsigned long long)entry_size(m, hex), (unsigned long long)c->o.max_bytes);
    }
    shard_path(into, hex, shard, sizeof shard);
    if (mkdir_p(shard) != 0 || (fd = make_temp(shard, tmp, sizeof tmp)) < 0) {
        warn(c, "cache %s: cannot write: %s", into->dir, strerror(errno));
        goto out;
    }
    if (!(ctx = EVP_MD_CTX_new()) || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) goto out;
    for (uint64_t i = 0; i < chunks; i++) {
        uint64_t want = m->size - done < csize ? m->size - done : csize;
        chunk_key(ckey, sizeof ckey, hex, m->rsha, i);
        if (!(r = rcmd(c, "GET", "GET %s", ckey))) goto out;
        if (r->type != REDIS_REPLY_STRING || (uint64_t)r->len != want) {
            warn(c, "Redis entry %.12s... is incomplete (chunk %llu %s): ignored", hex, (unsigned long long)i,
                 r->type == REDIS_REPLY_NIL      ? "expired"
                 : r->type == REDIS_REPLY_STRING ? "has a wrong size"
                                                 : "is not a string");
            broken = 1;
            goto out;
        }
        if (ngs_write_all(fd, r->str, (size_t)r->len) != 0) {
            warn(c, "cache %s: cannot write: %s", into->dir, strerror(errno));
            goto out;
        }
        EVP_DigestUpdate(ctx, r->str, (size_t)r->len);
        done += want;
        freeReplyObject(r);
        r = NULL;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) goto out;
    if (memcmp(md, want_sha, 32) != 0 || ngs_recording_verify_fd(fd, &ri, NULL, 0) != NGS_OK ||
        ri.file_bytes != m->size || memcmp(ri.sha256, m->rsha, 32) != 0) {
        warn(c, "Redis entry %.12s... is corrupt (checksum mismatch): removed", hex);
        broken = 1;
        goto out;
    }
    if (fsync(fd) != 0) goto out;
    /* refresh the TTL of an entry in use */
    if ((r = rcmd(c, "EXPIRE", "EXPIRE %s %d", mkey, c->o.redis_ttl_s)) != NULL) {
        freeReplyObject(r);
        r = NULL;
        for (uint64_t i = 0; i < chunks; i++) {
            chunk_key(ckey, sizeof ckey, hex, m->rsha, i);
            redisAppendCommand(c->rc, "EXPIRE %s %d", ckey, c->o.redis_ttl_s);
        }
        for (uint64_t i = 0; i < chunks && c->rc; i++) {
            void *rep = NULL;
            if (redisGetReply(c->rc, &rep) != REDIS_OK) {
                redis_down(c, "EXPIRE", c->rc->errstr);
                break;
            }
            freeReplyObject(rep);
        }
    }
    sigpipe_restore(&mask);
    pthread_mutex_unlock(&c->rmu);
    if (install_entry(into, hex, tmp, m, &installed) == NGS_OK && local_check(into, hex, m, 0) == L_HIT)
        result = L_HIT;
    close(fd);
    EVP_MD_CTX_free(ctx);
    return result;
out:
    if (broken && c->rc) redis_delete(c, hex, m, chunks);
    sigpipe_restore(&mask);
    pthread_mutex_unlock(&c->rmu);
    if (r) freeReplyObject(r);
    if (fd >= 0) {
        unlink(tmp);
        close(fd);
    }
    EVP_MD_CTX_free(ctx);
    return L_MISS;
}

/* The local store at c->dir: created if need be, tagged, and lockable (else read-only). */
static int open_local(ngs_cache *c, char *err, size_t errlen)
{
    char tag[PATH_MAX];
    int rc, lfd;
    if ((rc = dir_is_ours_or_empty(c->dir, err, errlen)) != NGS_OK) return rc;
    if (mkdir_p(c->dir) != 0) {
        set_err(err, errlen, "cache directory %s: %s", c->dir, strerror(errno));
        return NGS_ERR_IO;
    }
    /* tells backup tools the directory is a cache (https://bford.info/cachedir/);
     * written first, so that a second opener sees whose directory it is */
    if (path_fmt(tag, sizeof tag, "%s/CACHEDIR.TAG", c->dir) == 0 && access(tag, F_OK) != 0) {
        int fd = open(tag, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        static const char text[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
                                   "# This file is a cache directory tag created by ngscale.\n";
        if (fd >= 0) {
            (void)ngs_write_all(fd, text, sizeof text - 1);
            close(fd);
        }
    }
    if ((lfd = dir_lock(c)) < 0) {
        int why = errno;
        /* a team's shared cache, or one on a read-only mount: its hits still count */
        if (!((why == EACCES || why == EROFS || why == EPERM) && tag_is_ours(tag))) {
            set_err(err, errlen, "cache directory %s: %s", c->dir, strerror(why));
            return NGS_ERR_IO;
        }
        c->read_only = 1;
    }
    dir_unlock(lfd);
    return NGS_OK;
}

/* Makes c's store a private directory in $TMPDIR for Redis hits, removed at close;
 * `why` starts the error. */
static int use_scratch_dir(ngs_cache *c, const char *why, char *err, size_t errlen)
{
    char path[PATH_MAX];
    const char *tmpdir = getenv("TMPDIR");
    if (path_fmt(path, sizeof path, "%s/ngscale-cache-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp") != 0 ||
        !mkdtemp(path)) {
        set_err(err, errlen, "%s; no directory to stage Redis hits in: %s", why, strerror(errno));
        return NGS_ERR_IO;
    }
    free(c->dir);
    if (!(c->dir = strdup(path))) {
        rmdir(path);
        return NGS_ERR_NOMEM;
    }
    c->scratch = 1;
    return NGS_OK;
}

/* Redis alone, when the local directory cannot be used; err says why on entry. */
static int open_scratch(ngs_cache *c, char *err, size_t errlen)
{
    char why[512];
    int rc;
    snprintf(why, sizeof why, "%s", err && errlen ? err : "local cache unusable");
    if ((rc = use_scratch_dir(c, why, err, errlen)) != NGS_OK) return rc;
    if (err && errlen) err[0] = '\0';
    warn(c, "%s: Redis alone is used (its hits pass through %s, removed after the run)", why, c->dir);
    return NGS_OK;
}

/* A handle with these options (NULL: defaults to come) and nothing open yet. */
static ngs_cache *handle_new(const ngs_cache_options *options)
{
    ngs_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (options) c->o = *options;
    pthread_mutex_init(&c->rmu, NULL);
    pthread_mutex_init(&c->wmu, NULL);
    return c;
}

/* With rmu held: c's scratch store for the Redis hits it may not keep (made at
 * the first such hit, removed at close); NULL when it cannot be made (warned). */
static ngs_cache *stage_locked(ngs_cache *c)
{
    if (!c->stage) {
        char why[PATH_MAX + 64], err[PATH_MAX + 160];
        ngs_cache *s = handle_new(&c->o);
        snprintf(why, sizeof why, "cache %s %s", c->dir,
                 c->read_only ? "is read-only here" : "cannot keep a Redis hit over its size cap");
        if (s && use_scratch_dir(s, why, err, sizeof err) == NGS_OK) {
            c->stage = s;
        } else {
            warn(c, "%s", s ? err : "out of memory");
            ngs_cache_close(s);
        }
    }
    return c->stage;
}

/* Where Redis hits go: the local store, or, when this process may not write it, a
 * scratch store of the handle's own (made at the first Redis lookup). */
static ngs_cache *redis_hit_store(ngs_cache *c)
{
    ngs_cache *into;
    if (!c->read_only) return c;
    pthread_mutex_lock(&c->rmu);
    into = stage_locked(c);
    pthread_mutex_unlock(&c->rmu);
    return into ? into : c;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

/* ------------------------------------------------------------------ public -- */

void ngs_cache_options_init(ngs_cache_options *o)
{
    memset(o, 0, sizeof *o);
}

/* "20G", "500M", "1.5T", "4096" (binary units; an optional "iB" or "B" after the
 * letter): 0 when it is not such a size. */
static uint64_t parse_size(const char *text)
{
    static const char units[] = "KMGT";
    char *end;
    double v;
    const char *u;
    errno = 0;
    v = strtod(text, &end);
    if (end == text || errno || !(v > 0)) return 0;
    if (*end && (u = strchr(units, toupper((unsigned char)*end))) != NULL) {
        v *= (double)((uint64_t)1 << (10 * (u - units + 1)));
        end++;
        if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0) end += strlen(end);
    }
    if (*end || v < 1 || v > 9.0e18) return 0;
    return (uint64_t)v;
}

static void fill_defaults(ngs_cache_options *o)
{
    if (!o->max_bytes) o->max_bytes = DEFAULT_MAX_BYTES;
    if (o->redis_ttl_s <= 0) o->redis_ttl_s = DEFAULT_TTL_S;
    if (o->redis_connect_timeout_ms <= 0) o->redis_connect_timeout_ms = DEFAULT_CONNECT_MS;
    if (o->redis_command_timeout_ms <= 0) o->redis_command_timeout_ms = DEFAULT_COMMAND_MS;
    if (!o->redis_chunk_bytes) o->redis_chunk_bytes = DEFAULT_CHUNK;
    if (o->redis_chunk_bytes > MAX_CHUNK) o->redis_chunk_bytes = MAX_CHUNK;
    if (o->redis_retry_s == 0) o->redis_retry_s = DEFAULT_RETRY_S;
    if (o->tmp_grace_s == 0) o->tmp_grace_s = DEFAULT_GRACE_S;
}

int ngs_cache_default_dir(char *out, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && xdg[0] == '/') return path_fmt(out, n, "%s/ngscale", xdg) ? NGS_ERR_IO : NGS_OK;
    if (home && home[0]) return path_fmt(out, n, "%s/.cache/ngscale", home) ? NGS_ERR_IO : NGS_OK;
    return NGS_ERR_ARG;
}

int ngs_cache_open(ngs_cache **out, const char *local_dir, const char *redis_url,
                   const ngs_cache_options *options, char *err, size_t errlen)
{
    ngs_cache *c;
    char dir[PATH_MAX];
    const char *size_env;
    int rc, named = local_dir && local_dir[0];
    if (err && errlen) err[0] = '\0';
    if (!out) return NGS_ERR_ARG;
    *out = NULL;
    if (named) {
        if (path_fmt(dir, sizeof dir, "%s", local_dir) != 0) return NGS_ERR_ARG;
    } else if (ngs_cache_default_dir(dir, sizeof dir) != NGS_OK) {
        dir[0] = '\0'; /* refused below, unless Redis can serve alone */
    }
    while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/') dir[strlen(dir) - 1] = '\0';
    if (!(c = handle_new(options))) return NGS_ERR_NOMEM;
    if (!c->o.max_bytes && (size_env = getenv("NGSCALE_CACHE_SIZE")) && *size_env &&
        !(c->o.max_bytes = parse_size(size_env))) {
        set_err(err, errlen, "NGSCALE_CACHE_SIZE='%s' is not a size (give one like 20G or 500M)", size_env);
        ngs_cache_close(c);
        return NGS_ERR_ARG;
    }
    fill_defaults(&c->o);
    if (!(c->dir = strdup(dir))) { ngs_cache_close(c); return NGS_ERR_NOMEM; }
    if (redis_url && !(c->url = strdup(redis_url))) { ngs_cache_close(c); return NGS_ERR_NOMEM; }
    if (redis_url && (rc = parse_url(c, redis_url, err, errlen)) != NGS_OK) {
        ngs_cache_close(c);
        return rc;
    }
    if (dir[0]) {
        rc = open_local(c, err, errlen);
    } else {
        set_err(err, errlen, "no cache directory: set XDG_CACHE_HOME or HOME, or give one");
        rc = NGS_ERR_ARG;
    }
    /* Redis still serves a run whose local directory cannot be used (a read-only or
     * missing home in a container): its hits are staged in a directory of the run's
     * own. A directory named by the user that is not a cache stays refused. */
    if (rc != NGS_OK && c->has_redis && !(named && rc == NGS_ERR_ARG)) rc = open_scratch(c, err, errlen);
    if (rc != NGS_OK) {
        ngs_cache_close(c);
        return rc;
    }
    *out = c;
    return NGS_OK;
}

void ngs_cache_close(ngs_cache *c)
{
    if (!c) return;
    if (c->scratch && c->dir) nftw(c->dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
    ngs_cache_close(c->stage);
    if (c->rc) redisFree(c->rc);
    pthread_mutex_destroy(&c->rmu);
    pthread_mutex_destroy(&c->wmu);
    free(c->dir);
    free(c->host);
    free(c->url);
    free(c->user);
    free(c->pass);
    free(c);
}

const char *ngs_cache_dir(const ngs_cache *c) { return c ? c->dir : NULL; }

int ngs_cache_take_warning(ngs_cache *c, char *buf, size_t n)
{
    int had;
    if (!c) return 0;
    pthread_mutex_lock(&c->wmu);
    had = c->has_warning;
    if (had && buf && n) snprintf(buf, n, "%s", c->warning);
    c->has_warning = 0;
    pthread_mutex_unlock(&c->wmu);
    return had;
}

static void fill_info(ngs_cache_hit_info *info, int tier, const meta_t *m)
{
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->tier = tier;
    info->bytes = m->size;
    info->sim_seconds = m->sim_seconds;
    info->created = m->created;
    snprintf(info->ngspice_version, sizeof info->ngspice_version, "%s", m->ngspice);
}

int ngs_cache_lookup(ngs_cache *c, const ngs_cache_key *key, char *path, size_t n, ngs_cache_hit_info *info)
{
    char data[PATH_MAX];
    meta_t m;
    stats_delta d;
    ngs_cache *from = c;
    int corrupt, r, tier = 1;
    if (!c || !key || !key->cacheable || !ngs_cache_key_valid_hex(key->hex) || !path) return NGS_ERR_ARG;
    entry_path(c, key->hex, "ngsc", data, sizeof data);
    if (strlen(data) >= n) return NGS_ERR_ARG;
    memset(&d, 0, sizeof d);
    r = local_lookup(c, key->hex, &m, &corrupt);
    if (r != L_HIT && c->has_redis) {
        from = redis_hit_store(c);
        if (from != c) r = local_lookup(from, key->hex, &m, &corrupt); /* fetched before */
        if (r != L_HIT) r = redis_get(c, &from, key->hex, &m);
        tier = 2;
        entry_path(from, key->hex, "ngsc", data, sizeof data);
        if (strlen(data) >= n) r = L_MISS;
    }
    if (r == L_HIT) {
        d.add.hits = 1;
        d.add.redis_hits = tier == 2;
        d.add.bytes_served = m.size;
        d.add.sim_saved = m.sim_seconds;
        snprintf(path, n, "%s", data);
        fill_info(info, tier, &m);
    } else {
        d.add.misses = 1;
    }
    stats_apply(c, &d);
    return r == L_HIT ? NGS_OK : NGS_CACHE_MISS;
}

int ngs_cache_store(ngs_cache *c, const ngs_cache_key *key, const char *recording_path, double sim_seconds,
                    const char *ngspice_version)
{
    char shard[PATH_MAX], tmp[PATH_MAX], err[256];
    ngs_recording_info ri;
    meta_t m;
    int src = -1, fd = -1, rc, installed = 0;

    if (!c || !key || !key->cacheable || !ngs_cache_key_valid_hex(key->hex) || !recording_path) return NGS_ERR_ARG;
    if ((src = open(recording_path, O_RDONLY | O_CLOEXEC)) < 0) return NGS_ERR_IO;
    if ((rc = ngs_recording_verify_fd(src, &ri, err, sizeof err)) != NGS_OK) {
        warn(c, "not caching %s: %s", recording_path, err);
        close(src);
        return rc;
    }
    memset(&m, 0, sizeof m);
    m.size = ri.file_bytes;
    memcpy(m.rsha, ri.sha256, 32);
    m.created = now_s();
    m.sim_seconds = sim_seconds >= 0 ? sim_seconds : 0;
    one_line(m.ngspice, sizeof m.ngspice, ngspice_version);

    if (c->scratch) {
        rc = NGS_OK; /* Redis alone keeps it (redis_put below) */
    } else if (c->read_only) {
        warn(c, "cache %s is read-only here: the run was not stored in it", c->dir);
        rc = NGS_ERR_IO;
    } else if (entry_size(&m, key->hex) > c->o.max_bytes) {
        warn(c, "not stored%s: entry of %llu bytes is over the %scache's size cap of %llu",
             c->has_redis ? " locally" : "", (unsigned long long)entry_size(&m, key->hex),
             c->has_redis ? "local " : "", (unsigned long long)c->o.max_bytes);
        rc = NGS_CACHE_NOT_STORED;
    } else {
        shard_path(c, key->hex, shard, sizeof shard);
        if (mkdir_p(shard) != 0 || (fd = make_temp(shard, tmp, sizeof tmp)) < 0) {
            warn(c, "cache %s: %s", c->dir, strerror(errno));
            rc = NGS_ERR_IO;
        } else if (copy_fd(src, fd, ri.file_bytes) != 0 || fsync(fd) != 0) {
            warn(c, "cache %s: cannot copy the recording: %s", c->dir, strerror(errno));
            unlink(tmp);
            rc = NGS_ERR_IO;
        } else {
            rc = install_entry(c, key->hex, tmp, &m, &installed);
        }
        if (fd >= 0) close(fd);
    }
    close(src);
    if (c->has_redis && redis_put(c, key->hex, recording_path, &m) != 0 && c->scratch)
        rc = NGS_CACHE_NOT_STORED; /* the scratch store is removed after the run */
    return rc;
}

int ngs_cache_remove(ngs_cache *c, const char *hex)
{
    stats_delta d;
    int lfd;
    if (!c || !ngs_cache_key_valid_hex(hex)) return NGS_ERR_ARG;
    if ((lfd = dir_lock(c)) < 0) return NGS_ERR_IO;
    memset(&d, 0, sizeof d);
    d.bytes_delta = -(int64_t)remove_entry_locked(c, hex);
    stats_apply_locked(c, &d, NULL);
    dir_unlock(lfd);
    return NGS_OK;
}

int ngs_cache_get_stats(ngs_cache *c, ngs_cache_stats *s)
{
    counters k;
    scan_ent *v = NULL;
    size_t n = 0;
    int rc;
    if (!c || !s) return NGS_ERR_ARG;
    memset(s, 0, sizeof *s);
    stats_read(c, &k);
    if ((rc = scan_entries(c, &v, &n)) != NGS_OK) return rc;
    s->entries = n;
    for (size_t i = 0; i < n; i++) s->bytes += v[i].bytes;
    free(v);
    s->max_bytes = c->o.max_bytes;
    s->hits = k.hits;
    s->misses = k.misses;
    s->redis_hits = k.redis_hits;
    s->stores = k.stores;
    s->evictions = k.evictions;
    s->corrupt = k.corrupt;
    s->bytes_served = k.bytes_served;
    s->sim_seconds_saved = k.sim_saved;
    return NGS_OK;
}

int ngs_cache_list(ngs_cache *c, ngs_cache_list_fn fn, void *user)
{
    scan_ent *v = NULL;
    size_t n = 0;
    int rc;
    if (!c || !fn) return NGS_ERR_ARG;
    if ((rc = scan_entries(c, &v, &n)) != NGS_OK) return rc;
    qsort(v, n, sizeof *v, by_use);
    for (size_t i = n; i-- > 0;) {
        ngs_cache_entry e;
        meta_t m;
        if (meta_read(c, v[i].hex, &m) != 0) continue; /* gc's business */
        memset(&e, 0, sizeof e);
        memcpy(e.key, v[i].hex, sizeof e.key);
        e.bytes = v[i].bytes;
        e.created = m.created;
        e.last_used = (int64_t)v[i].used.tv_sec;
        e.sim_seconds = m.sim_seconds;
        snprintf(e.ngspice_version, sizeof e.ngspice_version, "%s", m.ngspice);
        if (fn(&e, user) != 0) break;
    }
    free(v);
    return NGS_OK;
}

/* A temporary file nobody is writing: unlocked, and older than the grace period
 * (which covers the instant between a writer's mkstemp and its flock). */
static int stale_temp(const ngs_cache *c, const char *path)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), stale = 0;
    if (fd < 0) return 0;
    if (fstat(fd, &st) == 0 && flock(fd, LOCK_EX | LOCK_NB) == 0) {
        time_t newest = st.st_mtime > st.st_ctime ? st.st_mtime : st.st_ctime;
        stale = c->o.tmp_grace_s < 0 || (int64_t)(time(NULL) - newest) >= c->o.tmp_grace_s;
    }
    close(fd);
    return stale;
}

/* Walks DIR and its shards with DIR/lock held; fn gets each file's path and name. */
static int walk(ngs_cache *c, void (*fn)(ngs_cache *, const char *path, const char *name, int in_shard, void *),
                void *arg, int remove_empty_shards)
{
    DIR *root = opendir(c->dir);
    struct dirent *de;
    if (!root) return NGS_ERR_IO;
    while ((de = readdir(root)) != NULL) {
        char p[PATH_MAX];
        DIR *sd;
        struct dirent *e;
        if (path_fmt(p, sizeof p, "%s/%s", c->dir, de->d_name) != 0) continue;
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) { fn(c, p, de->d_name, 0, arg); continue; }
        if (strlen(de->d_name) != 2 || !is_hex_name(de->d_name, 2) || !(sd = open_shard(p))) continue;
        while ((e = readdir(sd)) != NULL) {
            char f[PATH_MAX];
            if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
            if (path_fmt(f, sizeof f, "%s/%s", p, e->d_name) == 0) fn(c, f, e->d_name, 1, arg);
        }
        closedir(sd);
        if (remove_empty_shards) rmdir(p); /* fails while not empty: fine */
    }
    closedir(root);
    return NGS_OK;
}

typedef struct {
    int verify;
    uint64_t temp, corrupt;
} gc_arg;

static void gc_file(ngs_cache *c, const char *path, const char *name, int in_shard, void *v)
{
    gc_arg *a = v;
    size_t len = strlen(name);
    char hex[65], other[PATH_MAX];
    meta_t m;
    if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
        if (stale_temp(c, path) && unlink(path) == 0) a->temp++;
        return;
    }
    if (!in_shard || len != 69 || !is_hex_name(name, 64)) return;
    memcpy(hex, name, 64);
    hex[64] = '\0';
    if (strcmp(name + 64, ".meta") == 0) {
        if (local_check(c, hex, &m, a->verify) != L_HIT) {
            entry_path(c, hex, "ngsc", other, sizeof other);
            unlink(other);
            if (unlink(path) == 0) a->corrupt++;
        }
    } else if (strcmp(name + 64, ".ngsc") == 0) {
        entry_path(c, hex, "meta", other, sizeof other);
        if (access(other, F_OK) != 0 && errno == ENOENT && unlink(path) == 0) a->corrupt++;
    }
}

int ngs_cache_gc(ngs_cache *c, int verify_data, ngs_cache_gc_result *result)
{
    gc_arg a = {verify_data, 0, 0};
    stats_delta d;
    uint64_t evicted = 0, entries = 0, total;
    int lfd, rc;
    if (!c) return NGS_ERR_ARG;
    if ((lfd = dir_lock(c)) < 0) return NGS_ERR_IO;
    rc = walk(c, gc_file, &a, 1);
    total = evict_locked(c, c->o.max_bytes, NULL, &evicted, &entries);
    memset(&d, 0, sizeof d);
    d.add.corrupt = a.corrupt;
    d.add.evictions = evicted;
    if (total != UINT64_MAX) {
        d.set_bytes = 1;
        d.add.bytes = total;
    }
    stats_apply_locked(c, &d, NULL);
    dir_unlock(lfd);
    if (result) {
        result->temp_removed = a.temp;
        result->corrupt_removed = a.corrupt;
        result->evicted = evicted;
        result->entries = entries;
        result->bytes = total == UINT64_MAX ? 0 : total;
    }
    return total == UINT64_MAX ? NGS_ERR_IO : rc;
}

static void clear_file(ngs_cache *c, const char *path, const char *name, int in_shard, void *v)
{
    uint64_t *removed = v;
    size_t len = strlen(name);
    if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
        if (stale_temp(c, path)) unlink(path);
        return;
    }
    if (!in_shard || len != 69 || !is_hex_name(name, 64)) return;
    if (unlink(path) == 0 && strcmp(name + 64, ".ngsc") == 0) (*removed)++;
}

int ngs_cache_clear(ngs_cache *c, int reset_stats, uint64_t *removed)
{
    stats_delta d;
    uint64_t n = 0;
    int lfd, rc;
    if (!c) return NGS_ERR_ARG;
    if ((lfd = dir_lock(c)) < 0) return NGS_ERR_IO;
    rc = walk(c, clear_file, &n, 1);
    memset(&d, 0, sizeof d);
    d.reset = reset_stats;
    d.set_bytes = 1;
    stats_apply_locked(c, &d, NULL);
    dir_unlock(lfd);
    if (removed) *removed = n;
    return rc;
}
