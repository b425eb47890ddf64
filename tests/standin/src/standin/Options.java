package standin;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The command line of looker.jar: a command (start, migrate_internal_data FILE,
 * migrate_db_to_looker_version VERSION) and Looker's flags.
 */
final class Options {
    /** Thrown for a command line that must be refused; the message says what is wrong. */
    static final class UsageError extends Exception {
        private static final long serialVersionUID = 1L;

        UsageError(String msg) {
            super(msg);
        }
    }

    static final String COMMANDS = "'start', 'migrate_internal_data FILE' or 'migrate_db_to_looker_version VERSION'";
    private static final Map<String, String> VALUE_FLAGS = new HashMap<>();
    private static final Set<String> BOOLEAN_FLAGS = Set.of("--clustered", "--no-daemonize", "--apply-db-migrations",
            "--no-log-to-file");

    static {
        String[][] names = {
            {"-H", "--hostname"}, {"-n", "--node-to-node-port"}, {"-q", "--queue-broker-port"}, {"-p", "--port"},
            {"--core-port"}, {"--monitoring-port"}, {"-d", "--internal-db-creds"}, {"--shared-storage-dir"},
            {"--scheduler-threads"}, {"--concurrent-render-jobs"}, {"--ssl-provided-externally-by"},
            {"--ssl-keystore"}, {"--ssl-keystore-pass-file"}, {"--internal-analytics-connection-file"}, {"--log-format"},
        };
        for (String[] group : names) {
            String canonical = group[group.length - 1];
            for (String n : group) {
                VALUE_FLAGS.put(n, canonical);
            }
        }
    }

    String command;
    final List<String> positionals = new ArrayList<>();
    final List<String> rawArgs = new ArrayList<>();
    boolean clustered;
    boolean noDaemonize;
    boolean applyDbMigrations;
    boolean noLogToFile;
    String hostname;
    int nodePort = 1551;
    int queuePort = 61616;
    int webPort = 9999;
    int apiPort = 19999;
    int monitoringPort = 1552;
    String dbCredsFile;
    String sharedStorageDir;
    int schedulerThreads = 10;
    int renderJobs = 2;
    String sslExternal;
    String sslKeystore;
    String sslKeystorePassFile;
    String analyticsFile;
    boolean jsonLog;

    static Options parse(String[] args) throws UsageError {
        Options o = new Options();
        o.rawArgs.addAll(List.of(args));
        for (int k = 0; k < args.length; k++) {
            String a = args[k];
            if (!a.startsWith("-") || a.equals("-")) {
                if (o.command == null) {
                    o.command = a;
                } else {
                    o.positionals.add(a);
                }
                continue;
            }
            String name = a;
            String value = null;
            int eq = a.indexOf('=');
            if (eq > 0) {
                name = a.substring(0, eq);
                value = a.substring(eq + 1);
            }
            if (BOOLEAN_FLAGS.contains(name)) {
                if (value != null) {
                    throw new UsageError(name + " takes no value (got '" + a + "')");
                }
                o.setBoolean(name);
                continue;
            }
            String canonical = VALUE_FLAGS.get(name);
            if (canonical == null) {
                throw new UsageError("unknown option '" + name + "'");
            }
            if (value == null) {
                if (k + 1 >= args.length) {
                    throw new UsageError(name + " needs a value");
                }
                value = args[++k];
            }
            o.setValue(canonical, name, value);
        }
        if (o.command == null) {
            throw new UsageError("no command given (expected " + COMMANDS + ")");
        }
        o.checkCommand();
        return o;
    }

    private void setBoolean(String name) {
        switch (name) {
            case "--clustered": clustered = true; break;
            case "--no-daemonize": noDaemonize = true; break;
            case "--no-log-to-file": noLogToFile = true; break;
            default: applyDbMigrations = true;
        }
    }

    private void setValue(String canonical, String given, String value) throws UsageError {
        switch (canonical) {
            case "--hostname": hostname = nonEmpty(given, value); break;
            case "--node-to-node-port": nodePort = port(given, value); break;
            case "--queue-broker-port": queuePort = port(given, value); break;
            case "--port": webPort = port(given, value); break;
            case "--core-port": apiPort = port(given, value); break;
            case "--monitoring-port": monitoringPort = port(given, value); break;
            case "--internal-db-creds": dbCredsFile = nonEmpty(given, value); break;
            case "--shared-storage-dir": sharedStorageDir = nonEmpty(given, value); break;
            case "--scheduler-threads": schedulerThreads = count(given, value); break;
            case "--concurrent-render-jobs": renderJobs = count(given, value); break;
            case "--ssl-provided-externally-by": sslExternal = nonEmpty(given, value); break;
            case "--ssl-keystore": sslKeystore = nonEmpty(given, value); break;
            case "--ssl-keystore-pass-file": sslKeystorePassFile = nonEmpty(given, value); break;
            case "--internal-analytics-connection-file": analyticsFile = nonEmpty(given, value); break;
            case "--log-format":
                if (!value.equals("json") && !value.equals("text")) {
                    throw new UsageError("--log-format must be 'json' (or 'text'), got '" + value + "'");
                }
                jsonLog = value.equals("json");
                break;
            default: throw new UsageError("unknown option '" + given + "'");
        }
    }

    private static String nonEmpty(String flag, String v) throws UsageError {
        if (v.isEmpty()) {
            throw new UsageError(flag + " needs a non-empty value");
        }
        return v;
    }

    private static int port(String flag, String v) throws UsageError {
        try {
            int p = Integer.parseInt(v);
            if (p >= 1 && p <= 65535) {
                return p;
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new UsageError(flag + " must be a TCP port (1-65535), got '" + v + "'");
    }

    private static int count(String flag, String v) throws UsageError {
        try {
            int n = Integer.parseInt(v);
            if (n >= 0) {
                return n;
            }
        } catch (NumberFormatException e) {
            // refused below
        }
        throw new UsageError(flag + " must be a whole number >= 0, got '" + v + "'");
    }

    private void checkCommand() throws UsageError {
        switch (command) {
            case "start":
                if (!positionals.isEmpty()) {
                    throw new UsageError("unexpected argument '" + positionals.get(0) + "' after 'start'");
                }
                break;
            case "migrate_internal_data":
                if (positionals.size() != 1) {
                    throw new UsageError("usage: java -jar looker.jar migrate_internal_data looker-db.yml");
                }
                break;
            case "migrate_db_to_looker_version":
                if (positionals.size() != 1) {
                    throw new UsageError("usage: java -jar looker.jar migrate_db_to_looker_version VERSION [-d looker-db.yml]"
                            + " [other start flags]");
                }
                break;
            default:
                throw new UsageError("unknown command '" + command + "' (expected " + COMMANDS + ")");
        }
    }

    /** Cluster flags that must come together (Looker's "required" startup flags). */
    void checkCluster(boolean haveDb, boolean haveMasterKey) throws UsageError {
        if (!clustered) {
            return;
        }
        List<String> missing = new ArrayList<>();
        if (hostname == null) {
            missing.add("-H/--hostname (the address other nodes use to reach this node)");
        }
        if (!haveDb) {
            missing.add("-d/--internal-db-creds FILE or the LOOKER_DB variable (the shared MySQL application database)");
        }
        if (sharedStorageDir == null) {
            missing.add("--shared-storage-dir DIR (the shared file system)");
        }
        if (!haveMasterKey) {
            missing.add("LKR_MASTER_KEY_ENV or LKR_MASTER_KEY_FILE (the encryption master key shared by every node)");
        }
        if (!missing.isEmpty()) {
            throw new UsageError("--clustered requires " + String.join("; ", missing));
        }
    }
}
