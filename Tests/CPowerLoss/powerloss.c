// libSarabanPowerLoss.so: keeps, for each watched file, its content as of the last time a process
// asked the kernel to make it durable, so a test can put the files back to what a power cut would
// leave (Docs/TESTING.md, "Power loss").
//
// Loaded with LD_PRELOAD into `saraban` processes. SARABAN_POWERLOSS_FILES lists the watched
// paths, separated by ':'; one ending in '/' watches every file under that directory. When a
// process calls fsync(fd) or fdatasync(fd) on one of them, the
// file's current bytes are first copied to PATH.synced (through PATH.synced.tmp.PID and a
// rename, under an flock of PATH.synced.lock so that copies by two processes do not interleave),
// then the real call runs. The copy is taken before the sync, so a write that races with it is
// counted as lost: the pessimistic reading of "what was on the disk".
//
// Restoring PATH.synced over PATH (and deleting SQLite's -shm, which is rebuilt) then models a
// power cut right now: every write since the file's last sync is gone, every synced one is kept.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "powerloss.h"

static int watched(const char *path) {
    const char *list = getenv("SARABAN_POWERLOSS_FILES");
    if (list == NULL || *list == 0) return 0;
    size_t n = strlen(path);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, path, n) == 0) return 1;
        if (len > 0 && p[len - 1] == '/' && len < n && strncmp(p, path, len) == 0) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

/// Copies the open file `fd` (all of it, read with pread) to `path`.synced.
static void snapshot(int fd) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    if (!watched(path)) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;

    int saved = errno;
    char lockPath[PATH_MAX + 16], tmpPath[PATH_MAX + 48], finalPath[PATH_MAX + 16];
    snprintf(lockPath, sizeof lockPath, "%s.synced.lock", path);
    snprintf(tmpPath, sizeof tmpPath, "%s.synced.tmp.%ld", path, (long)getpid());
    snprintf(finalPath, sizeof finalPath, "%s.synced", path);
    int lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock >= 0) flock(lock, LOCK_EX);
    if (fstat(fd, &st) == 0) {
        int out = open(tmpPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out >= 0) {
            char buffer[1 << 16];
            off_t at = 0;
            int ok = 1;
            while (at < st.st_size) {
                size_t want = (size_t)(st.st_size - at) < sizeof buffer ? (size_t)(st.st_size - at) : sizeof buffer;
                ssize_t r = pread(fd, buffer, want, at);
                if (r <= 0) { ok = r == 0; break; }
                if (write(out, buffer, (size_t)r) != r) { ok = 0; break; }
                at += r;
            }
            close(out);
            if (ok) rename(tmpPath, finalPath); else unlink(tmpPath);
        }
    }
    if (lock >= 0) {
        flock(lock, LOCK_UN);
        close(lock);
    }
    errno = saved;
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    snapshot(fd);
    return real(fd);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    snapshot(fd);
    return real(fd);
}
