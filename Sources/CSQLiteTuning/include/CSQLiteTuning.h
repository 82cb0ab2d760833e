#ifndef SARABAN_CSQLITETUNING_H
#define SARABAN_CSQLITETUNING_H
// Process-wide SQLite settings that only sqlite3_config can make. sqlite3_config is variadic, so
// Swift cannot call it; this target wraps the one call SarabanStorage needs. It must run before
// SQLite initialises (before the first connection opens); later it changes nothing.

/// Turns SQLite's memory statistics off (SQLITE_CONFIG_MEMSTATUS = 0). The system library is
/// built with them on, which takes one process-wide mutex around every SQLite allocation, and
/// is built without lookaside, so every allocation goes through it. Returns SQLITE_OK (0), or
/// SQLITE_MISUSE (21) when SQLite was already initialised.
int saraban_sqlite_disable_memstatus(void);

#endif
