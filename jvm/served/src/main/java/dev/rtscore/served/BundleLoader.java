package dev.rtscore.served;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import ml.combust.bundle.BundleFile;
import ml.combust.bundle.BundleFile$;
import ml.combust.bundle.dsl.Bundle;
import ml.combust.mleap.runtime.MleapContext;
import ml.combust.mleap.runtime.MleapContext$;
import ml.combust.mleap.runtime.frame.Transformer;

/** Loads a Bundle.ML bundle (zip file or directory) with MLeap's own runtime. */
final class BundleLoader {
    private BundleLoader() { }

    /** The bundle's root transformer; `IllegalArgumentException` says why a path is not a bundle. */
    static Bundle<Transformer> load(Path path) {
        if (!Files.exists(path)) {
            throw new IllegalArgumentException("bundle " + path + " does not exist");
        }
        Path absolute = path.toAbsolutePath();
        // A directory is read in place; anything else must be a zip, opened as a zip file system.
        URI uri = Files.isDirectory(absolute) ? absolute.toUri() : URI.create("jar:" + absolute.toUri());
        MleapContext context = MleapContext$.MODULE$.defaultContext();
        BundleFile file;
        try {
            file = BundleFile$.MODULE$.apply(uri);
        } catch (Exception e) {
            throw new IllegalArgumentException("bundle " + path + " cannot be opened as a zip file: " + e, e);
        }
        try {
            return file.<MleapContext, Transformer>load(context).get();
        } catch (Exception e) {
            throw new IllegalArgumentException("MLeap could not load bundle " + path + ": " + e, e);
        } finally {
            file.close();
        }
    }

    /** The first 12 hex digits of a bundle file's sha256, as rtscore names unversioned models; "dir" for a folder. */
    static String shortDigest(Path path) {
        if (Files.isDirectory(path)) {
            return "dir";
        }
        try (InputStream in = Files.newInputStream(path)) {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            byte[] buffer = new byte[1 << 16];
            for (int n = in.read(buffer); n > 0; n = in.read(buffer)) {
                digest.update(buffer, 0, n);
            }
            return HexFormat.of().formatHex(digest.digest()).substring(0, 12);
        } catch (IOException | NoSuchAlgorithmException e) {
            throw new IllegalArgumentException("cannot read bundle " + path + ": " + e, e);
        }
    }
}
