package standin.shared;

import java.io.IOException;
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

/**
 * Application database credentials, read from a looker-db.yml file (flat "key: value" YAML) or
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

    /** Reads a flat YAML file of "key: value" lines (comments, quotes and "---" allowed). */
    public static DbConfig fromYaml(Path file) throws IOException {
        Map<String, String> kv = new LinkedHashMap<>();
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        int n = 0;
        for (String raw : lines) {
            n++;
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#") || line.equals("---") || line.equals("...")) {
                continue;
            }
            int c = line.indexOf(':');
            if (c <= 0) {
                throw new IllegalArgumentException(file + " line " + n + ": expected 'key: value'");
            }
            String key = line.substring(0, c).strip();
            String value = line.substring(c + 1).strip();
            if (value.length() >= 2 && (value.startsWith("\"") && value.endsWith("\"")
                    || value.startsWith("'") && value.endsWith("'"))) {
                value = value.substring(1, value.length() - 1);
            } else {
                int hash = value.indexOf(" #");
                if (hash >= 0) {
                    value = value.substring(0, hash).strip();
                }
            }
            kv.put(key, value);
        }
        return new DbConfig(file.toString(), kv);
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
