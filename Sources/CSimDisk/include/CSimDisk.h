#ifndef SARABAN_CSIMDISK_H
#define SARABAN_CSIMDISK_H
// The simulator's disk (Docs/TESTING.md, "Crashes and power loss"): an SQLite VFS shim, made the
// process's default VFS by sim_disk_install, that forwards every call to the VFS it replaces and,
// for the files under a directory the simulator tracks (one per simulated node), can
//   - crash: fail the k-th next write and freeze the directory (every later write, sync,
//     truncate and delete fails), so a transaction dies part-way and nothing SQLite does while
//     closing reaches the files: what survives is what SQLite had committed;
//   - lose power: keep, per file, its content as of its last fsync (the durable image) beside the
//     writes made since, and on power loss write every file back to its durable image.
// Files outside tracked directories (every other test in the process) are only forwarded.
// Thread-safe (one mutex); written for the simulator only: the `saraban` binary never links it.

/// Makes the shim the default VFS (once per process; later calls do nothing). Returns SQLITE_OK.
int sim_disk_install(void);

/// Tracks the files SQLite opens under `dir` (an absolute path without symlinks) from now on:
/// call it before the node's database is created. With `power_loss`, each file's durable image is
/// kept (a file created from now on has none until its first sync).
int sim_disk_track(const char *dir, int power_loss);

/// Takes the present content of every tracked file under `dir` as durable (a baseline: the
/// simulator calls it once a node is set up).
void sim_disk_mark_durable(const char *dir);

/// Stops tracking `dir`. Returns 0, or -1 while a file under it is still open.
int sim_disk_untrack(const char *dir);

/// The next `writes` writes under `dir` succeed; the one after fails and freezes `dir`. A
/// negative `writes` disarms.
void sim_disk_arm_crash(const char *dir, long writes);

/// Freezes `dir` now (a crash between two writes).
void sim_disk_freeze(const char *dir);

/// 1 while `dir` is frozen (crashed), else 0.
int sim_disk_is_frozen(const char *dir);

/// Files under `dir` open now.
int sim_disk_open_files(const char *dir);

/// Syncs (fsync) of files under `dir` so far.
long sim_disk_syncs(const char *dir);

/// Restart after a crash: unfreezes `dir` (and disarms it). Returns 0, or -1 while a file is open.
int sim_disk_thaw(const char *dir);

/// Power loss: every tracked file under `dir` goes back to its durable image (a file never synced
/// is deleted) and `-shm` files are deleted. `dir` must be frozen with no file open, and tracked
/// with `power_loss`. Returns the number of files written back or deleted, or -1.
int sim_disk_power_loss(const char *dir);

/// Runs `PRAGMA integrity_check` on the database at `path` through a connection of its own and
/// writes its answer ("ok" when sound) into `out` (NUL-terminated, at most `cap` bytes). Returns
/// 0 for "ok", 1 for problems, -1 if the database does not open.
int sim_disk_integrity_check(const char *path, char *out, int cap);

#endif
