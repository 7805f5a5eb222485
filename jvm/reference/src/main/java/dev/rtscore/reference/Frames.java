package dev.rtscore.reference;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import ml.combust.mleap.runtime.frame.DefaultLeapFrame;
import ml.combust.mleap.runtime.frame.Row;
import ml.combust.mleap.runtime.frame.Transformer;
import ml.combust.mleap.runtime.serialization.FrameReader;
import ml.combust.mleap.runtime.serialization.FrameReader$;
import ml.combust.mleap.runtime.serialization.FrameWriter$;
import scala.Option;
import scala.collection.JavaConverters;
import scala.reflect.ClassTag$;

/** MLeap's JSON LeapFrame format in and out, and row slicing for benchmarks. */
final class Frames {
    static final String JSON_FORMAT = "ml.combust.mleap.json";

    private final FrameReader reader = FrameReader$.MODULE$.apply(JSON_FORMAT, Option.empty());

    /** Parse a frame file in MLeap's JSON LeapFrame format. */
    DefaultLeapFrame read(Path path) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(path);
        } catch (IOException e) {
            throw new HarnessException("cannot read frame " + path, e);
        }
        return parse(bytes, "frame " + path);
    }

    /** Parse frame bytes; `where` names the source in errors. */
    DefaultLeapFrame parse(byte[] bytes, String where) {
        try {
            return reader.fromBytes(bytes, StandardCharsets.UTF_8).get();
        } catch (Exception e) {
            throw new HarnessException(where + " is not an MLeap JSON LeapFrame", e);
        }
    }

    /** The frame as MLeap's JSON writer prints it (pretty-printed, UTF-8). */
    static String write(DefaultLeapFrame frame) {
        try {
            byte[] bytes = FrameWriter$.MODULE$
                    .apply(frame, JSON_FORMAT, Option.empty(), ClassTag$.MODULE$.apply(DefaultLeapFrame.class))
                    .toBytes(StandardCharsets.UTF_8)
                    .get();
            return new String(bytes, StandardCharsets.UTF_8);
        } catch (Exception e) {
            throw new HarnessException("MLeap could not write the result frame", e);
        }
    }

    /** Run the bundle's root transformer over the frame. */
    static DefaultLeapFrame transform(Transformer root, DefaultLeapFrame frame) {
        try {
            return root.transform(frame).get();
        } catch (Exception e) {
            throw new HarnessException("MLeap could not transform the frame", e);
        }
    }

    /** The frame's rows as a Java list. */
    static List<Row> rows(DefaultLeapFrame frame) {
        return new ArrayList<>(JavaConverters.seqAsJavaList(frame.dataset()));
    }

    /** A frame of `count` rows starting at `start`, wrapping around: the unit of work of one benchmark call. */
    static DefaultLeapFrame slice(DefaultLeapFrame frame, List<Row> rows, int start, int count) {
        List<Row> picked = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            picked.add(rows.get((start + i) % rows.size()));
        }
        // A strict immutable List: a lazy Seq would defer MLeap's work past the timer.
        return new DefaultLeapFrame(frame.schema(), JavaConverters.asScalaBuffer(picked).toList());
    }
}
