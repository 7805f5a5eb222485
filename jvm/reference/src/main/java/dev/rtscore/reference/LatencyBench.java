package dev.rtscore.reference;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import ml.combust.mleap.runtime.frame.DefaultLeapFrame;
import ml.combust.mleap.runtime.frame.Row;
import ml.combust.mleap.runtime.frame.RowTransformer;
import ml.combust.mleap.runtime.frame.RowTransformer$;
import ml.combust.mleap.runtime.frame.Transformer;

/**
 * Times MLeap's in-process transform of small frames cut from one frame, as rtscore's peer.
 *
 * <p>Mode {@code frame} calls {@code Transformer.transform} on a {@code DefaultLeapFrame} of {@code batch}
 * rows; mode {@code row} calls a {@code RowTransformer} (MLeap's single-row fast path) on each of them.
 */
final class LatencyBench {
    private final Transformer root;
    private final String mode;
    private final RowTransformer rowTransformer;
    private final List<Row> rows;
    private final List<DefaultLeapFrame> batches;
    private final int batch;
    private final int rowCount;

    LatencyBench(Transformer root, DefaultLeapFrame frame, int batch, String mode) {
        if (batch < 1) {
            throw new HarnessException("--batch must be at least 1, got " + batch);
        }
        if (!mode.equals("frame") && !mode.equals("row")) {
            throw new HarnessException("unknown --mode '" + mode + "' (frame or row)");
        }
        List<Row> rows = Frames.rows(frame);
        if (rows.isEmpty()) {
            throw new HarnessException("the benchmark frame has no rows");
        }
        this.root = root;
        this.mode = mode;
        this.rows = rows;
        this.batch = batch;
        this.rowCount = rows.size();
        this.rowTransformer = mode.equals("row") ? rowTransformer(root, frame) : null;
        // Frames are cut before timing so a call measures MLeap's transform alone.
        this.batches = new ArrayList<>(rows.size());
        for (int start = 0; start < rows.size(); start++) {
            batches.add(Frames.slice(frame, rows, start, batch));
        }
    }

    /** Run `warmup` untimed calls then `iterations` timed ones; the summary as a JSON object. */
    String run(int iterations, int warmup, double loadSeconds) {
        if (iterations < 1 || warmup < 0) {
            throw new HarnessException("--iterations must be >= 1 and --warmup >= 0");
        }
        long sink = 0;
        for (int i = 0; i < warmup; i++) {
            sink += call(i);
        }
        long[] nanos = new long[iterations];
        for (int i = 0; i < iterations; i++) {
            long started = System.nanoTime();
            int produced = call(i);
            nanos[i] = System.nanoTime() - started;
            sink += produced;
        }
        if (sink != (long) (warmup + iterations) * batch) {
            throw new HarnessException("MLeap returned frames of the wrong length during the benchmark");
        }
        return summary(nanos, loadSeconds);
    }

    /** One timed unit of work; returns how many rows MLeap produced. */
    private int call(int i) {
        // Calls walk the rows in order, `batch` at a time, wrapping around the frame.
        int start = (int) (((long) i * batch) % rowCount);
        if (rowTransformer == null) {
            return Frames.transform(root, batches.get(start)).dataset().size();
        }
        int produced = 0;
        for (int j = 0; j < batch; j++) {
            if (rowTransformer.transform(rows.get((start + j) % rowCount)) != null) {
                produced++;
            }
        }
        return produced;
    }

    private static RowTransformer rowTransformer(Transformer root, DefaultLeapFrame frame) {
        try {
            return root.transform(RowTransformer$.MODULE$.apply(frame.schema())).get();
        } catch (Exception e) {
            throw new HarnessException("MLeap could not build a row transformer for the frame's schema", e);
        }
    }

    private String summary(long[] nanos, double loadSeconds) {
        double[] ms = Arrays.stream(nanos).mapToDouble(n -> n / 1e6).sorted().toArray();
        double mean = Arrays.stream(ms).average().orElse(Double.NaN);
        double variance = Arrays.stream(ms).map(v -> (v - mean) * (v - mean)).sum() / ms.length;
        return String.format(Locale.ROOT,
                "{\"runtime\": \"mleap-jvm\", \"mode\": \"%s\", \"mleap_version\": \"%s\", \"java_version\": \"%s\", "
                        + "\"load_seconds\": %.6f, \"iterations\": %d, \"batch\": %d, \"rows\": %d, "
                        + "\"latency_ms\": {\"avg\": %.6f, \"p50\": %.6f, \"p95\": %.6f, \"p99\": %.6f, "
                        + "\"max\": %.6f, \"min\": %.6f, \"stddev\": %.6f}}",
                mode, ReferenceMain.mleapVersion(), System.getProperty("java.version"), loadSeconds, ms.length,
                batch, rowCount, mean, percentile(ms, 50), percentile(ms, 95), percentile(ms, 99),
                ms[ms.length - 1], ms[0], Math.sqrt(variance));
    }

    /** Nearest-rank percentile of sorted values (the same definition HdrHistogram reports). */
    static double percentile(double[] sorted, double pct) {
        int rank = (int) Math.ceil(pct / 100.0 * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }
}
