package standin;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import standin.shared.DbConfig;
import standin.shared.Json;
import standin.shared.Log;
import standin.shared.Util;

/**
 * The MySQL application database: schema and its migration (one node, under GET_LOCK, inside a
 * transaction), the node registry with heartbeats, the session row every request writes, the
 * records of the test API and the scheduler's runs. Every operation opens its own connection, so a
 * restarted database is simply reconnected to.
 */
final class AppDb implements Store {
    static final String LIVE_STATES = "('starting','waiting','migrating','running')";

    private static final String[] DDL = {
        "CREATE TABLE IF NOT EXISTS standin_meta (k VARCHAR(64) NOT NULL PRIMARY KEY, v VARCHAR(512) NOT NULL)"
            + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS standin_migrations (id BIGINT AUTO_INCREMENT PRIMARY KEY, from_schema VARCHAR(32),"
            + " to_schema VARCHAR(32) NOT NULL, release_version VARCHAR(32) NOT NULL, node VARCHAR(255) NOT NULL,"
            + " started_at DATETIME(3) NOT NULL, finished_at DATETIME(3) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS standin_nodes (hostname VARCHAR(255) NOT NULL PRIMARY KEY, instance_id VARCHAR(64) NOT NULL,"
            + " version VARCHAR(32) NOT NULL, web_port INT, api_port INT, node_port INT, queue_port INT, state VARCHAR(16) NOT NULL,"
            + " pid BIGINT, started_at DATETIME(3), heartbeat_at DATETIME(3), stopped_at DATETIME(3))"
            + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS standin_records (id BIGINT AUTO_INCREMENT PRIMARY KEY, uid VARCHAR(64) NOT NULL UNIQUE,"
            + " payload TEXT, node VARCHAR(255) NOT NULL, origin VARCHAR(16) NOT NULL DEFAULT 'api', created_at DATETIME(3) NOT NULL,"
            + " schema_version VARCHAR(32) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS standin_scheduler_runs (id BIGINT AUTO_INCREMENT PRIMARY KEY, node VARCHAR(255) NOT NULL,"
            + " ran_at DATETIME(3) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS standin_sessions (client VARCHAR(64) NOT NULL PRIMARY KEY, node VARCHAR(255) NOT NULL,"
            + " hits BIGINT NOT NULL, first_seen DATETIME(3) NOT NULL, last_seen DATETIME(3) NOT NULL)"
            + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    };

    /** What the database says about itself. */
    static final class State {
        boolean exists;
        String schema;
        String release;
        String keyCheck;
        String secret;
    }

    private final DbConfig cfg;
    private final Looker node;
    private final String lockPrefix;
    private volatile String secret;
    private volatile boolean registered;
    private volatile boolean reachable = true;

    AppDb(DbConfig cfg, Looker node) {
        this.cfg = cfg;
        this.node = node;
        String db = cfg.database.length() > 30 ? Util.sha256Hex(cfg.database).substring(0, 16) : cfg.database;
        this.lockPrefix = "looker_standin." + db + ".";
    }

    String secret() {
        return secret;
    }

    boolean registered() {
        return registered;
    }

    Connection conn() throws SQLException {
        return cfg.connect();
    }

    /** Start-up waits for the database (it may still be starting) up to the given time. */
    void waitForDatabase(int seconds) throws Looker.Refusal, InterruptedException {
        long deadline = System.currentTimeMillis() + seconds * 1000L;
        int attempt = 0;
        while (true) {
            try (Connection c = conn()) {
                if (attempt > 0) {
                    Log.info("application database " + cfg + " reachable");
                }
                return;
            } catch (SQLException e) {
                if (System.currentTimeMillis() > deadline) {
                    throw new Looker.Refusal("application database " + cfg + " unreachable for " + seconds + " s: " + Util.brief(e));
                }
                if (attempt++ % 5 == 0) {
                    Log.warn("application database " + cfg + " unreachable, retrying: " + Util.brief(e));
                }
                Thread.sleep(1000);
            }
        }
    }

    State readState(Connection c) throws SQLException {
        State st = new State();
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'standin_meta'");
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            st.exists = rs.getInt(1) > 0;
        }
        if (!st.exists) {
            return st;
        }
        Map<String, String> meta = new HashMap<>();
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT k, v FROM standin_meta")) {
            while (rs.next()) {
                meta.put(rs.getString(1), rs.getString(2));
            }
        }
        st.schema = meta.get("schema_version");
        st.release = meta.get("release_version");
        st.keyCheck = meta.get("master_key_check");
        st.secret = meta.get("cluster_secret");
        if (st.schema == null) {
            st.exists = false;
        }
        return st;
    }

    private void checkState(State st, byte[] key) throws Looker.Refusal {
        if (!st.exists) {
            return;
        }
        if (Util.compareVersions(st.schema, node.schema) > 0) {
            throw new Looker.Refusal("the application database schema is " + st.schema + " (written by release " + st.release
                    + "), newer than this release " + node.version + " (schema " + node.schema
                    + "): a database cannot be downgraded; install release " + st.release + " or restore a backup");
        }
        if (st.keyCheck != null) {
            if (key == null) {
                throw new Looker.Refusal("the application database is encrypted with a master key but neither LKR_MASTER_KEY_ENV"
                        + " nor LKR_MASTER_KEY_FILE is set");
            }
            if (!keyMatches(st.keyCheck, key)) {
                throw new Looker.Refusal("the master key (LKR_MASTER_KEY_ENV/LKR_MASTER_KEY_FILE) does not match the one this"
                        + " application database was set up with: every node needs the same master key");
            }
        }
    }

    static String keyCheck(byte[] key) {
        byte[] salt = new byte[16];
        new SecureRandom().nextBytes(salt);
        return "v1:" + Util.hex(salt) + ":" + Util.hex(Util.sha256(salt, key));
    }

    static boolean keyMatches(String check, byte[] key) {
        String[] p = check.split(":");
        if (p.length != 3) {
            return false;
        }
        byte[] salt = new byte[p[1].length() / 2];
        for (int k = 0; k < salt.length; k++) {
            salt[k] = (byte) Integer.parseInt(p[1].substring(2 * k, 2 * k + 2), 16);
        }
        return MessageDigest.isEqual(p[2].getBytes(StandardCharsets.US_ASCII),
                Util.hex(Util.sha256(salt, key)).getBytes(StandardCharsets.US_ASCII));
    }

    /**
     * Start-up against the application database: refuse what Looker refuses, register, migrate the
     * schema when it is older than this release (one node at a time), record the master key.
     */
    void startup(byte[] key) throws Looker.Refusal, Looker.MigrationFailed, SQLException, InterruptedException {
        State st;
        try (Connection c = conn()) {
            st = readState(c);
        }
        checkState(st, key);
        if (st.exists) {
            register();
        }
        if (!st.exists || Util.compareVersions(st.schema, node.schema) < 0) {
            migrate(key);
        }
        if (!registered) {
            register();
        }
        try (Connection c = conn()) {
            addMissingTables(c);
            if (key != null) {
                try (PreparedStatement ps = c.prepareStatement("INSERT IGNORE INTO standin_meta (k, v) VALUES ('master_key_check', ?)")) {
                    ps.setString(1, keyCheck(key));
                    ps.executeUpdate();
                }
            }
            st = readState(c);
            checkState(st, key);
            secret = st.secret;
        }
    }

    /**
     * migrate_internal_data: creates the schema in a database that holds no Looker data and copies the
     * embedded store's records into it, all in one transaction (a failure leaves no row behind).
     * Refused, before anything is written, when any standin_* table of the target holds a row.
     */
    int importInto(List<Map<String, Object>> records, byte[] key) throws Looker.Refusal, Looker.MigrationFailed, SQLException,
            InterruptedException {
        try (Connection c = cfg.connect(5000, 0)) {
            String lock = lockName("schema_migration");
            if (!getLock(c, lock, 30)) {
                throw new Looker.Refusal("another process holds the schema migration lock of " + where()
                        + " (a node is migrating it): nothing was copied");
            }
            try {
                Map<String, Long> held = heldData(c);
                if (!held.isEmpty()) {
                    List<String> counts = new ArrayList<>();
                    for (Map.Entry<String, Long> e : held.entrySet()) {
                        counts.add(e.getKey() + ": " + e.getValue() + (e.getValue() == 1 ? " row" : " rows"));
                    }
                    throw new Looker.Refusal("the target database " + where() + " already holds Looker data ("
                            + String.join(", ", counts) + "): migrate_internal_data copies into an empty application database"
                            + " only, and nothing was copied. Point looker-db.yml at a new, empty database");
                }
                bootstrap(c, key, records);
            } finally {
                releaseLock(c, lock);
            }
        }
        return records.size();
    }

    /** The database and server, for messages (no credentials). */
    String where() {
        return "'" + cfg.database + "' on " + cfg.host + ":" + cfg.port;
    }

    /** Row counts of the standin_* tables that hold rows. */
    private static Map<String, Long> heldData(Connection c) throws SQLException {
        List<String> tables = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT table_name FROM information_schema.tables"
                + " WHERE table_schema = DATABASE() AND table_name LIKE 'standin\\_%' ORDER BY table_name");
             ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                tables.add(rs.getString(1));
            }
        }
        Map<String, Long> held = new LinkedHashMap<>();
        for (String t : tables) {
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM `" + t + "`")) {
                rs.next();
                if (rs.getLong(1) > 0) {
                    held.put(t, rs.getLong(1));
                }
            }
        }
        return held;
    }

    /**
     * migrate_db_to_looker_version: brings the schema to this release's (creating it in an empty
     * database) and returns true, or false when it already was there. A newer schema is refused.
     */
    boolean migrateSchema(byte[] key) throws Looker.Refusal, Looker.MigrationFailed, SQLException, InterruptedException {
        State st;
        try (Connection c = conn()) {
            st = readState(c);
        }
        checkState(st, key);
        if (st.exists && st.schema.equals(node.schema)) {
            return false;
        }
        boolean migrated = migrate(key);
        if (key != null) {
            try (Connection c = conn();
                 PreparedStatement ps = c.prepareStatement("INSERT IGNORE INTO standin_meta (k, v) VALUES ('master_key_check', ?)")) {
                ps.setString(1, keyCheck(key));
                ps.executeUpdate();
            }
        }
        return migrated;
    }

    /** Registered nodes with a fresh heartbeat that run another release than this jar. */
    List<String> liveNodesOfOtherReleases() throws SQLException {
        List<String> out = new ArrayList<>();
        try (Connection c = conn()) {
            if (!readState(c).exists) {
                return out;
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT hostname, version FROM standin_nodes WHERE version <> ?"
                    + " AND state IN " + LIVE_STATES + " AND heartbeat_at > NOW(3) - INTERVAL ? SECOND ORDER BY hostname")) {
                ps.setString(1, node.version);
                ps.setInt(2, node.staleSeconds);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        out.add(rs.getString(1) + " (" + rs.getString(2) + ")");
                    }
                }
            }
        }
        return out;
    }

    /** Tables that later stand-in builds added to the schema (created when missing). */
    private static void addMissingTables(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT COUNT(*) FROM information_schema.tables"
                + " WHERE table_schema = DATABASE() AND table_name = 'standin_sessions'");
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            if (rs.getInt(1) > 0) {
                return;
            }
        }
        try (Statement s = c.createStatement()) {
            for (String ddl : DDL) {
                s.execute(ddl);
            }
        }
    }

    private String lockName(String what) {
        return lockPrefix + what;
    }

    private static boolean getLock(Connection c, String name, int seconds) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT GET_LOCK(?, ?)")) {
            ps.setString(1, name);
            ps.setInt(2, seconds);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1) == 1;
            }
        }
    }

    private static void releaseLock(Connection c, String name) {
        try (PreparedStatement ps = c.prepareStatement("SELECT RELEASE_LOCK(?)")) {
            ps.setString(1, name);
            ps.executeQuery().close();
        } catch (SQLException e) {
            // the lock goes with the connection
        }
    }

    /**
     * The schema migration: exactly one node runs it, under a database lock, in one transaction.
     * False when another node had done it meanwhile.
     */
    private boolean migrate(byte[] key) throws Looker.Refusal, Looker.MigrationFailed, SQLException, InterruptedException {
        try (Connection c = cfg.connect(5000, 0)) {
            String lock = lockName("schema_migration");
            node.setState("waiting");
            long waited = 0;
            while (!getLock(c, lock, 5)) {
                waited += 5;
                Log.info("waiting for the schema migration lock: another node is migrating the application database (" + waited + " s)");
            }
            try {
                State st = readState(c);
                checkState(st, key);
                if (st.exists && Util.compareVersions(st.schema, node.schema) >= 0) {
                    Log.info("application database schema is already " + st.schema + " (migrated by another node)");
                    return false;
                }
                node.setState("migrating");
                heartbeatNow();
                if (!st.exists) {
                    bootstrap(c, key, List.of());
                } else {
                    upgrade(c, st);
                }
                return true;
            } finally {
                releaseLock(c, lock);
                node.setState("starting");
            }
        }
    }

    /** Creates the schema (and inserts the records migrate_internal_data brings along) in one transaction. */
    private void bootstrap(Connection c, byte[] key, List<Map<String, Object>> records) throws SQLException, Looker.MigrationFailed,
            InterruptedException {
        Log.info("application database is empty: creating schema " + node.schema + " for release " + node.version
                + " (stand-in migration, " + node.migrationSeconds + " s)");
        Timestamp started = new Timestamp(System.currentTimeMillis());
        simulateWork();
        if (node.migrationFails) {
            throw new Looker.MigrationFailed("schema migration to " + node.schema + " (release " + node.version
                    + ") failed; nothing was written, the application database is unchanged");
        }
        try (Statement s = c.createStatement()) {
            for (String ddl : DDL) {
                s.execute(ddl);
            }
        }
        c.setAutoCommit(false);
        try {
            byte[] sec = new byte[32];
            new SecureRandom().nextBytes(sec);
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("schema_version", node.schema);
            meta.put("release_version", node.version);
            meta.put("cluster_secret", Util.hex(sec));
            meta.put("created_by", "lookerops.cluster Looker stand-in");
            if (key != null) {
                meta.put("master_key_check", keyCheck(key));
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO standin_meta (k, v) VALUES (?, ?)")) {
                for (Map.Entry<String, String> e : meta.entrySet()) {
                    ps.setString(1, e.getKey());
                    ps.setString(2, e.getValue());
                    ps.executeUpdate();
                }
            }
            recordMigration(c, null, started);
            insertImported(c, records);
            c.commit();
        } catch (SQLException e) {
            c.rollback();
            throw e;
        } finally {
            c.setAutoCommit(true);
        }
        Log.info("schema " + node.schema + " created");
    }

    private void upgrade(Connection c, State st) throws SQLException, Looker.MigrationFailed, InterruptedException {
        Log.info("migrating the application database schema from " + st.schema + " (release " + st.release + ") to " + node.schema
                + " (release " + node.version + "); stand-in migration, " + node.migrationSeconds + " s, in one transaction");
        Timestamp started = new Timestamp(System.currentTimeMillis());
        addMissingTables(c);
        c.setAutoCommit(false);
        boolean committed = false;
        try {
            try (PreparedStatement ps = c.prepareStatement("UPDATE standin_records SET schema_version = ?")) {
                ps.setString(1, node.schema);
                ps.executeUpdate();
            }
            try (PreparedStatement ps = c.prepareStatement("UPDATE standin_meta SET v = ? WHERE k = ?")) {
                ps.setString(1, node.schema);
                ps.setString(2, "schema_version");
                ps.executeUpdate();
                ps.setString(1, node.version);
                ps.setString(2, "release_version");
                ps.executeUpdate();
            }
            recordMigration(c, st.schema, started);
            simulateWork();
            if (node.migrationFails) {
                throw new Looker.MigrationFailed("schema migration from " + st.schema + " to " + node.schema + " (release "
                        + node.version + ") failed; the transaction was rolled back, the application database is unchanged at schema "
                        + st.schema);
            }
            c.commit();
            committed = true;
        } finally {
            if (!committed) {
                c.rollback();
            }
            c.setAutoCommit(true);
        }
        Log.info("schema migration to " + node.schema + " committed");
    }

    private void recordMigration(Connection c, String from, Timestamp started) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO standin_migrations (from_schema, to_schema, release_version, node,"
                + " started_at, finished_at) VALUES (?, ?, ?, ?, ?, NOW(3))")) {
            ps.setString(1, from);
            ps.setString(2, node.schema);
            ps.setString(3, node.version);
            ps.setString(4, node.hostname);
            ps.setTimestamp(5, started);
            ps.executeUpdate();
        }
    }

    private void simulateWork() throws InterruptedException {
        long end = System.currentTimeMillis() + node.migrationSeconds * 1000L;
        long lastLog = System.currentTimeMillis();
        while (System.currentTimeMillis() < end) {
            Thread.sleep(Math.min(250, Math.max(1, end - System.currentTimeMillis())));
            if (System.currentTimeMillis() - lastLog >= 5000) {
                lastLog = System.currentTimeMillis();
                Log.info("schema migration in progress (" + (node.migrationSeconds - (end - lastLog) / 1000) + "/"
                        + node.migrationSeconds + " s)");
            }
        }
    }

    /** Registers this node, refusing a duplicate live hostname or a live node of another release. */
    private void register() throws Looker.Refusal, SQLException {
        try (Connection c = conn()) {
            String lock = lockName("node_registry");
            if (!getLock(c, lock, 30)) {
                throw new SQLException("could not take the node registry lock within 30 s");
            }
            try {
                String sql = "SELECT hostname, instance_id, version, state, node_port,"
                        + " TIMESTAMPDIFF(MICROSECOND, heartbeat_at, NOW(3)) / 1000000 AS age FROM standin_nodes"
                        + " WHERE state IN " + LIVE_STATES + " AND heartbeat_at > NOW(3) - INTERVAL ? SECOND";
                try (PreparedStatement ps = c.prepareStatement(sql)) {
                    ps.setInt(1, node.staleSeconds);
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            String host = rs.getString("hostname");
                            String version = rs.getString("version");
                            String age = String.format("%.1f", rs.getDouble("age"));
                            if (host.equals(node.hostname)) {
                                NodeLink.Probe p = NodeLink.probe(host, rs.getInt("node_port"), "node", node.hostname, null, 2000);
                                if (rs.getString("instance_id").equals(p.instance)) {
                                    throw new Looker.Refusal("hostname " + host + " is already registered by a live node (release "
                                            + version + ", heartbeat " + age + " s ago): -H/--hostname must be unique per node");
                                }
                            } else if (!version.equals(node.version)) {
                                throw new Looker.Refusal("a live node of another release is registered in the application database: "
                                        + host + " runs " + version + " (state " + rs.getString("state") + ", heartbeat " + age
                                        + " s ago) but this node is " + node.version
                                        + ". Never run two Looker versions against one application database: stop every node of the"
                                        + " other release first");
                            }
                        }
                    }
                }
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO standin_nodes (hostname, instance_id, version, web_port,"
                        + " api_port, node_port, queue_port, state, pid, started_at, heartbeat_at, stopped_at)"
                        + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NOW(3), NOW(3), NULL) ON DUPLICATE KEY UPDATE"
                        + " instance_id = VALUES(instance_id), version = VALUES(version), web_port = VALUES(web_port),"
                        + " api_port = VALUES(api_port), node_port = VALUES(node_port), queue_port = VALUES(queue_port),"
                        + " state = VALUES(state), pid = VALUES(pid), started_at = NOW(3), heartbeat_at = NOW(3), stopped_at = NULL")) {
                    ps.setString(1, node.hostname);
                    ps.setString(2, node.instanceId);
                    ps.setString(3, node.version);
                    ps.setInt(4, node.opts.webPort);
                    ps.setInt(5, node.opts.apiPort);
                    ps.setInt(6, node.opts.nodePort);
                    ps.setInt(7, node.opts.queuePort);
                    ps.setString(8, node.state());
                    ps.setLong(9, ProcessHandle.current().pid());
                    ps.executeUpdate();
                }
                registered = true;
                Log.info("registered node " + node.hostname + " (release " + node.version + ") in the application database");
            } finally {
                releaseLock(c, lock);
            }
        }
        node.onRegistered();
    }

    private void heartbeatNow() {
        if (registered) {
            heartbeat();
        }
    }

    /** Called every few seconds: refreshes this node's heartbeat and state; logs outages and recoveries. */
    void heartbeat() {
        try (Connection c = conn();
             PreparedStatement ps = c.prepareStatement("UPDATE standin_nodes SET heartbeat_at = NOW(3), state = ?"
                     + " WHERE hostname = ? AND instance_id = ?")) {
            ps.setString(1, node.state());
            ps.setString(2, node.hostname);
            ps.setString(3, node.instanceId);
            if (ps.executeUpdate() == 0) {
                Log.warn("this node's registry row was taken over or removed; not heartbeating it");
            }
            if (!reachable) {
                Log.info("application database reachable again");
            }
            reachable = true;
        } catch (SQLException e) {
            if (reachable) {
                Log.warn("application database unreachable (heartbeat): " + Util.brief(e) + "; retrying");
            }
            reachable = false;
        }
    }

    void markStopped() {
        try (Connection c = cfg.connect(3000, 5000);
             PreparedStatement ps = c.prepareStatement("UPDATE standin_nodes SET state = 'stopped', stopped_at = NOW(3),"
                     + " heartbeat_at = NOW(3) WHERE hostname = ? AND instance_id = ?")) {
            ps.setString(1, node.hostname);
            ps.setString(2, node.instanceId);
            ps.executeUpdate();
            Log.info("marked node " + node.hostname + " stopped in the application database");
        } catch (SQLException e) {
            Log.warn("could not mark the node stopped in the application database: " + Util.brief(e));
        }
    }

    /** Other nodes with a fresh heartbeat. */
    List<Map<String, Object>> livePeers() throws SQLException {
        List<Map<String, Object>> out = new ArrayList<>();
        try (Connection c = cfg.connect(3000, 5000);
             PreparedStatement ps = c.prepareStatement("SELECT hostname, version, state, node_port, queue_port, web_port, api_port,"
                     + " TIMESTAMPDIFF(MICROSECOND, heartbeat_at, NOW(3)) / 1000000 AS age FROM standin_nodes WHERE hostname <> ?"
                     + " AND state IN " + LIVE_STATES + " AND heartbeat_at > NOW(3) - INTERVAL ? SECOND ORDER BY hostname")) {
            ps.setString(1, node.hostname);
            ps.setInt(2, node.staleSeconds);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(Json.obj("hostname", rs.getString("hostname"), "version", rs.getString("version"),
                            "state", rs.getString("state"), "node_port", rs.getInt("node_port"), "queue_port", rs.getInt("queue_port"),
                            "web_port", rs.getInt("web_port"), "api_port", rs.getInt("api_port"),
                            "heartbeat_age_seconds", rs.getDouble("age")));
                }
            }
        }
        return out;
    }

    @Override
    public Map<String, Object> createRecord(String uid, String payload) throws SQLException {
        try (Connection c = conn()) {
            c.setAutoCommit(false);
            boolean created;
            try (PreparedStatement ps = c.prepareStatement("INSERT IGNORE INTO standin_records (uid, payload, node, created_at,"
                    + " schema_version) VALUES (?, ?, ?, NOW(3), ?)")) {
                ps.setString(1, uid);
                ps.setString(2, payload);
                ps.setString(3, node.hostname);
                ps.setString(4, node.schema);
                created = ps.executeUpdate() == 1;
            }
            Map<String, Object> r = null;
            try (PreparedStatement ps = c.prepareStatement("SELECT id, uid, payload, node, created_at, schema_version"
                    + " FROM standin_records WHERE uid = ?")) {
                ps.setString(1, uid);
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next()) {
                        r = row(rs);
                    }
                }
            }
            c.commit();
            if (r == null) {
                throw new SQLException("record " + uid + " not found after insert");
            }
            r.put("created", created);
            return r;
        }
    }

    private static Map<String, Object> row(ResultSet rs) throws SQLException {
        return Json.obj("id", rs.getLong("id"), "uid", rs.getString("uid"), "payload", rs.getString("payload"),
                "node", rs.getString("node"), "created_at", String.valueOf(rs.getTimestamp("created_at")),
                "schema_version", rs.getString("schema_version"));
    }

    @Override
    public Map<String, Object> listRecords(long afterId, int limit) throws SQLException {
        try (Connection c = conn()) {
            long count;
            try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT COUNT(*) FROM standin_records")) {
                rs.next();
                count = rs.getLong(1);
            }
            List<Object> out = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT id, uid, payload, node, created_at, schema_version"
                    + " FROM standin_records WHERE id > ? ORDER BY id LIMIT ?")) {
                ps.setLong(1, afterId);
                ps.setInt(2, limit);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        out.add(row(rs));
                    }
                }
            }
            return Json.obj("count", count, "records", out);
        }
    }

    /** The embedded store's records, inside migrate_internal_data's transaction. */
    private void insertImported(Connection c, List<Map<String, Object>> records) throws SQLException {
        if (records.isEmpty()) {
            return;
        }
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO standin_records (uid, payload, node, origin, created_at,"
                + " schema_version) VALUES (?, ?, ?, 'embedded', ?, ?)")) {
            for (Map<String, Object> r : records) {
                ps.setString(1, String.valueOf(r.get("uid")));
                ps.setString(2, (String) r.get("payload"));
                ps.setString(3, String.valueOf(r.get("node")));
                Timestamp ts;
                try {
                    ts = Timestamp.from(OffsetDateTime.parse(String.valueOf(r.get("created_at"))).toInstant());
                } catch (RuntimeException e) {
                    ts = new Timestamp(System.currentTimeMillis());
                }
                ps.setTimestamp(4, ts);
                ps.setString(5, node.schema);
                ps.executeUpdate();
            }
        }
    }

    /** One row per client address: INSERT ... ON DUPLICATE KEY UPDATE, then read back. */
    @Override
    public long touchSession(String client, String host) throws SQLException {
        try (Connection c = cfg.connect(5000, 30000)) {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO standin_sessions (client, node, hits, first_seen, last_seen)"
                    + " VALUES (?, ?, 1, NOW(3), NOW(3)) ON DUPLICATE KEY UPDATE hits = hits + 1, node = VALUES(node),"
                    + " last_seen = NOW(3)")) {
                ps.setString(1, client);
                ps.setString(2, host);
                ps.executeUpdate();
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT hits FROM standin_sessions WHERE client = ?")) {
                ps.setString(1, client);
                try (ResultSet rs = ps.executeQuery()) {
                    if (!rs.next()) {
                        throw new SQLException("session of " + client + " not found after writing it");
                    }
                    return rs.getLong(1);
                }
            }
        }
    }

    @Override
    public void schedulerRun(String host) throws SQLException {
        try (Connection c = conn();
             PreparedStatement ps = c.prepareStatement("INSERT INTO standin_scheduler_runs (node, ran_at) VALUES (?, NOW(3))")) {
            ps.setString(1, host);
            ps.executeUpdate();
        }
    }

    @Override
    public Map<String, Object> health() {
        return check(cfg, "mysql");
    }

    /** Connects and reads the schema version (or just SELECT 1 for a database without the stand-in's schema). */
    static Map<String, Object> check(DbConfig db, String kind) {
        long t0 = System.nanoTime();
        try (Connection c = db.connect(3000, 5000); Statement s = c.createStatement()) {
            String schema = null;
            try (ResultSet rs = s.executeQuery("SELECT v FROM standin_meta WHERE k = 'schema_version'")) {
                if (rs.next()) {
                    schema = rs.getString(1);
                }
            } catch (SQLException e) {
                try (ResultSet rs = s.executeQuery("SELECT 1")) {
                    rs.next();
                }
            }
            return Json.obj("status", "ok", "kind", kind, "host", db.host, "port", db.port, "database", db.database,
                    "schema_version", schema, "latency_ms", (System.nanoTime() - t0) / 1000000);
        } catch (SQLException e) {
            return Json.obj("status", "error", "kind", kind, "host", db.host, "port", db.port, "database", db.database,
                    "error", Util.brief(e));
        }
    }
}
