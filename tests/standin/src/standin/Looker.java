package standin;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.BindException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.security.KeyStore;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

import standin.shared.DbConfig;
import standin.shared.Json;
import standin.shared.Log;
import standin.shared.Util;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * One node of the lookerops.cluster Looker stand-in: a test double that behaves like a Looker
 * node on the surfaces the collection's roles touch. It is not Looker.
 */
public final class Looker {
    /** A start-up that must be refused; the message says why and what to do. */
    static final class Refusal extends Exception {
        private static final long serialVersionUID = 1L;

        Refusal(String msg) {
            super(msg);
        }
    }

    /** A schema migration that failed (and was rolled back). */
    static final class MigrationFailed extends Exception {
        private static final long serialVersionUID = 1L;

        MigrationFailed(String msg) {
            super(msg);
        }
    }

    private static volatile Looker current;

    final Options opts;
    final String version;
    final String schema;
    final String buildId;
    final int startupSeconds;
    final int migrationSeconds;
    final boolean migrationFails;
    final int staleSeconds = Integer.getInteger("standin.node.stale.seconds", 10);
    final int heartbeatSeconds = Integer.getInteger("standin.heartbeat.seconds", 2);
    final int schedulerSeconds = Integer.getInteger("standin.scheduler.seconds", 5);
    final int dbWaitSeconds = Integer.getInteger("standin.db.wait.seconds", 60);
    final int stopTimeoutSeconds = Integer.getInteger("standin.stop.timeout.seconds", 60);
    final String instanceId = UUID.randomUUID().toString();
    final Path workDir = Paths.get("").toAbsolutePath();
    final String startedAt = OffsetDateTime.now(ZoneOffset.UTC).toString();
    String hostname;

    private volatile String state = "starting";
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final ScheduledExecutorService timers = Executors.newScheduledThreadPool(3, r -> {
        Thread t = new Thread(r, "timer");
        t.setDaemon(true);
        return t;
    });
    private final AtomicLong schedulerRuns = new AtomicLong();
    private volatile String lastSchedulerRun;
    private volatile String lastSchedulerError;
    private final Map<String, Boolean> peerSeen = new HashMap<>();
    private final List<String> ignoredSignals = new ArrayList<>();
    private Set<InetAddress> tlsTerminator = Set.of();
    private DbConfig db;
    private DbConfig analyticsDb;
    private AppDb appDb;
    private EmbeddedStore embedded;
    private Store store;
    private Web web;
    private NodeLink link;
    private boolean tls;
    private String chromium;
    private boolean logReady;

    private Looker(Options opts, Properties release) {
        this.opts = opts;
        this.version = release.getProperty("version");
        this.schema = Util.schemaOf(version);
        this.buildId = release.getProperty("build_id");
        this.startupSeconds = Integer.getInteger("standin.startup.seconds",
                Integer.parseInt(release.getProperty("startup_seconds", "0")));
        this.migrationSeconds = Integer.getInteger("standin.migration.seconds",
                Integer.parseInt(release.getProperty("migration_seconds", "0")));
        this.migrationFails = Boolean.parseBoolean(System.getProperty("standin.migration.fail",
                release.getProperty("migration_fail", "false")));
    }

    static Looker current() {
        return current;
    }

    /** Called by Main once both jars are known to match. */
    public static void main(String[] args, Properties release) {
        Options o;
        try {
            o = Options.parse(args);
        } catch (Options.UsageError e) {
            usage(e.getMessage());
            return;
        }
        Looker n = new Looker(o, release);
        current = n;
        int rc;
        switch (o.command) {
            case "start": rc = n.start(); break;
            case "migrate_internal_data": rc = n.migrateInternalData(); break;
            default: rc = n.migrateDbToLookerVersion();
        }
        System.exit(rc);
    }

    private static void usage(String msg) {
        System.err.println("ERROR: Looker stand-in: " + msg);
        System.err.println("usage: java [JAVAARGS] -jar looker.jar start [--no-daemonize] [--clustered -H HOST -d looker-db.yml"
                + " --shared-storage-dir DIR] [-p 9999] [--core-port 19999] [-n 1551] [-q 61616] [other Looker flags]");
        System.err.println("       java -jar looker.jar migrate_internal_data looker-db.yml");
        System.err.println("       java [JAVAARGS] -jar looker.jar migrate_db_to_looker_version VERSION [-d looker-db.yml] [other Looker flags]");
        System.exit(2);
    }

    // ---------------------------------------------------------------- state

    synchronized void setState(String s) {
        state = s;
    }

    String state() {
        return state;
    }

    boolean isServing() {
        return "running".equals(state);
    }

    boolean tls() {
        return tls;
    }

    /**
     * With --ssl-provided-externally-by=HOST, plain HTTP is answered only to connections whose source
     * is one of HOST's addresses (resolved at start-up); without the flag, everyone (over TLS).
     */
    boolean acceptsFrom(InetAddress source) {
        return opts.sslExternal == null || tlsTerminator.contains(source);
    }

    String tlsTerminatorDescription() {
        List<String> addrs = new ArrayList<>();
        for (InetAddress a : tlsTerminator) {
            addrs.add(a.getHostAddress());
        }
        return opts.sslExternal + " (" + String.join(", ", addrs) + ")";
    }

    Store store() {
        return store;
    }

    String clusterSecret() {
        return appDb == null ? null : appDb.secret();
    }

    Path storageRoot() {
        return opts.sharedStorageDir != null ? Paths.get(opts.sharedStorageDir).toAbsolutePath() : workDir;
    }

    Path modelsDir() {
        return storageRoot().resolve("models");
    }

    // ---------------------------------------------------------------- start-up

    private int start() {
        try {
            prepare();
            if (!opts.noDaemonize) {
                return daemonize();
            }
            return run();
        } catch (Options.UsageError e) {
            usage(e.getMessage());
            return 2;
        } catch (Refusal e) {
            return fail("refusing to start: " + e.getMessage());
        } catch (MigrationFailed e) {
            return fail("schema migration failed: " + e.getMessage());
        } catch (InterruptedException e) {
            return fail("interrupted during start-up");
        } catch (Exception e) {
            return fail("start-up failed: " + Util.brief(e));
        }
    }

    private int fail(String msg) {
        if (logReady) {
            Log.error(msg);
        }
        System.err.println("ERROR: Looker stand-in " + version + ": " + msg);
        setState("stopped");
        if (appDb != null && appDb.registered()) {
            appDb.markStopped();
        }
        if (web != null) {
            web.stop();
        }
        if (link != null) {
            link.close();
        }
        if (embedded != null) {
            embedded.close();
        }
        return 1;
    }

    /** Everything that can be checked before listening or touching the database. */
    private void prepare() throws Options.UsageError, Refusal, IOException {
        String lookerDb = System.getenv("LOOKER_DB");
        try {
            if (opts.dbCredsFile != null) {
                Path f = Paths.get(opts.dbCredsFile);
                if (!Files.isReadable(f)) {
                    throw new Refusal("-d " + opts.dbCredsFile + ": file not found or not readable");
                }
                db = DbConfig.fromYaml(f);
            } else if (lookerDb != null && !lookerDb.isEmpty()) {
                db = DbConfig.fromEnv(lookerDb);
            }
            if (opts.analyticsFile != null) {
                Path f = Paths.get(opts.analyticsFile);
                if (!Files.isReadable(f)) {
                    throw new Refusal("--internal-analytics-connection-file " + opts.analyticsFile + ": file not found or not readable");
                }
                analyticsDb = DbConfig.fromYaml(f);
            }
        } catch (IllegalArgumentException e) {
            throw new Refusal(e.getMessage());
        }
        byte[] key = masterKey();
        opts.checkCluster(db != null, key != null);
        if (opts.sharedStorageDir != null && !Files.isDirectory(Paths.get(opts.sharedStorageDir))) {
            throw new Refusal("--shared-storage-dir " + opts.sharedStorageDir + " does not exist or is not a directory"
                    + " (mount the shared file system first)");
        }
        if (opts.sslKeystore != null && !Files.isReadable(Paths.get(opts.sslKeystore))) {
            throw new Refusal("--ssl-keystore " + opts.sslKeystore + ": file not found or not readable");
        }
        if (opts.sslKeystore != null && opts.sslKeystorePassFile == null) {
            throw new Refusal("--ssl-keystore needs --ssl-keystore-pass-file (the keystore password)");
        }
        if (opts.sslExternal != null) {
            try {
                tlsTerminator = new LinkedHashSet<>(List.of(InetAddress.getAllByName(opts.sslExternal)));
            } catch (UnknownHostException e) {
                throw new Refusal("--ssl-provided-externally-by=" + opts.sslExternal + ": cannot resolve " + opts.sslExternal
                        + " (the load balancer that terminates TLS; plain HTTP is answered only to its addresses)");
            }
        }
        if (opts.hostname == null) {
            try {
                opts.hostname = InetAddress.getLocalHost().getHostName();
            } catch (IOException e) {
                opts.hostname = "localhost";
            }
        }
        hostname = opts.hostname;
        try {
            Log.init(opts.noLogToFile ? null : workDir.resolve("log").resolve("looker.log"), opts.jsonLog, hostname);
            logReady = true;
        } catch (IOException e) {
            throw new Refusal("cannot write the log " + workDir.resolve("log/looker.log") + ": " + Util.brief(e));
        }
    }

    /**
     * Without --no-daemonize, Looker goes to the background and the command returns at once (which is
     * why a systemd unit of Type=simple needs --no-daemonize). The stand-in starts itself again with
     * --no-daemonize, detached, its output appended to log/looker.out.
     */
    private int daemonize() throws IOException {
        String javaBin = ProcessHandle.current().info().command().orElse(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        List<String> cmd = new ArrayList<>();
        // The child starts once this JVM is gone, so that ports its JAVAARGS open (JMX...) are free again.
        cmd.add("/bin/sh");
        cmd.add("-c");
        cmd.add("sleep 1; exec \"$0\" \"$@\"");
        cmd.add(javaBin);
        cmd.addAll(java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments());
        try {
            cmd.add("-jar");
            cmd.add(Paths.get(Main.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString());
        } catch (java.net.URISyntaxException e) {
            throw new IOException(e);
        }
        cmd.addAll(opts.rawArgs);
        cmd.add("--no-daemonize");
        Path out = workDir.resolve("log").resolve("looker.out");
        Process child = new ProcessBuilder(cmd).redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .redirectOutput(ProcessBuilder.Redirect.appendTo(out.toFile())).redirectErrorStream(true).start();
        Log.info("Looker stand-in " + version + " started in the background (pid " + child.pid() + "; pass --no-daemonize to stay"
                + " in the foreground)");
        return 0;
    }

    private byte[] masterKey() throws Refusal {
        String env = System.getenv("LKR_MASTER_KEY_ENV");
        String file = System.getenv("LKR_MASTER_KEY_FILE");
        String raw;
        String source;
        if (env != null && !env.isEmpty()) {
            raw = env;
            source = "LKR_MASTER_KEY_ENV";
        } else if (file != null && !file.isEmpty()) {
            source = "LKR_MASTER_KEY_FILE (" + file + ")";
            try {
                raw = Files.readString(Paths.get(file), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new Refusal(source + " cannot be read: " + Util.brief(e));
            }
        } else {
            return null;
        }
        byte[] key;
        try {
            key = Base64.getDecoder().decode(raw.strip());
        } catch (IllegalArgumentException e) {
            throw new Refusal(source + " is not base64: generate a key with 'openssl rand -base64 32'");
        }
        if (key.length != 32) {
            throw new Refusal(source + " must be a base64-encoded 32-byte key (it holds " + key.length
                    + " bytes): generate one with 'openssl rand -base64 32'");
        }
        return key;
    }

    private int run() throws Exception {
        Log.info("lookerops.cluster Looker STAND-IN (a test double, not Looker) release " + version + " (build " + buildId
                + ") starting on " + hostname + ", pid " + ProcessHandle.current().pid() + ", Java " + System.getProperty("java.version"));
        Log.info("mode: " + (opts.clustered ? "clustered" : "single node") + "; database: "
                + (db != null ? db.toString() : "embedded store in " + workDir.resolve(".db")) + "; storage: " + storageRoot()
                + "; ports: web " + opts.webPort + ", api " + opts.apiPort + ", node-to-node " + opts.nodePort + ", queue " + opts.queuePort);
        chromium = findChromium();
        if (opts.renderJobs > 0) {
            if (chromium == null) {
                Log.warn("--concurrent-render-jobs " + opts.renderJobs + " but no Chromium binary (chromium on PATH or /usr/bin/chromium):"
                        + " rendering is unavailable");
            } else {
                Log.info("render: " + opts.renderJobs + " concurrent jobs with " + chromium);
            }
        }
        if (db == null) {
            embedded = new EmbeddedStore(workDir);
            if (!embedded.open(true, schema)) {
                embedded = null;
                throw new Refusal("the embedded database " + workDir.resolve(".db") + " is locked by another process (.db/looker.lck)");
            }
            store = embedded;
        }
        SSLContext ssl = sslContext();
        tls = ssl != null;
        web = new Web(this);
        link = new NodeLink(this);
        try {
            web.bind(ssl);
            link.bind(opts.nodePort, "node");
            link.bind(opts.queuePort, "queue");
        } catch (BindException e) {
            throw new Refusal("cannot listen on the ports (web " + opts.webPort + ", api " + opts.apiPort + ", node-to-node "
                    + opts.nodePort + ", queue " + opts.queuePort + "): " + Util.brief(e));
        }
        installSignalHandlers();
        web.start();
        if (opts.sslExternal != null) {
            Log.info("TLS is provided externally by " + tlsTerminatorDescription() + ": plain HTTP on the web and API ports,"
                    + " answered only to connections from those addresses");
        }
        simulateStartup();
        if (db != null) {
            appDb = new AppDb(db, this);
            store = appDb;
            appDb.waitForDatabase(dbWaitSeconds);
            appDb.startup(masterKey());
            timers.scheduleWithFixedDelay(this::monitorPeers, 1, 5, TimeUnit.SECONDS);
        }
        Files.createDirectories(modelsDir());
        if (opts.schedulerThreads > 0) {
            timers.scheduleWithFixedDelay(this::schedulerJob, schedulerSeconds, schedulerSeconds, TimeUnit.SECONDS);
        }
        setState("running");
        if (appDb != null) {
            appDb.heartbeat();
        }
        String scheme = tls ? "https" : "http";
        Log.info("Looker stand-in " + version + " is up: " + scheme + "://" + hostname + ":" + opts.webPort + " (web), " + scheme + "://"
                + hostname + ":" + opts.apiPort + " (api)" + (opts.sslExternal != null ? "; TLS provided externally by "
                + opts.sslExternal : ""));
        stopped.await();
        return 0;
    }

    /**
     * Looker takes minutes to start; the stand-in takes the configured start-up time (release.properties,
     * -Dstandin.startup.seconds), bound to its ports meanwhile, /alive answering 503 "starting".
     */
    private void simulateStartup() throws InterruptedException {
        if (startupSeconds <= 0) {
            return;
        }
        Log.info("starting up (stand-in start-up time " + startupSeconds + " s; /alive answers 503 meanwhile)");
        long end = System.currentTimeMillis() + startupSeconds * 1000L;
        long lastLog = System.currentTimeMillis();
        while (System.currentTimeMillis() < end && !stopping.get()) {
            Thread.sleep(Math.min(250, Math.max(1, end - System.currentTimeMillis())));
            if (System.currentTimeMillis() - lastLog >= 10000) {
                lastLog = System.currentTimeMillis();
                Log.info("still starting up (" + (startupSeconds - (end - lastLog) / 1000) + "/" + startupSeconds + " s)");
            }
        }
    }

    /** Called once the node row exists: heartbeats from now on (also while migrating). */
    void onRegistered() {
        timers.scheduleWithFixedDelay(() -> {
            if (!stopping.get()) {
                appDb.heartbeat();
            }
        }, heartbeatSeconds, heartbeatSeconds, TimeUnit.SECONDS);
    }

    private SSLContext sslContext() throws Refusal {
        if (opts.sslExternal != null) {
            return null;
        }
        try {
            Path ks;
            char[] pass;
            if (opts.sslKeystore != null) {
                ks = Paths.get(opts.sslKeystore);
                pass = Files.readAllLines(Paths.get(opts.sslKeystorePassFile), StandardCharsets.UTF_8).get(0).strip().toCharArray();
            } else {
                ks = workDir.resolve(".ssl").resolve("looker-self-signed.p12");
                pass = "looker-standin-self-signed".toCharArray();
                if (!Files.exists(ks)) {
                    generateSelfSigned(ks, new String(pass));
                }
            }
            KeyStore store = KeyStore.getInstance("PKCS12");
            try (InputStream in = new FileInputStream(ks.toFile())) {
                store.load(in, pass);
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(store, pass);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(kmf.getKeyManagers(), null, null);
            return ctx;
        } catch (Refusal e) {
            throw e;
        } catch (Exception e) {
            throw new Refusal("cannot set up TLS: " + Util.brief(e));
        }
    }

    private void generateSelfSigned(Path ks, String pass) throws Exception {
        Path keytool = Paths.get(System.getProperty("java.home"), "bin", "keytool");
        if (!Files.isExecutable(keytool)) {
            throw new Refusal("keytool not found in " + keytool.getParent() + ": cannot create the self-signed certificate"
                    + " (use --ssl-provided-externally-by or --ssl-keystore)");
        }
        Files.createDirectories(ks.getParent());
        Path tmp = ks.resolveSibling(ks.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Log.info("creating a self-signed certificate (CN=self-signed.looker.com) in " + ks);
        Process p = new ProcessBuilder(keytool.toString(), "-genkeypair", "-alias", "looker", "-keyalg", "RSA", "-keysize", "2048",
                "-validity", "3650", "-dname", "CN=self-signed.looker.com", "-ext", "SAN=dns:self-signed.looker.com",
                "-storetype", "PKCS12", "-keystore", tmp.toString(), "-storepass", pass, "-keypass", pass)
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            throw new Refusal("keytool could not create the self-signed certificate");
        }
        Files.move(tmp, ks, StandardCopyOption.ATOMIC_MOVE);
    }

    private static String findChromium() {
        String path = System.getenv("PATH");
        if (path != null) {
            for (String dir : path.split(File.pathSeparator)) {
                if (dir.isEmpty()) {
                    continue;
                }
                Path c = Paths.get(dir, "chromium");
                if (Files.isRegularFile(c) && Files.isExecutable(c)) {
                    return c.toString();
                }
            }
        }
        Path c = Paths.get("/usr/bin/chromium");
        return Files.isExecutable(c) ? c.toString() : null;
    }

    // ---------------------------------------------------------------- periodic jobs

    private void schedulerJob() {
        if (!isServing()) {
            return;
        }
        try {
            store.schedulerRun(hostname);
            schedulerRuns.incrementAndGet();
            lastSchedulerRun = OffsetDateTime.now(ZoneOffset.UTC).toString();
            lastSchedulerError = null;
        } catch (Exception e) {
            if (lastSchedulerError == null) {
                Log.warn("scheduler job failed: " + Util.brief(e));
            }
            lastSchedulerError = Util.brief(e);
        }
    }

    private void monitorPeers() {
        if (stopping.get() || appDb == null || appDb.secret() == null) {
            return;
        }
        try {
            for (Map<String, Object> peer : appDb.livePeers()) {
                String host = (String) peer.get("hostname");
                NodeLink.Probe n = NodeLink.probe(host, (Integer) peer.get("node_port"), "node", hostname, appDb.secret(), 2000);
                NodeLink.Probe q = NodeLink.probe(host, (Integer) peer.get("queue_port"), "queue", hostname, appDb.secret(), 2000);
                boolean ok = n.reachable && q.reachable;
                Boolean before;
                synchronized (peerSeen) {
                    before = peerSeen.put(host, ok);
                }
                if (before == null || before != ok) {
                    if (ok) {
                        Log.info("peer " + host + " (release " + peer.get("version") + ") reachable on node-to-node port " + peer.get("node_port")
                                + " and queue port " + peer.get("queue_port"));
                    } else {
                        Log.warn("peer " + host + " unreachable: node-to-node " + (n.reachable ? "ok" : n.error) + "; queue "
                                + (q.reachable ? "ok" : q.error));
                    }
                }
            }
        } catch (Exception e) {
            // the heartbeat logs database outages
        }
    }

    // ---------------------------------------------------------------- HTTP views

    Map<String, Object> whoami(String listener) {
        return Json.obj("standin", "lookerops.cluster Looker stand-in (not Looker)", "hostname", hostname, "version", version,
                "schema_version", schema, "state", state, "clustered", opts.clustered, "instance_id", instanceId,
                "pid", ProcessHandle.current().pid(), "started_at", startedAt, "listener", listener,
                "ports", Json.obj("web", opts.webPort, "api", opts.apiPort, "node_to_node", opts.nodePort, "queue_broker", opts.queuePort));
    }

    /** /availability's rule: serving, and every subsystem of the state view ok. */
    boolean healthy() {
        return Boolean.TRUE.equals(stateView().get("healthy"));
    }

    /** The test-only introspection of GET /standin/state (what /availability's status code sums up). */
    Map<String, Object> stateView() {
        boolean healthy = true;
        Map<String, Object> dbStatus = store == null ? Json.obj("status", "starting") : store.health();
        healthy &= "ok".equals(dbStatus.get("status"));
        Map<String, Object> storage = storageStatus();
        healthy &= "ok".equals(storage.get("status"));
        List<Object> peers = new ArrayList<>();
        if (appDb != null) {
            try {
                for (Map<String, Object> peer : appDb.livePeers()) {
                    String host = (String) peer.get("hostname");
                    int np = (Integer) peer.get("node_port");
                    int qp = (Integer) peer.get("queue_port");
                    NodeLink.Probe n = NodeLink.probe(host, np, "node", hostname, appDb.secret(), 2000);
                    NodeLink.Probe q = NodeLink.probe(host, qp, "queue", hostname, appDb.secret(), 2000);
                    healthy &= n.reachable && q.reachable;
                    peers.add(Json.obj("hostname", host, "version", peer.get("version"), "state", peer.get("state"),
                            "heartbeat_age_seconds", peer.get("heartbeat_age_seconds"),
                            "node_to_node", n.toJson(np), "queue_broker", q.toJson(qp)));
                }
            } catch (Exception e) {
                healthy = false;
            }
        }
        Map<String, Object> scheduler = Json.obj("threads", opts.schedulerThreads,
                "status", opts.schedulerThreads == 0 ? "disabled" : lastSchedulerError != null ? "error" : "ok",
                "runs", schedulerRuns.get(), "interval_seconds", schedulerSeconds, "last_run", lastSchedulerRun);
        if (lastSchedulerError != null) {
            scheduler.put("error", lastSchedulerError);
            healthy = false;
        }
        String renderStatus = opts.renderJobs == 0 ? "disabled" : chromium != null ? "ok" : "chromium missing";
        healthy &= opts.renderJobs == 0 || chromium != null;
        Map<String, Object> out = Json.obj("standin", "lookerops.cluster Looker stand-in (not Looker)",
                "hostname", hostname, "version", version, "state", state, "clustered", opts.clustered,
                "healthy", healthy && isServing(), "database", dbStatus, "shared_storage", storage, "peers", peers,
                "inbound_peers", link == null ? List.of() : link.inbound(), "scheduler", scheduler,
                "render", Json.obj("concurrent_jobs", opts.renderJobs, "status", renderStatus, "chromium", chromium),
                "pid", ProcessHandle.current().pid(), "ignored_signals", ignoredSignals);
        if (analyticsDb != null) {
            out.put("analytics_database", AppDb.check(analyticsDb, "mysql (read replica for System Activity)"));
        }
        return out;
    }

    private Map<String, Object> storageStatus() {
        Path root = storageRoot();
        try {
            Path probe = Files.createTempFile(root, ".standin-probe-" + hostname + "-", ".tmp");
            Files.write(probe, instanceId.getBytes(StandardCharsets.UTF_8));
            Files.delete(probe);
            return Json.obj("status", "ok", "path", root.toString(), "shared", opts.sharedStorageDir != null, "writable", true);
        } catch (IOException | RuntimeException e) {
            return Json.obj("status", "error", "path", root.toString(), "shared", opts.sharedStorageDir != null, "writable", false,
                    "error", Util.brief(e));
        }
    }

    // ---------------------------------------------------------------- shutdown

    /**
     * SIGTERM and SIGINT stop the node cleanly. A signal that the process which started this JVM
     * ignored (a background job of a non-interactive shell ignores SIGINT and SIGQUIT; nohup ignores
     * SIGHUP) stays ignored: the JVM refuses to install a handler for it and Signal.handle answers
     * SIG_IGN. Such a node would silently survive that signal, so say so loudly.
     */
    private void installSignalHandlers() {
        for (String sig : new String[] {"TERM", "INT"}) {
            SignalHandler before = Signal.handle(new Signal(sig), s -> shutdown("SIG" + sig));
            if (before == SignalHandler.SIG_IGN) {
                ignoredSignals.add("SIG" + sig);
            }
        }
        if (!ignoredSignals.isEmpty()) {
            Log.warn(String.join(" and ", ignoredSignals) + " ignored: the process that started this node ignores "
                    + (ignoredSignals.size() > 1 ? "them" : "it") + " (a background job of a non-interactive shell ignores SIGINT),"
                    + " and a JVM cannot take an ignored signal back, so " + String.join(" and ", ignoredSignals)
                    + " will NOT stop this node; " + (ignoredSignals.contains("SIGTERM") ? "only SIGKILL will"
                    : "stop it with SIGTERM") + " (systemd starts services with default signal handling)");
        }
    }

    private void shutdown(String why) {
        if (!stopping.compareAndSet(false, true)) {
            return;
        }
        String was = state;
        setState("stopping");
        startStopWatchdog();
        Log.info(why + " received: stopping the Looker stand-in (state was " + was + ")");
        if ("migrating".equals(was)) {
            Log.warn("stopped during a schema migration: the database rolls the migration's transaction back");
        }
        timers.shutdownNow();
        if (web != null) {
            web.stop();
        }
        if (link != null) {
            link.close();
        }
        if (appDb != null && appDb.registered()) {
            appDb.markStopped();
        }
        if (embedded != null) {
            embedded.close();
        }
        setState("stopped");
        Log.info("Looker stand-in stopped cleanly");
        System.exit(0);
    }

    /**
     * Every step of a clean stop is bounded (database calls have timeouts), but should one ever hang,
     * the node does not linger: it logs where every thread is and exits with 1, which tests notice.
     */
    private void startStopWatchdog() {
        Thread t = new Thread(() -> {
            try {
                Thread.sleep(stopTimeoutSeconds * 1000L);
            } catch (InterruptedException e) {
                return;
            }
            StringBuilder dump = new StringBuilder();
            for (Map.Entry<Thread, StackTraceElement[]> e : Thread.getAllStackTraces().entrySet()) {
                dump.append("\n  thread ").append(e.getKey().getName()).append(" (").append(e.getKey().getState()).append(')');
                for (StackTraceElement frame : e.getValue()) {
                    dump.append("\n    at ").append(frame);
                }
            }
            Log.error("the clean stop did not finish within " + stopTimeoutSeconds + " s (standin.stop.timeout.seconds);"
                    + " halting with exit code 1. Threads:" + dump);
            Runtime.getRuntime().halt(1);
        }, "stop-watchdog");
        t.setDaemon(true);
        t.start();
    }

    // ---------------------------------------------------------------- migrate_internal_data

    private int migrateInternalData() {
        Path yml = Paths.get(opts.positionals.get(0));
        try {
            if (!Files.isReadable(yml)) {
                throw new Refusal(yml + ": file not found or not readable");
            }
            db = DbConfig.fromYaml(yml);
            hostname = opts.hostname != null ? opts.hostname : InetAddress.getLocalHost().getHostName();
            embedded = new EmbeddedStore(workDir);
            if (!Files.exists(embedded.script)) {
                embedded = null;
                throw new Refusal("no embedded database to migrate: " + workDir.resolve(".db/looker.script") + " not found"
                        + " (run migrate_internal_data in the Looker directory)");
            }
            if (!embedded.open(false, schema)) {
                embedded = null;
                throw new Refusal("the embedded database is in use (.db/looker.lck is locked): stop Looker before migrating");
            }
            Log.init(workDir.resolve("log").resolve("looker.log"), opts.jsonLog, hostname);
            logReady = true;
            Log.info("lookerops.cluster Looker STAND-IN release " + version + ": migrate_internal_data from " + embedded.script
                    + " to " + db);
            List<Map<String, Object>> records = embedded.records();
            appDb = new AppDb(db, this);
            appDb.waitForDatabase(Math.min(dbWaitSeconds, 30));
            int inserted = appDb.importInto(records, masterKey());
            String msg = "migrate_internal_data: copied " + inserted + " records from .db/looker.script into the empty database "
                    + appDb.where() + " (" + db + ")";
            Log.info(msg);
            System.out.println(msg);
            embedded.close();
            return 0;
        } catch (Refusal e) {
            return fail("migrate_internal_data refused: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            return fail("migrate_internal_data refused: " + e.getMessage());
        } catch (MigrationFailed e) {
            return fail("schema migration failed: " + e.getMessage());
        } catch (Exception e) {
            return fail("migrate_internal_data failed: " + Util.brief(e));
        }
    }

    // ---------------------------------------------------------------- migrate_db_to_looker_version

    /**
     * Google's reference deployment migrates the schema before rolling the nodes:
     * java -jar looker.jar migrate_db_to_looker_version VERSION [LOOKERARGS]. This jar migrates the
     * application database (-d or LOOKER_DB) to its own release's schema and exits; another VERSION and
     * a downgrade are refused.
     */
    private int migrateDbToLookerVersion() {
        String wanted = opts.positionals.get(0);
        try {
            if (!wanted.matches("[0-9]+\\.[0-9]+(\\.[0-9]+)?")) {
                throw new Options.UsageError("migrate_db_to_looker_version: VERSION must look like 25.8 or 25.8.3, got '" + wanted + "'");
            }
            prepare();
            Log.info("lookerops.cluster Looker STAND-IN release " + version + ": migrate_db_to_looker_version " + wanted);
            if (!Util.schemaOf(wanted).equals(schema)) {
                throw new Refusal("this looker.jar is release " + version + ": it migrates the application database to " + version
                        + " (schema " + schema + ") only, not to " + wanted + "; run the looker.jar of release " + wanted);
            }
            if (db == null) {
                throw new Refusal("no application database given: -d looker-db.yml or the LOOKER_DB variable");
            }
            appDb = new AppDb(db, this);
            appDb.waitForDatabase(Math.min(dbWaitSeconds, 30));
            List<String> others = appDb.liveNodesOfOtherReleases();
            if (!others.isEmpty()) {
                Log.warn("live nodes of another release are registered: " + String.join(", ", others)
                        + "; they must not serve once the schema is migrated (stop them)");
            }
            boolean migrated = appDb.migrateSchema(masterKey());
            String msg = migrated
                    ? "migrate_db_to_looker_version: application database " + appDb.where() + " migrated to " + version + " (schema "
                        + schema + ")"
                    : "migrate_db_to_looker_version: application database " + appDb.where() + " is already at schema " + schema
                        + ": nothing to do";
            Log.info(msg);
            System.out.println(msg);
            return 0;
        } catch (Options.UsageError e) {
            usage(e.getMessage());
            return 2;
        } catch (Refusal e) {
            return fail("migrate_db_to_looker_version refused: " + e.getMessage());
        } catch (MigrationFailed e) {
            return fail("schema migration failed: " + e.getMessage());
        } catch (InterruptedException e) {
            return fail("interrupted during the schema migration");
        } catch (Exception e) {
            return fail("migrate_db_to_looker_version failed: " + Util.brief(e));
        }
    }
}
