package dev.rtscore.reference;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.FileTime;
import java.util.HashMap;
import java.util.Map;

import ml.combust.bundle.dsl.Bundle;
import ml.combust.mleap.runtime.frame.DefaultLeapFrame;
import ml.combust.mleap.runtime.frame.Transformer;

/**
 * One JVM for many requests, so a caller pays the JVM start once.
 *
 * <p>Requests are lines of tab-separated fields: {@code score<TAB>BUNDLE<TAB>FRAME_JSON} (the frame on one
 * line) or {@code resave<TAB>BUNDLE<TAB>OUT<TAB>json|protobuf}. Each gets exactly one reply line:
 * {@code ok<TAB>RESULT} (the result frame as one line of JSON, or the output path) or {@code error<TAB>MESSAGE}.
 */
final class ServeLoop {
    private record Loaded(FileTime modified, Bundle<Transformer> bundle) { }

    private final BundleFiles bundles;
    private final Frames frames;
    private final Map<Path, Loaded> loaded = new HashMap<>();

    ServeLoop(BundleFiles bundles, Frames frames) {
        this.bundles = bundles;
        this.frames = frames;
    }

    /** Answer requests from stdin until it closes. */
    void run(PrintStream out) throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        out.println("ready\t" + ReferenceMain.mleapVersion());
        out.flush();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            String reply;
            try {
                reply = "ok\t" + answer(line.split("\t", -1));
            } catch (Exception e) {
                // Exception, not RuntimeException: Scala code throws checked ones (ZipException) undeclared.
                reply = "error\t" + HarnessException.oneLine(e);
            }
            out.println(reply);
            out.flush();
        }
    }

    private String answer(String[] fields) {
        switch (fields[0]) {
            case "score" -> {
                expect(fields, 3, "score<TAB>BUNDLE<TAB>FRAME_JSON");
                Bundle<Transformer> bundle = bundle(Paths.get(fields[1]));
                DefaultLeapFrame frame = frames.parse(fields[2].getBytes(StandardCharsets.UTF_8), "the frame");
                // JSON strings never hold raw newlines, so dropping the pretty-printer's ones is lossless.
                return Frames.write(Frames.transform(bundle.root(), frame)).replace("\n", "");
            }
            case "resave" -> {
                expect(fields, 4, "resave<TAB>BUNDLE<TAB>OUT<TAB>json|protobuf");
                Path out = Paths.get(fields[2]);
                bundles.save(bundle(Paths.get(fields[1])), out, BundleFiles.format(fields[3]));
                return out.toString();
            }
            default -> throw new HarnessException("unknown request '" + fields[0] + "' (score or resave)");
        }
    }

    private Bundle<Transformer> bundle(Path path) {
        Path key = path.toAbsolutePath().normalize();
        FileTime modified;
        try {
            modified = Files.getLastModifiedTime(key);
        } catch (IOException e) {
            throw new HarnessException("bundle " + path + " does not exist");
        }
        Loaded hit = loaded.get(key);
        // A bundle rewritten in place is reloaded; the cache only saves repeated loads of one file.
        if (hit == null || !hit.modified().equals(modified)) {
            hit = new Loaded(modified, bundles.load(key));
            loaded.put(key, hit);
        }
        return hit.bundle();
    }

    private static void expect(String[] fields, int count, String shape) {
        if (fields.length != count) {
            throw new HarnessException("malformed request: expected " + shape + ", got " + fields.length + " fields");
        }
    }
}
