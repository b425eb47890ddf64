package standin;

import java.io.ByteArrayOutputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Pattern;

import javax.net.ssl.SSLContext;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;

import standin.shared.Json;
import standin.shared.Log;
import standin.shared.Util;

/**
 * The web (-p, 9999) and API (--core-port, 19999) listeners: HTTPS with the node's certificate,
 * or plain HTTP when TLS is provided externally (then only to the TLS terminator's addresses).
 * Both serve Looker's documented surfaces (/alive and /availability: status codes only;
 * /api/4.0/versions) and the stand-in's test-only helpers under /standin/ (see
 * tests/standin/README.md). Every request but /alive, /availability and /standin/state first
 * writes and reads the client's session row in the application database, as Looker does.
 */
final class Web {
    private static final Pattern MODEL_PATH = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*");
    private static final int MAX_BODY = 16 * 1024 * 1024;

    private final Looker node;
    private final Set<String> refusedSources = ConcurrentHashMap.newKeySet();
    /** Test-only holds (GET /standin/hold): released together by bumping the generation. */
    private final Object holds = new Object();
    private long holdGeneration;
    private HttpServer web;
    private HttpServer api;
    private final ExecutorService pool = Executors.newFixedThreadPool(16, r -> {
        Thread t = new Thread(r, "http");
        t.setDaemon(true);
        return t;
    });

    Web(Looker node) {
        this.node = node;
    }

    void bind(SSLContext tls) throws IOException {
        web = create(node.opts.webPort, tls, "web");
        api = create(node.opts.apiPort, tls, "api");
    }

    private HttpServer create(int port, SSLContext tls, String name) throws IOException {
        InetSocketAddress addr = new InetSocketAddress(port);
        HttpServer s;
        if (tls != null) {
            HttpsServer h = HttpsServer.create(addr, 100);
            h.setHttpsConfigurator(new HttpsConfigurator(tls));
            s = h;
        } else {
            s = HttpServer.create(addr, 100);
        }
        s.createContext("/", ex -> handle(ex, name));
        s.setExecutor(pool);
        return s;
    }

    void start() {
        web.start();
        api.start();
    }

    void stop() {
        if (web != null) {
            web.stop(0);
        }
        if (api != null) {
            api.stop(0);
        }
        pool.shutdownNow();
    }

    private void handle(HttpExchange ex, String listener) throws IOException {
        try {
            ex.getResponseHeaders().set("Server", "looker-standin");
            ex.getResponseHeaders().set("X-Standin-Node", node.hostname);
            ex.getResponseHeaders().set("X-Standin-Version", node.version);
            route(ex, listener);
        } catch (Exception e) {
            Log.warn("HTTP " + ex.getRequestMethod() + " " + ex.getRequestURI().getPath() + " failed: " + Util.brief(e));
            try {
                sendJson(ex, 500, Json.obj("error", Util.brief(e), "node", node.hostname));
            } catch (IOException ignored) {
                // the client went away
            }
        } finally {
            ex.close();
        }
    }

    private void route(HttpExchange ex, String listener) throws Exception {
        String path = ex.getRequestURI().getPath();
        String method = ex.getRequestMethod();
        InetAddress source = ex.getRemoteAddress().getAddress();
        if (!node.acceptsFrom(source)) {
            String msg = "TLS is provided externally by " + node.tlsTerminatorDescription() + ": plain HTTP is answered only to"
                    + " connections from it; this source (" + source.getHostAddress() + ") is refused";
            if (refusedSources.add(source.getHostAddress())) {
                Log.warn(msg + " (logged once per source)");
            }
            sendText(ex, 403, msg + "\n");
            return;
        }
        boolean serving = node.isServing();
        if (path.equals("/alive")) {
            sendText(ex, serving ? 200 : 503, serving ? "" : node.state() + "\n");
            return;
        }
        if (path.equals("/availability")) {
            // Looker documents the status code only: the body is opaque and nobody may parse it.
            boolean healthy = serving && node.healthy();
            sendText(ex, healthy ? 200 : 503, healthy ? "ok\n" : "unavailable\n");
            return;
        }
        if (path.equals("/standin/state")) {
            // Test-only introspection; answers in every state and without the session write, so
            // that tests can see a starting node or a database that is down.
            sendJson(ex, 200, node.stateView());
            return;
        }
        if (!serving) {
            sendJson(ex, 503, Json.obj("error", "Looker stand-in is " + node.state(), "state", node.state(), "node", node.hostname));
            return;
        }
        try {
            node.store().touchSession(source.getHostAddress(), node.hostname);
        } catch (Exception e) {
            // Looker reads and writes its database on nearly every request: without it, the request fails.
            sendJson(ex, 503, Json.obj("error", "application database unavailable (every request reads and writes it): "
                    + Util.brief(e), "node", node.hostname));
            return;
        }
        if (path.equals("/")) {
            sendText(ex, 200, "lookerops.cluster Looker stand-in (not Looker), release " + node.version + ", node " + node.hostname + "\n");
        } else if (path.equals("/api/4.0/versions")) {
            sendJson(ex, 200, versions(ex, listener));
        } else if (path.equals("/standin/whoami")) {
            sendJson(ex, 200, node.whoami(listener));
        } else if (path.equals("/standin/records")) {
            records(ex, method);
        } else if (path.startsWith("/standin/models/")) {
            model(ex, method, path.substring("/standin/models/".length()));
        } else if (path.equals("/standin/hold")) {
            hold(ex, method);
        } else if (path.equals("/standin/hold/release")) {
            releaseHolds(ex, method);
        } else {
            sendJson(ex, 404, Json.obj("error", "not found: " + path));
        }
    }

    private Map<String, Object> versions(HttpExchange ex, String listener) {
        String scheme = node.tls() ? "https" : "http";
        String host = ex.getRequestHeaders().getFirst("Host");
        if (host == null) {
            host = node.hostname;
        }
        String base = scheme + "://" + host;
        Map<String, Object> current = Json.obj("version", "4.0", "full_version", "4.0." + node.schema, "status", "current",
                "swagger_url", base + "/api/4.0/swagger.json");
        return Json.obj("looker_release_version", node.version, "current_version", current,
                "supported_versions", List.of(current), "api_server_url", scheme + "://" + node.hostname + ":" + node.opts.apiPort,
                "web_server_url", scheme + "://" + node.hostname + ":" + node.opts.webPort);
    }

    private void records(HttpExchange ex, String method) throws Exception {
        if (method.equals("GET")) {
            Map<String, String> q = query(ex);
            long after = Long.parseLong(q.getOrDefault("after_id", "0"));
            int limit = Integer.parseInt(q.getOrDefault("limit", "10000"));
            Map<String, Object> r;
            try {
                r = node.store().listRecords(after, limit);
            } catch (Exception e) {
                sendJson(ex, 503, Json.obj("error", "application database unavailable: " + Util.brief(e), "node", node.hostname));
                return;
            }
            r.put("node", node.hostname);
            sendJson(ex, 200, r);
        } else if (method.equals("POST")) {
            String body = new String(readBody(ex), StandardCharsets.UTF_8);
            String uid = null;
            String payload = body;
            if (!body.isBlank()) {
                try {
                    Map<String, Object> j = Json.parseObject(body);
                    uid = j.get("uid") == null ? null : String.valueOf(j.get("uid"));
                    payload = j.get("payload") == null ? null : String.valueOf(j.get("payload"));
                } catch (IllegalArgumentException e) {
                    sendJson(ex, 400, Json.obj("error", "body must be a JSON object {\"payload\": ..., \"uid\": optional}: "
                            + e.getMessage()));
                    return;
                }
            }
            if (uid == null || uid.isEmpty()) {
                uid = UUID.randomUUID().toString();
            }
            if (uid.length() > 64) {
                sendJson(ex, 400, Json.obj("error", "uid longer than 64 characters"));
                return;
            }
            Map<String, Object> r;
            try {
                r = node.store().createRecord(uid, payload);
            } catch (Exception e) {
                // Not committed, so not acknowledged.
                sendJson(ex, 503, Json.obj("error", "write not committed: " + Util.brief(e), "node", node.hostname));
                return;
            }
            boolean created = Boolean.TRUE.equals(r.get("created"));
            r.put("answered_by", node.hostname);
            sendJson(ex, created ? 201 : 200, r);
        } else {
            sendJson(ex, 405, Json.obj("error", "use GET or POST"));
        }
    }

    /**
     * Test-only: a response that stays open like a long-running query's, so that tests can check that a
     * drain waits for it. The headers go out at once (chunked), then a line every second until SECONDS
     * have passed or the holds are released; only a complete answer ends in "done". A stop cuts it.
     */
    private void hold(HttpExchange ex, String method) throws IOException, InterruptedException {
        if (!method.equals("GET")) {
            sendJson(ex, 405, Json.obj("error", "use GET"));
            return;
        }
        int seconds;
        try {
            seconds = Integer.parseInt(query(ex).getOrDefault("seconds", "60"));
        } catch (NumberFormatException e) {
            seconds = -1;
        }
        if (seconds < 1 || seconds > 3600) {
            sendJson(ex, 400, Json.obj("error", "seconds must be a whole number from 1 to 3600"));
            return;
        }
        long generation;
        synchronized (holds) {
            generation = holdGeneration;
        }
        long end = System.currentTimeMillis() + seconds * 1000L;
        ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        ex.sendResponseHeaders(200, 0);
        OutputStream out = ex.getResponseBody();
        out.write(("held by " + node.hostname + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        for (int tick = 1;; tick++) {
            synchronized (holds) {
                long left = end - System.currentTimeMillis();
                if (holdGeneration != generation || left <= 0) {
                    break;
                }
                holds.wait(Math.min(1000, left));
            }
            out.write(("held " + tick + " s\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        }
        out.write("done\n".getBytes(StandardCharsets.UTF_8));
        out.close();
    }

    /** Test-only: ends every open hold of this node (they answer "done"). */
    private void releaseHolds(HttpExchange ex, String method) throws IOException {
        if (!method.equals("POST")) {
            sendJson(ex, 405, Json.obj("error", "use POST"));
            return;
        }
        synchronized (holds) {
            holdGeneration++;
            holds.notifyAll();
        }
        sendJson(ex, 200, Json.obj("released", true, "node", node.hostname));
    }

    private void model(HttpExchange ex, String method, String rel) throws IOException {
        if (!MODEL_PATH.matcher(rel).matches() || rel.contains("..")) {
            sendJson(ex, 400, Json.obj("error", "bad model path '" + rel + "' (letters, digits, . _ - and /)"));
            return;
        }
        Path file = node.modelsDir().resolve(rel);
        if (method.equals("GET")) {
            if (!Files.isRegularFile(file)) {
                sendJson(ex, 404, Json.obj("error", "no model file models/" + rel, "node", node.hostname));
                return;
            }
            byte[] b = Files.readAllBytes(file);
            ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
            ex.getResponseHeaders().set("X-Standin-Sha256", Util.hex(Util.sha256(b)));
            send(ex, 200, b);
        } else if (method.equals("PUT") || method.equals("POST")) {
            byte[] b = readBody(ex);
            Files.createDirectories(file.getParent());
            Path tmp = file.resolveSibling("." + file.getFileName() + "." + node.hostname + ".tmp");
            try (FileOutputStream out = new FileOutputStream(tmp.toFile())) {
                out.write(b);
                out.getFD().sync();
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            sendJson(ex, 201, Json.obj("path", "models/" + rel, "file", file.toString(), "bytes", b.length,
                    "sha256", Util.hex(Util.sha256(b)), "node", node.hostname));
        } else {
            sendJson(ex, 405, Json.obj("error", "use GET or PUT"));
        }
    }

    private static Map<String, String> query(HttpExchange ex) {
        Map<String, String> m = new java.util.HashMap<>();
        String q = ex.getRequestURI().getRawQuery();
        if (q == null) {
            return m;
        }
        for (String part : q.split("&")) {
            int eq = part.indexOf('=');
            if (eq > 0) {
                m.put(URLDecoder.decode(part.substring(0, eq), StandardCharsets.UTF_8),
                        URLDecoder.decode(part.substring(eq + 1), StandardCharsets.UTF_8));
            }
        }
        return m;
    }

    private static byte[] readBody(HttpExchange ex) throws IOException {
        try (InputStream in = ex.getRequestBody()) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[65536];
            int n;
            while ((n = in.read(buf)) > 0) {
                out.write(buf, 0, n);
                if (out.size() > MAX_BODY) {
                    throw new IOException("request body larger than " + MAX_BODY + " bytes");
                }
            }
            return out.toByteArray();
        }
    }

    private static void sendJson(HttpExchange ex, int code, Object body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "application/json");
        send(ex, code, (Json.write(body) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    private static void sendText(HttpExchange ex, int code, String body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        send(ex, code, body.getBytes(StandardCharsets.UTF_8));
    }

    private static void send(HttpExchange ex, int code, byte[] body) throws IOException {
        ex.sendResponseHeaders(code, body.length == 0 ? -1 : body.length);
        if (body.length > 0) {
            try (OutputStream out = ex.getResponseBody()) {
                out.write(body);
            }
        }
    }
}
