package standin;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import standin.shared.Json;
import standin.shared.Log;
import standin.shared.Util;

/**
 * The node-to-node (-n, 1551) and queue broker (-q, 61616) listeners, and the client side that
 * peers use to reach them. A connection is a small handshake proving both sides share the cluster
 * secret kept in the application database:
 *   server: STANDIN-LINK 1 KIND HOSTNAME VERSION INSTANCE NONCE
 *   client: HELLO HOSTNAME HMAC-SHA256(secret, NONCE + " " + KIND)
 *   server: OK | DENIED reason | BUSY starting
 */
final class NodeLink {
    /** What a probe of a peer's port found. */
    static final class Probe {
        boolean reachable;
        String hostname;
        String version;
        String instance;
        String error;

        Map<String, Object> toJson(int port) {
            Map<String, Object> m = Json.obj("port", port, "reachable", reachable);
            if (error != null) {
                m.put("error", error);
            }
            return m;
        }
    }

    private final Looker node;
    private final List<ServerSocket> sockets = new ArrayList<>();
    private final Map<String, Map<String, Object>> inbound = new ConcurrentHashMap<>();
    private final SecureRandom random = new SecureRandom();
    private volatile boolean closed;

    NodeLink(Looker node) {
        this.node = node;
    }

    void bind(int port, String kind) throws IOException {
        ServerSocket s = new ServerSocket();
        s.setReuseAddress(true);
        s.bind(new InetSocketAddress(port), 50);
        sockets.add(s);
        Thread t = new Thread(() -> acceptLoop(s, kind), kind + "-listener");
        t.setDaemon(true);
        t.start();
    }

    void close() {
        closed = true;
        for (ServerSocket s : sockets) {
            try {
                s.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
    }

    private void acceptLoop(ServerSocket server, String kind) {
        while (!closed) {
            try {
                Socket s = server.accept();
                Thread t = new Thread(() -> serve(s, kind), kind + "-conn");
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                if (!closed) {
                    Log.warn(kind + " listener: " + Util.brief(e));
                }
            }
        }
    }

    private void serve(Socket s, String kind) {
        try (Socket sock = s) {
            sock.setSoTimeout(5000);
            byte[] n = new byte[16];
            random.nextBytes(n);
            String nonce = Util.hex(n);
            OutputStream out = sock.getOutputStream();
            BufferedReader in = new BufferedReader(new InputStreamReader(sock.getInputStream(), StandardCharsets.UTF_8));
            send(out, "STANDIN-LINK 1 " + kind + " " + node.hostname + " " + node.version + " " + node.instanceId + " " + nonce);
            String line = in.readLine();
            if (line == null) {
                return; // a plain TCP check: connect and close
            }
            String[] p = line.split(" ");
            String secret = node.clusterSecret();
            if (p.length != 3 || !p[0].equals("HELLO")) {
                send(out, "DENIED bad handshake");
            } else if (secret == null) {
                send(out, "BUSY starting");
            } else if (!p[2].equals(hmac(secret, nonce + " " + kind))) {
                send(out, "DENIED wrong cluster secret");
                Log.warn(kind + " port: refused " + p[1] + " from " + sock.getInetAddress().getHostAddress() + " (wrong cluster secret)");
            } else {
                send(out, "OK");
                inbound.put(p[1] + "/" + kind, Json.obj("hostname", p[1], "port", kind, "address",
                        sock.getInetAddress().getHostAddress(), "last_seen", OffsetDateTime.now(ZoneOffset.UTC).toString()));
            }
        } catch (IOException e) {
            // a peer that went away mid-handshake
        }
    }

    List<Object> inbound() {
        return new ArrayList<>(inbound.values());
    }

    static Probe probe(String host, int port, String kind, String myHostname, String secret, int timeoutMs) {
        Probe r = new Probe();
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(host, port), timeoutMs);
            s.setSoTimeout(timeoutMs);
            BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
            String banner = in.readLine();
            String[] b = banner == null ? new String[0] : banner.split(" ");
            if (b.length != 7 || !b[0].equals("STANDIN-LINK")) {
                r.error = "unexpected answer from " + host + ":" + port;
                return r;
            }
            r.hostname = b[3];
            r.version = b[4];
            r.instance = b[5];
            if (!b[2].equals(kind)) {
                r.error = host + ":" + port + " is a " + b[2] + " port, not " + kind;
                return r;
            }
            if (secret == null) {
                r.error = "no cluster secret yet";
                return r;
            }
            send(s.getOutputStream(), "HELLO " + myHostname + " " + hmac(secret, b[6] + " " + kind));
            String reply = in.readLine();
            r.reachable = "OK".equals(reply);
            if (!r.reachable) {
                r.error = reply == null ? "connection closed during handshake" : reply;
            }
        } catch (IOException e) {
            r.error = Util.brief(e);
        }
        return r;
    }

    private static void send(OutputStream out, String line) throws IOException {
        out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    static String hmac(String secret, String data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
            return Util.hex(mac.doFinal(data.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
