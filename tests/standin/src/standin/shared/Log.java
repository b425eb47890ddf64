package standin.shared;

import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * The stand-in's logger: log/looker.log under the working directory (like Looker), plain text or
 * JSON lines (--log-format=json), copied to stdout. Callers never pass secrets to it.
 */
public final class Log {
    private static final DateTimeFormatter TEXT_TS = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS Z");
    private static PrintWriter file;
    private static boolean json;
    private static String node = "-";

    private Log() {
    }

    /** logFile null: stdout only (Looker's --no-log-to-file). */
    public static synchronized void init(Path logFile, boolean jsonFormat, String hostname) throws IOException {
        if (logFile != null) {
            Files.createDirectories(logFile.getParent());
            file = new PrintWriter(new OutputStreamWriter(new FileOutputStream(logFile.toFile(), true), StandardCharsets.UTF_8));
        }
        json = jsonFormat;
        node = hostname;
    }

    public static void info(String msg) {
        write("INFO", msg);
    }

    public static void warn(String msg) {
        write("WARN", msg);
    }

    public static void error(String msg) {
        write("ERROR", msg);
    }

    private static synchronized void write(String level, String msg) {
        OffsetDateTime now = OffsetDateTime.now(ZoneOffset.UTC);
        String line;
        if (json) {
            line = Json.write(Json.obj("timestamp", now.toString(), "level", level, "logger", "looker-standin",
                    "hostname", node, "thread", Thread.currentThread().getName(), "message", msg));
        } else {
            line = TEXT_TS.format(now) + " " + String.format("%-5s", level) + " [looker-standin] ["
                    + Thread.currentThread().getName() + "] " + msg;
        }
        if (file != null) {
            file.println(line);
            file.flush();
        }
        System.out.println(line);
        System.out.flush();
    }
}
