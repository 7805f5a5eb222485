package dev.rtscore.reference;

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
        BundleFile file;
        try {
            file = BundleFile$.MODULE$.apply(uriFor(path));
        } catch (RuntimeException e) {
            throw new HarnessException("bundle " + path + " is not a zip file or a bundle directory", e);
        }
        try {
            return file.<MleapContext, Transformer>load(context).get();
        } catch (RuntimeException e) {
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
        } catch (RuntimeException | java.io.IOException e) {
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

    private static URI uriFor(Path path) {
        Path absolute = path.toAbsolutePath();
        // A directory is read in place; anything else must be a zip, opened as a zip file system.
        return Files.isDirectory(absolute) ? absolute.toUri() : URI.create("jar:" + absolute.toUri());
    }
}
