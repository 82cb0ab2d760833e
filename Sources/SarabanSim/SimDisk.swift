import CSimDisk
import Foundation
import SarabanStorage

/// The simulated nodes' disk: their data directories (on tmpfs when there is one, so "disk"
/// I/O costs memory copies) seen through CSimDisk, the SQLite VFS shim that crashes a node's
/// files part-way through a transaction and rewinds them to their last fsync on power loss.
enum SimDisk {
    /// Installs the shim once per process, after the store's process-wide SQLite settings.
    static let installed: Bool = {
        _ = Store.processWideSettings
        return sim_disk_install() == 0
    }()

    /// Where the simulator makes its nodes' data directories: /dev/shm when it exists (memory),
    /// else the temporary directory. Symlinks resolved, as SQLite names its files.
    static let root: String = {
        let fm = FileManager.default
        let base = fm.fileExists(atPath: "/dev/shm") && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
        let dir = (base as NSString).appendingPathComponent("saraban-sim-\(getpid())")
        try? fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return URL(fileURLWithPath: dir).resolvingSymlinksInPath().path
    }()

    /// Serialises directory numbering across simulations run in parallel.
    nonisolated(unsafe) static var counter = 0
    static let lock = NSLock()

    /// A fresh, tracked directory for one node.
    static func makeDirectory(_ label: String, powerLoss: Bool) -> String {
        precondition(installed, "the simulator's SQLite VFS could not be installed")
        lock.lock()
        counter += 1
        let n = counter
        lock.unlock()
        let dir = "\(root)/\(n)-\(label)"
        try? FileManager.default.removeItem(atPath: dir)
        _ = sim_disk_track(dir, powerLoss ? 1 : 0)
        return dir
    }

    /// Forgets a directory and deletes it (its node closed).
    static func remove(_ dir: String) {
        _ = sim_disk_untrack(dir)
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func markDurable(_ dir: String) { sim_disk_mark_durable(dir) }
    static func armCrash(_ dir: String, afterWrites n: Int) { sim_disk_arm_crash(dir, n) }
    static func freeze(_ dir: String) { sim_disk_freeze(dir) }
    static func isFrozen(_ dir: String) -> Bool { sim_disk_is_frozen(dir) != 0 }
    static func openFiles(_ dir: String) -> Int { Int(sim_disk_open_files(dir)) }
    static func syncs(_ dir: String) -> Int { sim_disk_syncs(dir) }
    static func thaw(_ dir: String) -> Bool { sim_disk_thaw(dir) == 0 }
    static func powerLoss(_ dir: String) -> Bool { sim_disk_power_loss(dir) >= 0 }

    /// `PRAGMA integrity_check` of the database at `path`: nil when sound, else SQLite's answer.
    static func integrityProblem(_ path: String) -> String? {
        var out = [CChar](repeating: 0, count: 1024)
        let rc = sim_disk_integrity_check(path, &out, Int32(out.count))
        return rc == 0 ? nil : String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
