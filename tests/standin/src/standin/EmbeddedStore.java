package standin;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import standin.shared.Json;

/**
 * The single-node embedded store, standing in for Looker's HyperSQL files: .db/looker.script in
 * the working directory (one JSON object per line, appended per write: fsynced for records, not
 * for the session line of every request) and .db/looker.lck, locked while a node uses the store.
 */
final class EmbeddedStore implements Store {
    static final String HEADER = "-- lookerops.cluster Looker stand-in embedded store (stands in for HyperSQL's .db/looker.script; not Looker)";

    final Path dir;
    final Path script;
    private final Path lockPath;
    private FileChannel lockChannel;
    private FileLock lock;
    private final Map<String, Map<String, Object>> byUid = new LinkedHashMap<>();
    private final List<Map<String, Object>> records = new ArrayList<>();
    private final Map<String, Object> meta = new LinkedHashMap<>();
    private final Map<String, Map<String, Object>> sessions = new LinkedHashMap<>();
    private long nextId = 1;
    private long schedulerRuns;

    EmbeddedStore(Path workDir) {
        this.dir = workDir.resolve(".db");
        this.script = dir.resolve("looker.script");
        this.lockPath = dir.resolve("looker.lck");
    }

    /** Locks and loads the store; false when another process holds the lock. */
    synchronized boolean open(boolean create, String schema) throws IOException {
        Files.createDirectories(dir);
        lockChannel = FileChannel.open(lockPath, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        try {
            lock = lockChannel.tryLock();
        } catch (OverlappingFileLockException e) {
            lock = null;
        }
        if (lock == null) {
            lockChannel.close();
            return false;
        }
        load();
        if (create) {
            meta.putIfAbsent("schema_version", schema);
            compact();
        }
        return true;
    }

    synchronized void close() {
        try {
            if (lock != null) {
                lock.release();
            }
            if (lockChannel != null) {
                lockChannel.close();
            }
        } catch (IOException e) {
            // the lock goes with the process anyway
        }
    }

    private void load() throws IOException {
        if (!Files.exists(script)) {
            return;
        }
        for (String line : Files.readAllLines(script, StandardCharsets.UTF_8)) {
            if (line.isBlank() || line.startsWith("--")) {
                continue;
            }
            Map<String, Object> row = Json.parseObject(line);
            String type = String.valueOf(row.get("type"));
            if (type.equals("record")) {
                addLoaded(row);
            } else if (type.equals("meta")) {
                meta.put(String.valueOf(row.get("k")), row.get("v"));
            } else if (type.equals("scheduler_run")) {
                schedulerRuns++;
            } else if (type.equals("session")) {
                row.remove("type");
                sessions.put(String.valueOf(row.get("client")), row);
            }
        }
        Object runs = meta.get("scheduler_runs");
        if (runs instanceof Number) {
            schedulerRuns += ((Number) runs).longValue();
        }
    }

    private void addLoaded(Map<String, Object> row) {
        row.remove("type");
        records.add(row);
        byUid.put(String.valueOf(row.get("uid")), row);
        nextId = Math.max(nextId, ((Number) row.get("id")).longValue() + 1);
    }

    /** Rewrites the script (header, meta, records) atomically; folds scheduler runs into one counter. */
    private void compact() throws IOException {
        meta.put("scheduler_runs", schedulerRuns);
        StringBuilder b = new StringBuilder(HEADER).append('\n');
        for (Map.Entry<String, Object> e : meta.entrySet()) {
            b.append(Json.write(Json.obj("type", "meta", "k", e.getKey(), "v", e.getValue()))).append('\n');
        }
        for (Map<String, Object> r : records) {
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("type", "record");
            line.putAll(r);
            b.append(Json.write(line)).append('\n');
        }
        for (Map<String, Object> session : sessions.values()) {
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("type", "session");
            line.putAll(session);
            b.append(Json.write(line)).append('\n');
        }
        Path tmp = dir.resolve("looker.script.new");
        try (FileOutputStream out = new FileOutputStream(tmp.toFile())) {
            out.write(b.toString().getBytes(StandardCharsets.UTF_8));
            out.getFD().sync();
        }
        Files.move(tmp, script, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private void append(Map<String, Object> line) throws IOException {
        append(line, true);
    }

    /** Appends one line; fsynced for records and scheduler runs, not for the session of each request. */
    private void append(Map<String, Object> line, boolean sync) throws IOException {
        try (FileOutputStream out = new FileOutputStream(script.toFile(), true)) {
            out.write((Json.write(line) + "\n").getBytes(StandardCharsets.UTF_8));
            if (sync) {
                out.getFD().sync();
            }
        }
    }

    List<Map<String, Object>> records() {
        return new ArrayList<>(records);
    }

    @Override
    public synchronized Map<String, Object> createRecord(String uid, String payload) throws IOException {
        Map<String, Object> existing = byUid.get(uid);
        if (existing != null) {
            Map<String, Object> r = new LinkedHashMap<>(existing);
            r.put("created", false);
            return r;
        }
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("id", nextId);
        r.put("uid", uid);
        r.put("payload", payload);
        r.put("node", Looker.current().hostname);
        r.put("created_at", OffsetDateTime.now(ZoneOffset.UTC).toString());
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("type", "record");
        line.putAll(r);
        append(line);
        nextId++;
        records.add(r);
        byUid.put(uid, r);
        Map<String, Object> out = new LinkedHashMap<>(r);
        out.put("created", true);
        return out;
    }

    @Override
    public synchronized Map<String, Object> listRecords(long afterId, int limit) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Map<String, Object> r : records) {
            if (((Number) r.get("id")).longValue() > afterId && out.size() < limit) {
                out.add(r);
            }
        }
        return Json.obj("count", records.size(), "records", out);
    }

    /** Appends the client's session line (the latest line of a client wins when loading); returns its hits. */
    @Override
    public synchronized long touchSession(String client, String node) throws IOException {
        Map<String, Object> before = sessions.get(client);
        long hits = before == null ? 1 : ((Number) before.get("hits")).longValue() + 1;
        String now = OffsetDateTime.now(ZoneOffset.UTC).toString();
        Map<String, Object> session = Json.obj("client", client, "node", node, "hits", hits,
                "first_seen", before == null ? now : before.get("first_seen"), "last_seen", now);
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("type", "session");
        line.putAll(session);
        append(line, false);
        sessions.put(client, session);
        return hits;
    }

    @Override
    public synchronized void schedulerRun(String node) throws IOException {
        append(Json.obj("type", "scheduler_run", "node", node, "at", OffsetDateTime.now(ZoneOffset.UTC).toString()));
        schedulerRuns++;
    }

    @Override
    public synchronized Map<String, Object> health() {
        boolean ok = Files.isWritable(script);
        return Json.obj("status", ok ? "ok" : "error", "kind", "embedded", "path", script.toString(),
                "records", records.size(), "sessions", sessions.size(), "schema_version", meta.get("schema_version"));
    }
}
