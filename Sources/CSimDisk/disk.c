// The simulator's disk: see include/CSimDisk.h.
#include "CSimDisk.h"

#include <dirent.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

// MARK: State

/// A write (len >= 0) or a truncation (len < 0: to `off` bytes) made since the file's last sync.
typedef struct Op {
    sqlite3_int64 off;
    int len;
    unsigned char *data;
    struct Op *next;
} Op;

/// A file whose durable image is kept (power loss).
typedef struct Tracked {
    char *path;
    int exists;  // whether the durable image exists at all (a file never synced does not)
    unsigned char *image;
    sqlite3_int64 size, cap;
    Op *head, *tail;
    struct Tracked *next;
} Tracked;

/// A directory of one simulated node.
typedef struct Root {
    char *dir;
    size_t len;
    int power_loss;
    int frozen;
    long armed;  // -1: not armed; n: n more writes succeed
    int open_files;
    long syncs;
    Tracked *files;
    struct Root *next;
} Root;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static Root *roots;
static sqlite3_vfs *base;
static sqlite3_vfs shim;
static int installed;

static Root *root_for(const char *path) {
    if (!path) return NULL;
    for (Root *r = roots; r; r = r->next) {
        if (strncmp(path, r->dir, r->len) == 0 && path[r->len] == '/') return r;
    }
    return NULL;
}

static Root *root_named(const char *dir) {
    for (Root *r = roots; r; r = r->next) {
        if (strcmp(r->dir, dir) == 0) return r;
    }
    return NULL;
}

static void clear_ops(Tracked *t) {
    Op *o = t->head;
    while (o) {
        Op *n = o->next;
        free(o->data);
        free(o);
        o = n;
    }
    t->head = t->tail = NULL;
}

static int reserve(Tracked *t, sqlite3_int64 size) {
    if (size <= t->cap) return 0;
    sqlite3_int64 cap = t->cap ? t->cap : 4096;
    while (cap < size) cap *= 2;
    unsigned char *b = realloc(t->image, (size_t)cap);
    if (!b) return -1;
    memset(b + t->cap, 0, (size_t)(cap - t->cap));
    t->image = b;
    t->cap = cap;
    return 0;
}

/// Reads the file at `path` as its durable image (missing: no image).
static void load_image(Tracked *t) {
    t->exists = 0;
    t->size = 0;
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    t->exists = 1;
    unsigned char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        if (reserve(t, t->size + n) != 0) break;
        memcpy(t->image + t->size, buf, (size_t)n);
        t->size += n;
    }
    close(fd);
}

static Tracked *tracked(Root *r, const char *path, int create) {
    for (Tracked *t = r->files; t; t = t->next) {
        if (strcmp(t->path, path) == 0) return t;
    }
    if (!create) return NULL;
    Tracked *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->path = strdup(path);
    load_image(t);
    t->next = r->files;
    r->files = t;
    return t;
}

static void free_root(Root *r) {
    Tracked *t = r->files;
    while (t) {
        Tracked *n = t->next;
        clear_ops(t);
        free(t->image);
        free(t->path);
        free(t);
        t = n;
    }
    free(r->dir);
    free(r);
}

// MARK: Files

typedef struct SimFile {
    sqlite3_file base;
    Root *root;
    char *path;  // under a tracked root with power_loss; NULL otherwise
    sqlite3_file *real;
} SimFile;

#define REAL(f) (((SimFile *)(f))->real)

static int file_close(sqlite3_file *f) {
    SimFile *p = (SimFile *)f;
    int rc = p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
    if (p->root) {
        pthread_mutex_lock(&mu);
        p->root->open_files--;
        pthread_mutex_unlock(&mu);
    }
    free(p->path);
    p->path = NULL;
    return rc;
}

static int file_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 off) {
    return REAL(f)->pMethods->xRead(REAL(f), buf, amt, off);
}

/// Whether a write-like call may reach the disk: not when frozen, and not the armed crash's.
static int may_write(SimFile *p) {
    if (!p->root) return 1;
    int ok = 1;
    pthread_mutex_lock(&mu);
    if (p->root->frozen) {
        ok = 0;
    } else if (p->root->armed == 0) {
        p->root->frozen = 1;
        ok = 0;
    } else if (p->root->armed > 0) {
        p->root->armed--;
    }
    pthread_mutex_unlock(&mu);
    return ok;
}

static int is_frozen(SimFile *p) {
    if (!p->root) return 0;
    pthread_mutex_lock(&mu);
    int frozen = p->root->frozen;
    pthread_mutex_unlock(&mu);
    return frozen;
}

static void record(SimFile *p, sqlite3_int64 off, int len, const void *data) {
    if (!p->path) return;
    Op *o = calloc(1, sizeof *o);
    if (!o) return;
    o->off = off;
    o->len = len;
    if (len > 0) {
        o->data = malloc((size_t)len);
        if (!o->data) {
            free(o);
            return;
        }
        memcpy(o->data, data, (size_t)len);
    }
    pthread_mutex_lock(&mu);
    Tracked *t = tracked(p->root, p->path, 1);
    if (t) {
        if (t->tail) t->tail->next = o; else t->head = o;
        t->tail = o;
    } else {
        free(o->data);
        free(o);
    }
    pthread_mutex_unlock(&mu);
}

static int file_write(sqlite3_file *f, const void *buf, int amt, sqlite3_int64 off) {
    SimFile *p = (SimFile *)f;
    if (!may_write(p)) return SQLITE_IOERR_WRITE;
    int rc = p->real->pMethods->xWrite(p->real, buf, amt, off);
    if (rc == SQLITE_OK) record(p, off, amt, buf);
    return rc;
}

static int file_truncate(sqlite3_file *f, sqlite3_int64 size) {
    SimFile *p = (SimFile *)f;
    if (is_frozen(p)) return SQLITE_IOERR_TRUNCATE;
    int rc = p->real->pMethods->xTruncate(p->real, size);
    if (rc == SQLITE_OK) record(p, size, -1, NULL);
    return rc;
}

static int file_sync(sqlite3_file *f, int flags) {
    SimFile *p = (SimFile *)f;
    if (is_frozen(p)) return SQLITE_IOERR_FSYNC;
    int rc = p->real->pMethods->xSync(p->real, flags);
    if (rc != SQLITE_OK || !p->root) return rc;
    pthread_mutex_lock(&mu);
    p->root->syncs++;
    Tracked *t = p->path ? tracked(p->root, p->path, 1) : NULL;
    if (t) {
        // Everything written so far is durable now: apply it to the image.
        if (!t->exists) {
            t->exists = 1;
            t->size = 0;
        }
        for (Op *o = t->head; o; o = o->next) {
            if (o->len < 0) {
                if (o->off < t->size) {
                    memset(t->image + o->off, 0, (size_t)(t->size - o->off));
                } else if (reserve(t, o->off) != 0) {
                    continue;
                }
                t->size = o->off;
            } else {
                if (reserve(t, o->off + o->len) != 0) continue;
                memcpy(t->image + o->off, o->data, (size_t)o->len);
                if (o->off + o->len > t->size) t->size = o->off + o->len;
            }
        }
        clear_ops(t);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

static int file_size(sqlite3_file *f, sqlite3_int64 *size) { return REAL(f)->pMethods->xFileSize(REAL(f), size); }
static int file_lock(sqlite3_file *f, int lock) { return REAL(f)->pMethods->xLock(REAL(f), lock); }
static int file_unlock(sqlite3_file *f, int lock) { return REAL(f)->pMethods->xUnlock(REAL(f), lock); }
static int file_check_reserved(sqlite3_file *f, int *out) {
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int file_control(sqlite3_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int file_sector_size(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int file_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }

static int file_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **out) {
    return REAL(f)->pMethods->xShmMap(REAL(f), page, size, extend, out);
}
static int file_shm_lock(sqlite3_file *f, int offset, int n, int flags) {
    return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}
static void file_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int file_shm_unmap(sqlite3_file *f, int delete_flag) {
    // A crashed node deletes nothing.
    return REAL(f)->pMethods->xShmUnmap(REAL(f), is_frozen((SimFile *)f) ? 0 : delete_flag);
}
static int file_fetch(sqlite3_file *f, sqlite3_int64 off, int amt, void **out) {
    if (REAL(f)->pMethods->iVersion < 3 || !REAL(f)->pMethods->xFetch) {
        *out = NULL;
        return SQLITE_OK;
    }
    return REAL(f)->pMethods->xFetch(REAL(f), off, amt, out);
}
static int file_unfetch(sqlite3_file *f, sqlite3_int64 off, void *page) {
    if (REAL(f)->pMethods->iVersion < 3 || !REAL(f)->pMethods->xUnfetch) return SQLITE_OK;
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, page);
}

static const sqlite3_io_methods io = {
    3,
    file_close, file_read, file_write, file_truncate, file_sync, file_size, file_lock, file_unlock,
    file_check_reserved, file_control, file_sector_size, file_device,
    file_shm_map, file_shm_lock, file_shm_barrier, file_shm_unmap,
    file_fetch, file_unfetch,
};

// MARK: The VFS

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags) {
    (void)vfs;
    SimFile *p = (SimFile *)f;
    memset(p, 0, sizeof *p);
    p->real = (sqlite3_file *)&p[1];
    pthread_mutex_lock(&mu);
    Root *r = root_for(name);
    if (r && r->power_loss) {
        // Known before the file is created: a new file has no durable image yet.
        tracked(r, name, 1);
        p->path = strdup(name);
    }
    if (r) r->open_files++;
    pthread_mutex_unlock(&mu);
    p->root = r;
    int rc = base->xOpen(base, name, p->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        if (r) {
            pthread_mutex_lock(&mu);
            r->open_files--;
            pthread_mutex_unlock(&mu);
        }
        free(p->path);
        p->path = NULL;
        p->base.pMethods = NULL;
        return rc;
    }
    p->base.pMethods = &io;
    return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
    (void)vfs;
    pthread_mutex_lock(&mu);
    Root *r = root_for(name);
    int frozen = r && r->frozen;
    pthread_mutex_unlock(&mu);
    if (frozen) return SQLITE_IOERR_DELETE;
    int rc = base->xDelete(base, name, sync_dir);
    if (rc == SQLITE_OK && r) {
        pthread_mutex_lock(&mu);
        Tracked *t = tracked(r, name, 0);
        if (t) {
            // A deletion is taken as durable (SQLite deletes a WAL only after a synced checkpoint).
            clear_ops(t);
            t->exists = 0;
            t->size = 0;
        }
        pthread_mutex_unlock(&mu);
    }
    return rc;
}

static int vfs_access(sqlite3_vfs *v, const char *n, int f, int *o) { (void)v; return base->xAccess(base, n, f, o); }
static int vfs_full(sqlite3_vfs *v, const char *n, int c, char *o) { (void)v; return base->xFullPathname(base, n, c, o); }
static void *vfs_dlopen(sqlite3_vfs *v, const char *n) { (void)v; return base->xDlOpen(base, n); }
static void vfs_dlerror(sqlite3_vfs *v, int n, char *o) { (void)v; base->xDlError(base, n, o); }
static void (*vfs_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return base->xDlSym(base, h, s); }
static void vfs_dlclose(sqlite3_vfs *v, void *h) { (void)v; base->xDlClose(base, h); }
static int vfs_random(sqlite3_vfs *v, int n, char *o) { (void)v; return base->xRandomness(base, n, o); }
static int vfs_sleep(sqlite3_vfs *v, int us) { (void)v; return base->xSleep(base, us); }
static int vfs_time(sqlite3_vfs *v, double *o) { (void)v; return base->xCurrentTime(base, o); }
static int vfs_error(sqlite3_vfs *v, int n, char *o) {
    (void)v;
    return base->xGetLastError ? base->xGetLastError(base, n, o) : 0;
}
static int vfs_time64(sqlite3_vfs *v, sqlite3_int64 *o) {
    (void)v;
    if (base->iVersion >= 2 && base->xCurrentTimeInt64) return base->xCurrentTimeInt64(base, o);
    double d;
    int rc = base->xCurrentTime(base, &d);
    *o = (sqlite3_int64)(d * 86400000.0);
    return rc;
}
static int vfs_set_call(sqlite3_vfs *v, const char *n, sqlite3_syscall_ptr p) {
    (void)v;
    return base->iVersion >= 3 && base->xSetSystemCall ? base->xSetSystemCall(base, n, p) : SQLITE_NOTFOUND;
}
static sqlite3_syscall_ptr vfs_get_call(sqlite3_vfs *v, const char *n) {
    (void)v;
    return base->iVersion >= 3 && base->xGetSystemCall ? base->xGetSystemCall(base, n) : NULL;
}
static const char *vfs_next_call(sqlite3_vfs *v, const char *n) {
    (void)v;
    return base->iVersion >= 3 && base->xNextSystemCall ? base->xNextSystemCall(base, n) : NULL;
}

int sim_disk_install(void) {
    pthread_mutex_lock(&mu);
    if (installed) {
        pthread_mutex_unlock(&mu);
        return SQLITE_OK;
    }
    base = sqlite3_vfs_find(NULL);
    if (!base) {
        pthread_mutex_unlock(&mu);
        return SQLITE_ERROR;
    }
    shim.iVersion = 3;
    shim.szOsFile = (int)sizeof(SimFile) + base->szOsFile;
    shim.mxPathname = base->mxPathname;
    shim.zName = "saraban-sim";
    shim.xOpen = vfs_open;
    shim.xDelete = vfs_delete;
    shim.xAccess = vfs_access;
    shim.xFullPathname = vfs_full;
    shim.xDlOpen = vfs_dlopen;
    shim.xDlError = vfs_dlerror;
    shim.xDlSym = vfs_dlsym;
    shim.xDlClose = vfs_dlclose;
    shim.xRandomness = vfs_random;
    shim.xSleep = vfs_sleep;
    shim.xCurrentTime = vfs_time;
    shim.xGetLastError = vfs_error;
    shim.xCurrentTimeInt64 = vfs_time64;
    shim.xSetSystemCall = vfs_set_call;
    shim.xGetSystemCall = vfs_get_call;
    shim.xNextSystemCall = vfs_next_call;
    int rc = sqlite3_vfs_register(&shim, 1);
    if (rc == SQLITE_OK) installed = 1;
    pthread_mutex_unlock(&mu);
    return rc;
}

// MARK: Control

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int sim_disk_track(const char *dir, int power_loss) {
    pthread_mutex_lock(&mu);
    if (root_named(dir)) {
        pthread_mutex_unlock(&mu);
        return -1;
    }
    Root *r = calloc(1, sizeof *r);
    r->dir = strdup(dir);
    r->len = strlen(dir);
    r->power_loss = power_loss;
    r->armed = -1;
    r->next = roots;
    roots = r;
    pthread_mutex_unlock(&mu);
    return 0;
}

void sim_disk_mark_durable(const char *dir) {
    pthread_mutex_lock(&mu);
    Root *r = root_named(dir);
    for (Tracked *t = r ? r->files : NULL; t; t = t->next) {
        clear_ops(t);
        load_image(t);
    }
    pthread_mutex_unlock(&mu);
}

int sim_disk_untrack(const char *dir) {
    pthread_mutex_lock(&mu);
    Root **at = &roots;
    while (*at && strcmp((*at)->dir, dir) != 0) at = &(*at)->next;
    Root *r = *at;
    if (!r || r->open_files > 0) {
        pthread_mutex_unlock(&mu);
        return -1;
    }
    *at = r->next;
    pthread_mutex_unlock(&mu);
    free_root(r);
    return 0;
}

void sim_disk_arm_crash(const char *dir, long writes) {
    pthread_mutex_lock(&mu);
    Root *r = root_named(dir);
    if (r) r->armed = writes < 0 ? -1 : writes;
    pthread_mutex_unlock(&mu);
}

void sim_disk_freeze(const char *dir) {
    pthread_mutex_lock(&mu);
    Root *r = root_named(dir);
    if (r) r->frozen = 1;
    pthread_mutex_unlock(&mu);
}

/* One field of the root named `dir`, read under the lock (0 for a directory not tracked). */
#define ROOT_FIELD_GETTER(type, name, field)      \
    type name(const char *dir) {                  \
        pthread_mutex_lock(&mu);                  \
        Root *r = root_named(dir);                \
        type value = r ? (type)r->field : 0;      \
        pthread_mutex_unlock(&mu);                \
        return value;                             \
    }

ROOT_FIELD_GETTER(int, sim_disk_is_frozen, frozen)
ROOT_FIELD_GETTER(int, sim_disk_open_files, open_files)
ROOT_FIELD_GETTER(long, sim_disk_syncs, syncs)

int sim_disk_thaw(const char *dir) {
    pthread_mutex_lock(&mu);
    Root *r = root_named(dir);
    int rc = -1;
    if (r && r->open_files == 0) {
        r->frozen = 0;
        r->armed = -1;
        rc = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

static int write_all(const char *path, const unsigned char *bytes, sqlite3_int64 size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    sqlite3_int64 done = 0;
    while (done < size) {
        ssize_t n = write(fd, bytes + done, (size_t)(size - done));
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += n;
    }
    return close(fd);
}

int sim_disk_power_loss(const char *dir) {
    pthread_mutex_lock(&mu);
    Root *r = root_named(dir);
    if (!r || !r->power_loss || !r->frozen || r->open_files > 0) {
        pthread_mutex_unlock(&mu);
        return -1;
    }
    int n = 0;
    for (Tracked *t = r->files; t; t = t->next) {
        clear_ops(t);
        if (t->exists) {
            if (write_all(t->path, t->image, t->size) != 0) n = -1000;
        } else {
            unlink(t->path);
        }
        n++;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!ends_with(e->d_name, "-shm")) continue;
        size_t len = r->len + 1 + strlen(e->d_name) + 1;
        char *path = malloc(len);
        snprintf(path, len, "%s/%s", dir, e->d_name);
        unlink(path);
        free(path);
    }
    if (d) closedir(d);
    pthread_mutex_unlock(&mu);
    return n < 0 ? -1 : n;
}

int sim_disk_integrity_check(const char *path, char *out, int cap) {
    sqlite3 *db = NULL;
    if (cap > 0) out[0] = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        if (cap > 0) snprintf(out, (size_t)cap, "%s", db ? sqlite3_errmsg(db) : "cannot open");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt *st = NULL;
    int result = 0;
    size_t used = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        if (cap > 0) snprintf(out, (size_t)cap, "%s", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (!line) continue;
        if (strcmp(line, "ok") != 0) result = 1;
        if (cap > 0 && used + 1 < (size_t)cap) {
            int w = snprintf(out + used, (size_t)cap - used, "%s%s", used ? "; " : "", line);
            if (w > 0) used += (size_t)w;
            if (used >= (size_t)cap) used = (size_t)cap - 1;
        }
    }
    if (rc != SQLITE_DONE) {
        result = -1;
        if (cap > 0) snprintf(out, (size_t)cap, "%s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return result;
}
