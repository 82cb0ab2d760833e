// A growable buffer of trivial values with unchecked access, owned by `TextEngine`
// (freed by `TextBox.deinit`). No ARC, no uniqueness checks, no bounds checks in release:
// the engine's own invariants keep every index in range.

@usableFromInline
struct TextBuffer<T: BitwiseCopyable> {
    @usableFromInline var base: UnsafeMutablePointer<T>
    @usableFromInline var count: Int
    @usableFromInline var capacity: Int

    init(capacity: Int) {
        let c = Swift.max(capacity, 4)
        base = .allocate(capacity: c)
        count = 0
        self.capacity = c
    }

    @inline(__always)
    subscript(i: Int) -> T {
        get {
            assert(i >= 0 && i < count)
            return base[i]
        }
        nonmutating set {
            assert(i >= 0 && i < count)
            base[i] = newValue
        }
    }

    mutating func reserve(_ n: Int) {
        guard n > capacity else { return }
        var c = capacity * 2
        if c < n { c = n }
        let nb = UnsafeMutablePointer<T>.allocate(capacity: c)
        nb.initialize(from: base, count: count)
        base.deallocate()
        base = nb
        capacity = c
    }

    @inline(__always)
    mutating func append(_ x: T) {
        if count == capacity { reserve(count + 1) }
        (base + count).initialize(to: x)
        count += 1
    }

    mutating func append(repeating x: T, count n: Int) {
        reserve(count + n)
        (base + count).initialize(repeating: x, count: n)
        count += n
    }

    func clone() -> TextBuffer<T> {
        var b = TextBuffer(capacity: capacity)
        b.base.initialize(from: base, count: count)
        b.count = count
        return b
    }

    func free() { base.deallocate() }
}
