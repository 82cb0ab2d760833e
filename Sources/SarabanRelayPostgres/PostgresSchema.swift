/// The relay's PostgreSQL schema, created and migrated by the relay itself (Docs/RELAY.md).
///
/// `saraban_schema` records the versions applied. A relay takes a session advisory lock while it
/// migrates, so relay processes started together do not race, and refuses a database whose
/// version is newer than it knows. Each entry of ``migrations`` is one version (its statements),
/// run in one transaction; add versions, never edit one that has shipped.
enum PostgresSchema {
    /// Hash partitions of `envelopes` (by space): the unit a later Citus or per-province split moves.
    static let partitions = 16

    /// `pg_advisory_lock` key held while migrating ("SRBNMIGR").
    static let migrationLock: Int64 = 0x5352_424E_4D49_4752

    static var current: Int { migrations.count }

    /// Per version, its statements (PostgreSQL's extended protocol runs one statement at a time).
    static let migrations: [[String]] = [
        // 1: envelopes (append-only, hash-partitioned by space), feed heads, carried spaces and the
        // peers they are named for, peer status and per-(peer, space) cursors.
        [
            """
            CREATE TABLE spaces (
                id bytea PRIMARY KEY CHECK (octet_length(id) = 16),
                name text NOT NULL,
                -- Served to every trusted peer (true) or only to the peers named in space_peers.
                open boolean NOT NULL DEFAULT true,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            // A session reads the open spaces and its own: neither grows with the others' spaces.
            "CREATE INDEX spaces_open ON spaces (id) WHERE open",
            """
            CREATE TABLE space_peers (
                peer bytea NOT NULL,
                space bytea NOT NULL REFERENCES spaces(id),
                PRIMARY KEY (peer, space)
            )
            """,
            "CREATE SEQUENCE envelope_n AS bigint",
            // Signed, encrypted envelopes: rows are only ever inserted (never updated or deleted), so
            // the table gathers no dead tuples; old data leaves by partition. Store order is n.
            """
            CREATE TABLE envelopes (
                space bytea NOT NULL,
                author bytea NOT NULL,
                seq_start bigint NOT NULL,
                seq_end bigint NOT NULL,
                epoch integer NOT NULL,
                n bigint NOT NULL DEFAULT nextval('envelope_n'),
                id bytea NOT NULL,
                stored_at timestamptz NOT NULL DEFAULT now(),
                bytes bytea NOT NULL,
                PRIMARY KEY (space, author, seq_start)
            ) PARTITION BY HASH (space)
            """,
            // Ciphertext does not compress: keep large envelopes out of line without trying.
            "ALTER TABLE envelopes ALTER COLUMN bytes SET STORAGE EXTERNAL",
            "CREATE INDEX envelopes_by_n ON envelopes (space, n)",
        ]
            + (0..<partitions).map {
                "CREATE TABLE envelopes_p\($0) PARTITION OF envelopes FOR VALUES WITH (MODULUS \(partitions), REMAINDER \($0))"
            }
            + [
                // The head of each author's chain per space: the feed vector, and where verification
                // resumes. Small rows updated in place (HOT: no indexed column changes).
                """
                CREATE TABLE feed_heads (
                    space bytea NOT NULL,
                    author bytea NOT NULL,
                    last_seq bigint NOT NULL,
                    last_id bytea NOT NULL,
                    PRIMARY KEY (space, author)
                ) WITH (fillfactor = 70)
                """,
                """
                CREATE TABLE peer_status (
                    peer bytea PRIMARY KEY,
                    last_contact bigint,
                    last_synced bigint,
                    last_failure bigint,
                    last_error text,
                    changes_peer_lacks bigint NOT NULL DEFAULT 0,
                    changes_we_lack bigint NOT NULL DEFAULT 0,
                    envelopes_sent bigint NOT NULL DEFAULT 0,
                    envelopes_received bigint NOT NULL DEFAULT 0,
                    bytes_sent bigint NOT NULL DEFAULT 0,
                    bytes_received bigint NOT NULL DEFAULT 0,
                    sessions bigint NOT NULL DEFAULT 0
                ) WITH (fillfactor = 70)
                """,
                // Per (peer, space): what the peer held as of its last summary or ack (the delivery cursor).
                """
                CREATE TABLE peer_cursors (
                    peer bytea NOT NULL,
                    space bytea NOT NULL,
                    at bigint NOT NULL,
                    vector bytea NOT NULL,
                    PRIMARY KEY (peer, space)
                ) WITH (fillfactor = 70)
                """,
            ],
        // 2: the store position (Docs/RELAY.md, "Catching up by store position"). Each envelope row
        // records the id of the transaction that stored it (`tx`, PostgreSQL's 64-bit xid8 as a
        // bigint); (tx, n) orders every envelope of every space, and a relay process reads what
        // other processes stored with one query `WHERE (tx, n) > its position AND tx < the oldest
        // transaction still running`, so a row committed out of `n` order is never skipped. Rows
        // stored before this version keep tx NULL (no relay reads them by position: a process
        // starts reading at the horizon of its start); no envelope row is updated.
        [
            "ALTER TABLE envelopes ADD COLUMN tx bigint",
            "ALTER TABLE envelopes ALTER COLUMN tx SET DEFAULT pg_current_xact_id()::text::int8",
            "CREATE INDEX envelopes_by_position ON envelopes (tx, n)",
        ],
        // 3: the control envelopes of a space (its membership log, which the relays fold into
        // rosters: Docs/RELAY.md, "Authority"), found without reading the space's other envelopes.
        [
            "CREATE INDEX envelopes_control ON envelopes (space, n) WHERE epoch = -1",
        ],
        // 4: attachments (Docs/RELAY.md, "Attachments"): manifests and sealed chunks, by root,
        // shared by every relay process on any host. Rows are inserted once and never updated.
        [
            """
            CREATE TABLE attachment_manifests (
                root bytea PRIMARY KEY CHECK (octet_length(root) = 32),
                space bytea,
                chunks integer NOT NULL,
                manifest bytea NOT NULL,
                stored_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX attachment_manifests_by_space ON attachment_manifests (space)",
            """
            CREATE TABLE attachment_chunks (
                root bytea NOT NULL,
                idx integer NOT NULL,
                bytes bytea NOT NULL,
                stored_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (root, idx)
            )
            """,
            // Sealed chunks do not compress: out of line without trying.
            "ALTER TABLE attachment_chunks ALTER COLUMN bytes SET STORAGE EXTERNAL",
        ],
        // 5: head claims (Docs/SECURITY.md, "Withholding"): the latest verified claim per
        // (space, claimant), replaced only by a newer one; a few rows per space.
        [
            """
            CREATE TABLE head_claims (
                space bytea NOT NULL,
                claimant bytea NOT NULL,
                time int8 NOT NULL,
                received_at int8 NOT NULL,
                bytes bytea NOT NULL,
                PRIMARY KEY (space, claimant)
            )
            """
        ],
    ]
}
