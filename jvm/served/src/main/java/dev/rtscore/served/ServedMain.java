package dev.rtscore.served;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

import io.grpc.Server;
import io.grpc.health.v1.HealthCheckResponse.ServingStatus;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.services.HealthStatusManager;
import io.grpc.protobuf.services.ProtoReflectionServiceV1;
import ml.combust.bundle.dsl.Bundle;
import ml.combust.bundle.dsl.Bundle$;
import ml.combust.mleap.runtime.frame.Transformer;

/**
 * MLeap's JVM runtime behind a grpc-java server speaking {@code rtscore.v1.Scorer} and {@code grpc.health.v1}.
 *
 * <p>{@code ServedMain BUNDLE [--name NAME] [--host 127.0.0.1] [--port 0] [--threads N]}: prints
 * {@code listening on HOST:PORT} once it serves, and drains on SIGTERM.
 */
public final class ServedMain {
    private static final String USAGE =
            "usage: ServedMain BUNDLE [--name NAME] [--host HOST] [--port PORT] [--threads N]";
    private static final String SCORER_SERVICE = "rtscore.v1.Scorer";
    // Held strongly: java.util.logging forgets a logger's level once nothing references it.
    private static final Logger NETLIB_LOG = Logger.getLogger("dev.ludovic.netlib");

    private ServedMain() { }

    /** Serve until SIGTERM; a bad argument or bundle is one line on stderr and exit status 1. */
    public static void main(String[] args) throws Exception {
        NETLIB_LOG.setLevel(Level.SEVERE);
        Options options;
        Bundle<Transformer> bundle;
        try {
            options = Options.parse(args);
            bundle = BundleLoader.load(options.bundle);
        } catch (IllegalArgumentException e) {
            System.err.println("mleap-served: " + e.getMessage());
            System.exit(1);
            return;
        }
        String version = BundleLoader.shortDigest(options.bundle);
        ScorerService scorer = new ScorerService(options.name, version, bundle.root(), Bundle$.MODULE$.version(),
                options.bundle.toAbsolutePath().toString());
        HealthStatusManager health = new HealthStatusManager();
        ExecutorService executor = Executors.newFixedThreadPool(options.threads);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress(options.host, options.port))
                .executor(executor)
                .addService(scorer)
                .addService(health.getHealthService())
                .addService(ProtoReflectionServiceV1.newInstance())
                .build()
                .start();
        for (String service : new String[] {"", SCORER_SERVICE, options.name}) {
            health.setStatus(service, ServingStatus.SERVING);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> drain(server, health, executor)));
        System.out.println("listening on " + options.host + ":" + server.getPort());
        System.out.flush();
        server.awaitTermination();
    }

    private static void drain(Server server, HealthStatusManager health, ExecutorService executor) {
        health.enterTerminalState();
        server.shutdown();
        try {
            if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
                server.shutdownNow();
            }
        } catch (InterruptedException e) {
            server.shutdownNow();
            Thread.currentThread().interrupt();
        }
        executor.shutdownNow();
    }

    /** The command line. */
    private record Options(Path bundle, String name, String host, int port, int threads) {
        static Options parse(String[] args) {
            Path bundle = null;
            String name = "model";
            String host = "127.0.0.1";
            int port = 0;
            int threads = Runtime.getRuntime().availableProcessors();
            for (int i = 0; i < args.length; i++) {
                String arg = args[i];
                if (!arg.startsWith("--")) {
                    if (bundle != null) {
                        throw new IllegalArgumentException("one bundle only\n" + USAGE);
                    }
                    bundle = Paths.get(arg);
                    continue;
                }
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("option " + arg + " needs a value\n" + USAGE);
                }
                String value = args[++i];
                switch (arg) {
                    case "--name" -> name = value;
                    case "--host" -> host = value;
                    case "--port" -> port = integer(arg, value, 0, 65535);
                    case "--threads" -> threads = integer(arg, value, 1, 1024);
                    default -> throw new IllegalArgumentException("unknown option " + arg + "\n" + USAGE);
                }
            }
            if (bundle == null) {
                throw new IllegalArgumentException("no bundle given\n" + USAGE);
            }
            return new Options(bundle, name, host, port, threads);
        }

        private static int integer(String option, String value, int low, int high) {
            try {
                int parsed = Integer.parseInt(value);
                if (parsed >= low && parsed <= high) {
                    return parsed;
                }
            } catch (NumberFormatException e) {
                // reported below
            }
            throw new IllegalArgumentException("option " + option + " must be an integer in [" + low + ", " + high
                    + "], got '" + value + "'");
        }
    }
}
