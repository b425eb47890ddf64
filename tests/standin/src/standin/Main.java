package standin;

import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.util.Properties;

/**
 * Entry point of looker.jar (the lookerops.cluster Looker stand-in, not Looker). Before anything
 * else it checks that looker-dependencies.jar (named by the manifest's Class-Path) is present and
 * belongs to the same build, the way a broken install of the real jars fails at start-up.
 */
public final class Main {
    private Main() {
    }

    public static void main(String[] args) throws Exception {
        Properties release = load("standin/release.properties");
        if (release == null) {
            fail("looker.jar is damaged: its release information is missing");
        }
        String version = release.getProperty("version");
        Properties deps = load("standin/dependencies.properties");
        if (deps == null) {
            fail("looker-dependencies.jar is missing or unreadable (expected next to looker.jar"
                    + jarDir() + "): a Looker " + version + " install needs both looker.jar and looker-dependencies.jar");
        }
        if (!release.getProperty("build_id").equals(deps.getProperty("build_id"))) {
            fail("looker-dependencies.jar is release " + deps.getProperty("version") + " (build " + deps.getProperty("build_id")
                    + ") but looker.jar is release " + version + " (build " + release.getProperty("build_id")
                    + "): install both jars of the same release");
        }
        try {
            Class.forName("org.mariadb.jdbc.Driver");
            Class.forName("standin.shared.Json");
        } catch (ClassNotFoundException e) {
            fail("looker-dependencies.jar is incomplete (" + e.getMessage() + " not found): reinstall both jars");
        }
        // Only now touch classes that live in looker-dependencies.jar.
        Class.forName("standin.Looker").getMethod("main", String[].class, Properties.class).invoke(null, args, release);
    }

    private static Properties load(String name) {
        try (InputStream in = Main.class.getClassLoader().getResourceAsStream(name)) {
            if (in == null) {
                return null;
            }
            Properties p = new Properties();
            p.load(in);
            return p;
        } catch (IOException e) {
            return null;
        }
    }

    private static String jarDir() {
        try {
            URL u = Main.class.getProtectionDomain().getCodeSource().getLocation();
            return " in " + new java.io.File(u.toURI()).getParent();
        } catch (Exception e) {
            return "";
        }
    }

    private static void fail(String msg) {
        System.err.println("ERROR: Looker stand-in cannot start: " + msg);
        System.exit(1);
    }
}
