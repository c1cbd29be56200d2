package io.vlproxy.testenv;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * Runs one OpenSearch 2.19 node in this JVM, with the modules loaded as classpath plugins.
 *
 * <p>This is the "embedded" way of starting a node: no SecurityManager, no plugin descriptors, no
 * bootstrap checks. It exists for vlproxy's tests, benchmarks and demo; it is not a production
 * launcher.
 *
 * <pre>
 * java @jvm/common.options @jvm/test.options -cp "target/launcher.jar:target/lib/*:target/knn/*" io.vlproxy.testenv.EmbeddedOpenSearch \
 *     --home DIR [--http-port 0] [--transport-port 0] [--cluster-name vlproxy-test]
 *     [--no-knn] [--plugin CLASS]... [--stdin-watchdog] [--exit-after-start] [-E key=value]...
 * </pre>
 *
 * <p>With --stdin-watchdog the node stops when stdin reaches EOF (its parent is gone) and then
 * deletes its home directory.
 *
 * <p>Port 0 binds a free port; the bound addresses are written to HOME/logs/http.ports and
 * HOME/logs/transport.ports (node.portsfile) and the HTTP one is also printed on stdout as a line
 * {@code VLPROXY_OPENSEARCH_HTTP=host:port}.
 */
public final class EmbeddedOpenSearch {

    /** Modules the node cannot do without: HTTP, the cjk/ngram analyzers, scripting. */
    private static final String[][] REQUIRED = {
        // 2.x name first, then the 3.x name, so the launcher survives a version bump.
        {"org.opensearch.transport.Netty4Plugin", "org.opensearch.transport.Netty4ModulePlugin"},
        {"org.opensearch.analysis.common.CommonAnalysisPlugin", "org.opensearch.analysis.common.CommonAnalysisModulePlugin"},
        {"org.opensearch.painless.PainlessPlugin", "org.opensearch.painless.PainlessModulePlugin"},
        // _reindex, _update_by_query, _delete_by_query
        {"org.opensearch.index.reindex.ReindexPlugin", "org.opensearch.index.reindex.ReindexModulePlugin"},
        // scaled_float, rank_feature(s), search_as_you_type, token_count
        {"org.opensearch.index.mapper.MapperExtrasPlugin", "org.opensearch.index.mapper.MapperExtrasModulePlugin"},
    };

    /** Loaded when its jars are on the classpath (target/knn), unless --no-knn. */
    private static final String KNN_PLUGIN = "org.opensearch.knn.plugin.KNNPlugin";

    /** Set by the stdin watchdog: the parent is gone, and with it any use of the home dir. */
    private static volatile boolean parentGone;

    private EmbeddedOpenSearch() {}

    /** A Node whose protected constructor accepts classpath plugins. */
    static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
            super(env, plugins, true);
        }
    }

    public static void main(String[] args) throws Exception {
        // Must run before anything touches log4j, or early status errors are lost.
        LogConfigurator.registerErrorListener();

        Path home = null;
        String httpPort = "0";
        String transportPort = "0";
        String clusterName = "vlproxy-test";
        String nodeName = "node-0";
        boolean knn = true;
        boolean watchdog = false;
        boolean exitAfterStart = false;
        List<String> extraPlugins = new ArrayList<>();
        Map<String, String> extraSettings = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--home": home = Paths.get(need(args, ++i, a)).toAbsolutePath(); break;
                case "--http-port": httpPort = need(args, ++i, a); break;
                case "--transport-port": transportPort = need(args, ++i, a); break;
                case "--cluster-name": clusterName = need(args, ++i, a); break;
                case "--node-name": nodeName = need(args, ++i, a); break;
                case "--no-knn": knn = false; break;
                case "--plugin": extraPlugins.add(need(args, ++i, a)); break;
                case "--stdin-watchdog": watchdog = true; break;
                case "--exit-after-start": exitAfterStart = true; break;
                case "-E": {
                    String kv = need(args, ++i, a);
                    int eq = kv.indexOf('=');
                    if (eq <= 0) {
                        die("-E wants key=value, got [" + kv + "]");
                    }
                    extraSettings.put(kv.substring(0, eq), kv.substring(eq + 1));
                    break;
                }
                default: die("unknown argument [" + a + "]");
            }
        }
        if (home == null) {
            die("--home is required");
        }
        if (watchdog) {
            startStdinWatchdog();
        }
        final Path homeDir = home;

        Path config = home.resolve("config");
        for (String d : new String[] {"config", "data", "logs", "modules", "plugins"}) {
            Files.createDirectories(home.resolve(d));
        }
        Files.writeString(config.resolve("log4j2.properties"), LOG4J2, StandardCharsets.UTF_8);
        // Environment insists on a config file being readable if present; an empty one is fine.
        if (!Files.exists(config.resolve("opensearch.yml"))) {
            Files.writeString(config.resolve("opensearch.yml"), "", StandardCharsets.UTF_8);
        }

        Settings.Builder sb = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", clusterName)
            .put("node.name", nodeName)
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", transportPort)
            .put("node.portsfile", true)
            // A nearly full disk must not make test indices read-only.
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            // One node: replicas would never be assigned, so indices go green at once.
            .put("cluster.default_number_of_replicas", 0)
            // With a 512 MiB heap the real-memory parent breaker trips spuriously.
            .put("indices.breaker.total.use_real_memory", false)
            // Tests create and delete many indices; let them do it with wildcards.
            .put("action.destructive_requires_name", false);
        extraSettings.forEach(sb::put);
        Settings settings = sb.build();

        Environment env = InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), config, () -> settings.get("node.name"));
        LogConfigurator.setNodeName(settings.get("node.name"));
        LogConfigurator.configure(env);
        Thread.setDefaultUncaughtExceptionHandler(EmbeddedOpenSearch::uncaught);

        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (String[] names : REQUIRED) {
            plugins.add(loadFirst(names));
        }
        if (knn) {
            Class<? extends Plugin> k = tryLoad(KNN_PLUGIN);
            if (k != null) {
                plugins.add(k);
                plugins.add(KnnEngineGuardPlugin.class);
            }
        }
        for (String name : extraPlugins) {
            plugins.add(loadFirst(new String[] {name}));
        }

        long t0 = System.nanoTime();
        Node node = new EmbeddedNode(env, plugins);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                node.awaitClose(30, TimeUnit.SECONDS);
                if (parentGone) {
                    // Nobody is left to read the home directory (or to remove it, if the parent was
                    // killed), so do not leave it behind in the temp dir.
                    deleteTree(homeDir);
                }
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "vlproxy-shutdown"));
        node.start();
        // New indices read cluster.default_number_of_replicas from the cluster state, not from the
        // node settings, so put it there: on one node, indices then go green instead of yellow.
        node.client().admin().cluster().prepareUpdateSettings()
            .setPersistentSettings(Settings.builder().put("cluster.default_number_of_replicas", 0))
            .get();
        HttpServerTransport http = node.injector().getInstance(HttpServerTransport.class);
        System.out.println("VLPROXY_OPENSEARCH_HTTP=" + http.boundAddress().publishAddress().toString());
        System.out.println("VLPROXY_OPENSEARCH_STARTED_MS=" + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
        System.out.flush();
        if (exitAfterStart) {
            // build.sh uses this to dump an AppCDS archive of the start-up classes
            // (-XX:ArchiveClassesAtExit), which needs an orderly JVM exit.
            System.exit(0);
        }
        stopped.await();
    }

    /**
     * Like the distribution's handler: an Error on any thread halts the node. Embedded, a dead
     * write thread would otherwise leave its request hanging forever. The common case here is a
     * k-NN field without "engine": "lucene": the Maven zip has no FAISS/NMSLIB native libraries.
     */
    private static void uncaught(Thread t, Throwable e) {
        if (e instanceof Error) {
            System.err.println("vlproxy: fatal error on thread [" + t.getName() + "], halting the node: " + e);
            if (e instanceof UnsatisfiedLinkError) {
                System.err.println("vlproxy: k-NN native engines (faiss, nmslib) are not available here; map knn_vector fields with \"engine\": \"lucene\"");
            }
            e.printStackTrace();
            System.err.flush();
            Runtime.getRuntime().halt(1);
        }
        System.err.println("vlproxy: uncaught exception on thread [" + t.getName() + "]: " + e);
        e.printStackTrace();
    }

    /** Exit (running the shutdown hook) once stdin reaches EOF: the parent process is gone. */
    private static void startStdinWatchdog() {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[256];
            try (InputStream in = System.in) {
                while (in.read(buf) >= 0) {
                    // discard; only EOF matters
                }
            } catch (IOException ignored) {
                // a broken pipe means the parent is gone too
            }
            System.err.println("vlproxy: stdin closed, shutting down");
            parentGone = true;
            System.exit(0);
        }, "vlproxy-stdin-watchdog");
        t.setDaemon(true);
        t.start();
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (java.util.stream.Stream<Path> paths = Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private static Class<? extends Plugin> loadFirst(String[] names) {
        for (String n : names) {
            Class<? extends Plugin> c = tryLoad(n);
            if (c != null) {
                return c;
            }
        }
        die("cannot load plugin class " + String.join(" or ", names) + ": is target/lib complete? run testenv/build.sh");
        return null;
    }

    private static Class<? extends Plugin> tryLoad(String name) {
        try {
            return Class.forName(name).asSubclass(Plugin.class);
        } catch (ClassNotFoundException e) {
            return null;
        }
    }

    private static String need(String[] args, int i, String flag) {
        if (i >= args.length) {
            die(flag + " needs a value");
        }
        return args[i];
    }

    private static void die(String msg) {
        System.err.println("vlproxy: " + msg);
        System.exit(2);
    }

    private static final String LOG4J2 = String.join("\n",
        "status = error",
        "appender.console.type = Console",
        "appender.console.name = console",
        "appender.console.layout.type = PatternLayout",
        "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n",
        "rootLogger.level = info",
        "rootLogger.appenderRef.console.ref = console",
        // Deprecations become Warning response headers, as on a real node (and are not logged).
        "appender.header_warning.type = HeaderWarningAppender",
        "appender.header_warning.name = header_warning",
        "logger.deprecation.name = org.opensearch.deprecation",
        "logger.deprecation.level = deprecation",
        "logger.deprecation.appenderRef.header_warning.ref = header_warning",
        "logger.deprecation.additivity = false",
        "");
}
