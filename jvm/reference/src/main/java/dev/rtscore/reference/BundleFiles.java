package dev.rtscore.reference;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;

import ml.combust.bundle.BundleFile;
import ml.combust.bundle.BundleFile$;
import ml.combust.bundle.BundleWriter;
import ml.combust.bundle.dsl.Bundle;
import ml.combust.bundle.serializer.SerializationFormat;
import ml.combust.mleap.runtime.MleapContext;
import ml.combust.mleap.runtime.MleapContext$;
import ml.combust.mleap.runtime.frame.Transformer;
import scala.Option;

/** Loads and writes Bundle.ML bundles (zip files or directories) through MLeap's own serializers. */
final class BundleFiles {
    private final MleapContext context = MleapContext$.MODULE$.defaultContext();

    /** Load a bundle from a zip file or a bundle directory. */
    Bundle<Transformer> load(Path path) {
        if (!Files.exists(path)) {
            throw new HarnessException("bundle " + path + " does not exist");
        }
        if (!Files.isDirectory(path) && !isZip(path)) {
            throw new HarnessException("bundle " + path + " is neither a zip file nor a bundle directory");
        }
        BundleFile file;
        try {
            file = BundleFile$.MODULE$.apply(uriFor(path));
        } catch (Exception e) {
            throw new HarnessException("bundle " + path + " cannot be opened as a zip file", e);
        }
        try {
            return file.<MleapContext, Transformer>load(context).get();
        } catch (Exception e) {
            throw new HarnessException("MLeap could not load bundle " + path, e);
        } finally {
            file.close();
        }
    }

    /** Write a loaded bundle again in `format`: a zip when `out` ends in .zip, else a directory. */
    void save(Bundle<Transformer> bundle, Path out, SerializationFormat format) {
        if (Files.exists(out)) {
            throw new HarnessException("output " + out + " already exists; the harness does not overwrite");
        }
        BundleWriter<MleapContext, Transformer> writer = new BundleWriter<>(
                bundle.root(), Option.apply(bundle.info().name()), format, bundle.info().meta());
        Path absolute = out.toAbsolutePath();
        URI uri = absolute.toString().endsWith(".zip")
                ? URI.create("jar:" + absolute.toUri())
                : absolute.toUri();
        try {
            if (absolute.getParent() != null) {
                Files.createDirectories(absolute.getParent());
            }
            writer.save(uri, context).get();
        } catch (Exception e) {
            throw new HarnessException("MLeap could not write bundle " + out, e);
        }
    }

    /** MLeap's serialization format named `json` or `protobuf`. */
    static SerializationFormat format(String name) {
        return switch (name) {
            case "json" -> SerializationFormat.Json$.MODULE$;
            case "protobuf" -> SerializationFormat.Protobuf$.MODULE$;
            default -> throw new HarnessException("unknown bundle format '" + name + "' (json or protobuf)");
        };
    }

    private static boolean isZip(Path path) {
        byte[] head = new byte[4];
        try (InputStream in = Files.newInputStream(path)) {
            // Every zip starts with a local file header (PK\3\4), or PK\5\6 when it is empty.
            return in.readNBytes(head, 0, 4) == 4 && head[0] == 'P' && head[1] == 'K'
                    && (head[2] == 3 || head[2] == 5);
        } catch (IOException e) {
            throw new HarnessException("cannot read bundle " + path, e);
        }
    }

    private static URI uriFor(Path path) {
        Path absolute = path.toAbsolutePath();
        // A directory is read in place; anything else must be a zip, opened as a zip file system.
        return Files.isDirectory(absolute) ? absolute.toUri() : URI.create("jar:" + absolute.toUri());
    }
}
