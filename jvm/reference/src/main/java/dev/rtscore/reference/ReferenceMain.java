package dev.rtscore.reference;

import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

import ml.combust.bundle.dsl.Bundle;
import ml.combust.bundle.dsl.Bundle$;
import ml.combust.mleap.runtime.frame.DefaultLeapFrame;
import ml.combust.mleap.runtime.frame.Transformer;

/** Command line of rtscore's MLeap reference harness: score, resave, bench, serve. */
public final class ReferenceMain {
    private static final String USAGE = String.join("\n",
            "usage: ReferenceMain score BUNDLE FRAME.json",
            "       ReferenceMain resave BUNDLE OUT --format json|protobuf",
            "       ReferenceMain bench BUNDLE FRAME.json [--iterations N] [--warmup W] [--batch K] [--mode frame|row]",
            "       ReferenceMain serve   (tab-separated requests on stdin, one reply line each)");

    // Held strongly: java.util.logging forgets a logger's level once nothing references it.
    private static final Logger NETLIB_LOG = Logger.getLogger("dev.ludovic.netlib");

    private ReferenceMain() { }

    /** Run one command; errors are one line on stderr and exit status 1. */
    public static void main(String[] args) {
        // netlib logs at WARNING when the incubating Vector API is absent and falls back to pure-Java BLAS;
        // that line would break the one-line-on-stderr contract.
        NETLIB_LOG.setLevel(Level.SEVERE);
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), false, StandardCharsets.UTF_8);
        int status;
        try {
            status = run(args, out);
        } catch (Throwable e) {
            out.flush();
            System.err.println(HarnessException.oneLine(e));
            status = 1;
        }
        out.flush();
        System.exit(status);
    }

    /** The MLeap version of the runtime on the classpath. */
    static String mleapVersion() {
        return Bundle$.MODULE$.version();
    }

    private static int run(String[] args, PrintStream out) throws Exception {
        if (args.length == 0) {
            throw new HarnessException("no command given\n" + USAGE);
        }
        Parsed parsed = Parsed.of(args);
        BundleFiles bundles = new BundleFiles();
        Frames frames = new Frames();
        switch (args[0]) {
            case "score" -> {
                parsed.expectPositional(2, "score BUNDLE FRAME.json");
                Bundle<Transformer> bundle = bundles.load(parsed.path(0));
                DefaultLeapFrame frame = frames.read(parsed.path(1));
                out.println(Frames.write(Frames.transform(bundle.root(), frame)));
            }
            case "resave" -> {
                parsed.expectPositional(2, "resave BUNDLE OUT --format json|protobuf");
                Bundle<Transformer> bundle = bundles.load(parsed.path(0));
                bundles.save(bundle, parsed.path(1), BundleFiles.format(parsed.option("format", null)));
                out.println(parsed.path(1));
            }
            case "bench" -> {
                parsed.expectPositional(2, "bench BUNDLE FRAME.json");
                long started = System.nanoTime();
                Bundle<Transformer> bundle = bundles.load(parsed.path(0));
                double loadSeconds = (System.nanoTime() - started) / 1e9;
                DefaultLeapFrame frame = frames.read(parsed.path(1));
                LatencyBench bench = new LatencyBench(
                        bundle.root(), frame, parsed.intOption("batch", 1), parsed.option("mode", "frame"));
                out.println(bench.run(parsed.intOption("iterations", 1000), parsed.intOption("warmup", 200),
                        loadSeconds));
            }
            case "serve" -> {
                parsed.expectPositional(0, "serve");
                new ServeLoop(bundles, frames).run(out);
            }
            default -> throw new HarnessException("unknown command '" + args[0] + "'\n" + USAGE);
        }
        return 0;
    }

    /** Positional arguments and `--name value` options after the command word. */
    private record Parsed(List<String> positional, Map<String, String> options) {
        static Parsed of(String[] args) {
            List<String> positional = new ArrayList<>();
            Map<String, String> options = new HashMap<>();
            for (int i = 1; i < args.length; i++) {
                if (args[i].startsWith("--")) {
                    if (i + 1 >= args.length) {
                        throw new HarnessException("option " + args[i] + " needs a value");
                    }
                    options.put(args[i].substring(2), args[++i]);
                } else {
                    positional.add(args[i]);
                }
            }
            return new Parsed(positional, options);
        }

        void expectPositional(int count, String shape) {
            if (positional.size() != count) {
                throw new HarnessException("expected: " + shape + " (got " + positional.size() + " arguments)");
            }
        }

        Path path(int index) {
            return Paths.get(positional.get(index));
        }

        String option(String name, String fallback) {
            String value = options.getOrDefault(name, fallback);
            if (value == null) {
                throw new HarnessException("option --" + name + " is required");
            }
            return value;
        }

        int intOption(String name, int fallback) {
            String value = options.get(name);
            if (value == null) {
                return fallback;
            }
            try {
                return Integer.parseInt(value);
            } catch (NumberFormatException e) {
                throw new HarnessException("option --" + name + " must be an integer, got '" + value + "'");
            }
        }
    }
}
