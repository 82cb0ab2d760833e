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
        // 6: retention by partition (Docs/RELAY.md, "Retention"). `envelopes` is rebuilt
        // range-partitioned by `period`, the UTC month the relay stored the row (yyyymm), so a
        // month leaves by DROP TABLE, never by DELETE. Control envelopes (a space's membership
        // log, epoch -1) get period 0 and live in `envelopes_keep`, never retired: every relay
        // folds the whole log. `feed_floors` says, per feed, the first sequence still held once
        // older months are retired (the `horizons` a relay announces); `retired_periods` records
        // what was retired and where it was archived. The rows of version 5 are copied over
        // (their month from `stored_at`), keeping n, tx and stored_at.
        [
            "ALTER TABLE envelopes RENAME TO envelopes_v5",
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
                tx bigint DEFAULT pg_current_xact_id()::text::int8,
                -- The UTC month by default: a relay of schema 5 still running during the upgrade inserts
                -- without it (its control envelopes then sit in a month: retiring copies them to
                -- envelopes_keep first).
                period integer NOT NULL DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')::int,
                PRIMARY KEY (space, author, seq_start, period)
            ) PARTITION BY RANGE (period)
            """,
            "ALTER TABLE envelopes ALTER COLUMN bytes SET STORAGE EXTERNAL",
            "CREATE TABLE envelopes_keep PARTITION OF envelopes FOR VALUES FROM (MINVALUE) TO (1)",
            // Rows of a month without its partition (none while partitions are made ahead).
            "CREATE TABLE envelopes_default PARTITION OF envelopes DEFAULT",
            """
            DO $$
            DECLARE m integer;
            BEGIN
                FOR m IN SELECT DISTINCT to_char(stored_at AT TIME ZONE 'UTC', 'YYYYMM')::int FROM envelopes_v5 WHERE epoch <> -1 LOOP
                    EXECUTE format('CREATE TABLE %I PARTITION OF envelopes FOR VALUES FROM (%s) TO (%s)', 'envelopes_' || m, m, m + 1);
                END LOOP;
            END $$
            """,
            """
            INSERT INTO envelopes(space, author, seq_start, seq_end, epoch, n, id, stored_at, bytes, tx, period)
            SELECT space, author, seq_start, seq_end, epoch, n, id, stored_at, bytes, tx,
                CASE WHEN epoch = -1 THEN 0 ELSE to_char(stored_at AT TIME ZONE 'UTC', 'YYYYMM')::int END
            FROM envelopes_v5
            """,
            "DROP TABLE envelopes_v5",
            "CREATE INDEX envelopes_by_n ON envelopes (space, n)",
            "CREATE INDEX envelopes_by_position ON envelopes (tx, n)",
            "CREATE INDEX envelopes_control ON envelopes (space, n) WHERE epoch = -1",
            """
            CREATE TABLE feed_floors (
                space bytea NOT NULL,
                author bytea NOT NULL,
                first_seq bigint NOT NULL CHECK (first_seq >= 2),
                PRIMARY KEY (space, author)
            )
            """,
            """
            CREATE TABLE retired_periods (
                period integer PRIMARY KEY,
                retired_at timestamptz NOT NULL DEFAULT now(),
                envelopes bigint NOT NULL,
                bytes bigint NOT NULL,
                feeds bigint NOT NULL,
                archive text
            )
            """,
        ],
        // 7: attachments retire too (Docs/RELAY.md, "Retention"). `used` is the UTC month an
        // attachment was last stored or served to a member who asked for it (a member offering
        // one it holds does not count: members offer everything they hold, at every session).
        // `retired_roots` lists those let go, so a member's later offer is answered `missing`
        // and the relay does not pull them again.
        [
            "ALTER TABLE attachment_manifests ADD COLUMN used integer",
            "UPDATE attachment_manifests SET used = to_char(stored_at AT TIME ZONE 'UTC', 'YYYYMM')::int",
            "ALTER TABLE attachment_manifests ALTER COLUMN used SET DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')::int",
            "ALTER TABLE attachment_manifests ALTER COLUMN used SET NOT NULL",
            "CREATE INDEX attachment_manifests_by_use ON attachment_manifests (used)",
            """
            CREATE TABLE retired_roots (
                root bytea PRIMARY KEY CHECK (octet_length(root) = 32),
                space bytea,
                chunks integer NOT NULL,
                used integer NOT NULL,
                retired_at timestamptz NOT NULL DEFAULT now(),
                archive text
            )
            """,
        ],
    ]

    /// This month (UTC) as yyyymm (SQL).
    static let monthNow = "to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')::int"

    /// The month partitions a relay makes ahead (this month and the next two, UTC), so no row
    /// lands in `envelopes_default`. Run at open and hourly; idempotent, serialised by the
    /// migration lock (relay processes started together do not race).
    static let makePartitionsAhead = """
        DO $$
        DECLARE m integer;
        BEGIN
            PERFORM pg_advisory_xact_lock(\(migrationLock));
            FOR i IN 0..2 LOOP
                m := to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i), 'YYYYMM')::int;
                IF to_regclass('envelopes_' || m) IS NULL THEN
                    EXECUTE format('CREATE TABLE %I PARTITION OF envelopes FOR VALUES FROM (%s) TO (%s)', 'envelopes_' || m, m, m + 1);
                END IF;
            END LOOP;
        END $$
        """

    /// The period of an envelope stored now (SQL): 0 for a control envelope, else the UTC month.
    static let periodNow = "CASE WHEN u.epoch = -1 THEN 0 ELSE to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')::int END"
}
