package standin.shared;

import java.io.IOException;
import java.io.InputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;

/**
 * Application database credentials, read from a looker-db.yml file (YAML, parsed by SnakeYAML) or
 * from the LOOKER_DB variable ("dialect=mysql&host=...&..."). The password never leaves this class
 * except towards the JDBC driver: toString() masks it.
 */
public final class DbConfig {
    public final String source;
    public final String dialect;
    public final String host;
    public final int port;
    public final String username;
    private final String password;
    public final String database;
    public final boolean ssl;
    public final boolean verifySsl;

    private DbConfig(String source, Map<String, String> kv) {
        this.source = source;
        this.dialect = kv.getOrDefault("dialect", "");
        if (!"mysql".equals(dialect)) {
            throw new IllegalArgumentException(source + ": dialect '" + dialect
                    + "' is not supported (the application database must be 'dialect: mysql')");
        }
        for (String k : new String[] {"host", "username", "database"}) {
            if (kv.getOrDefault(k, "").isEmpty()) {
                throw new IllegalArgumentException(source + ": '" + k + "' is missing");
            }
        }
        this.host = kv.get("host");
        this.username = kv.get("username");
        this.password = kv.getOrDefault("password", "");
        this.database = kv.get("database");
        try {
            this.port = Integer.parseInt(kv.getOrDefault("port", "3306"));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(source + ": 'port' must be a number");
        }
        this.ssl = "true".equalsIgnoreCase(kv.getOrDefault("ssl", "false"));
        this.verifySsl = "true".equalsIgnoreCase(kv.getOrDefault("verify_ssl", "false"));
    }

    /**
     * Reads looker-db.yml with a YAML parser, SnakeYAML (what Looker, a JRuby application, reads YAML
     * with), safe constructors only: any quoting style and escape, comments, "---". The document must
     * be a mapping of keys to single values (strings, numbers or true/false).
     */
    public static DbConfig fromYaml(Path file) throws IOException {
        Object doc;
        try (InputStream in = Files.newInputStream(file)) {
            doc = new Yaml(new SafeConstructor(new LoaderOptions())).load(in);
        } catch (MarkedYAMLException e) {
            // Never e.getMessage(): its snippet of the offending line may hold the password.
            Mark m = e.getProblemMark();
            throw new IllegalArgumentException(file + ": not valid YAML"
                    + (m != null ? " at line " + (m.getLine() + 1) + ", column " + (m.getColumn() + 1) : "")
                    + ": " + (e.getContext() != null ? e.getContext() + ", " : "") + e.getProblem());
        } catch (YAMLException e) {
            throw new IllegalArgumentException(file + ": not valid YAML: "
                    + String.valueOf(e.getMessage()).lines().findFirst().orElse(""));
        }
        if (!(doc instanceof Map)) {
            throw new IllegalArgumentException(file + ": expected a mapping of 'key: value' lines (dialect, host, username,"
                    + " password, database, port), found " + (doc == null ? "an empty document" : "a " + kind(doc)));
        }
        Map<String, String> kv = new LinkedHashMap<>();
        for (Map.Entry<?, ?> e : ((Map<?, ?>) doc).entrySet()) {
            String key = String.valueOf(e.getKey());
            Object v = e.getValue();
            if (v == null) {
                continue;
            }
            if (!(v instanceof String || v instanceof Number || v instanceof Boolean)) {
                throw new IllegalArgumentException(file + ": '" + key + "' must be a single value (a string, a number or"
                        + " true/false), found a " + kind(v));
            }
            kv.put(key, String.valueOf(v));
        }
        return new DbConfig(file.toString(), kv);
    }

    private static String kind(Object o) {
        return o instanceof Map ? "mapping" : o instanceof List ? "list" : o.getClass().getSimpleName();
    }

    /** Reads LOOKER_DB: "dialect=mysql&host=...&username=...&password=...&database=...&port=3306". */
    public static DbConfig fromEnv(String value) {
        Map<String, String> kv = new LinkedHashMap<>();
        for (String part : value.split("&")) {
            if (part.isEmpty()) {
                continue;
            }
            int eq = part.indexOf('=');
            String k = eq < 0 ? part : part.substring(0, eq);
            String v = eq < 0 ? "" : part.substring(eq + 1);
            kv.put(URLDecoder.decode(k, StandardCharsets.UTF_8), URLDecoder.decode(v, StandardCharsets.UTF_8));
        }
        return new DbConfig("LOOKER_DB", kv);
    }

    public String jdbcUrl(int connectTimeoutMs, int socketTimeoutMs) {
        StringBuilder u = new StringBuilder("jdbc:mariadb://").append(host).append(':').append(port).append('/').append(database)
                .append("?connectTimeout=").append(connectTimeoutMs)
                .append("&socketTimeout=").append(socketTimeoutMs)
                .append("&allowPublicKeyRetrieval=true");
        if (ssl) {
            u.append("&useSsl=true");
            if (!verifySsl) {
                u.append("&trustServerCertificate=true");
            }
        }
        return u.toString();
    }

    public Connection connect() throws SQLException {
        return connect(5000, 120000);
    }

    public Connection connect(int connectTimeoutMs, int socketTimeoutMs) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", username);
        p.setProperty("password", password);
        return DriverManager.getConnection(jdbcUrl(connectTimeoutMs, socketTimeoutMs), p);
    }

    /** A description safe for logs: no password. */
    @Override
    public String toString() {
        return "mysql://" + username + "@" + host + ":" + port + "/" + database + (ssl ? " (TLS)" : "") + " from " + source;
    }
}
