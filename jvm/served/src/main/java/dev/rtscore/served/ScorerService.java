package dev.rtscore.served;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import ml.combust.mleap.core.types.StructField;
import ml.combust.mleap.runtime.frame.DefaultLeapFrame;
import ml.combust.mleap.runtime.frame.Transformer;
import rtscore.v1.FrameOuterClass.Frame;
import rtscore.v1.ScorerGrpc;
import rtscore.v1.ScorerOuterClass.GetModelRequest;
import rtscore.v1.ScorerOuterClass.ListModelsRequest;
import rtscore.v1.ScorerOuterClass.ListModelsResponse;
import rtscore.v1.ScorerOuterClass.ModelInfo;
import rtscore.v1.ScorerOuterClass.ScoreRequest;
import rtscore.v1.ScorerOuterClass.ScoreResponse;

/**
 * {@code rtscore.v1.Scorer} for one bundle, scored by MLeap's {@code Transformer.transform} on the calling
 * gRPC thread, as a JVM scoring service built on MLeap would. Loading and unloading are not offered.
 */
final class ScorerService extends ScorerGrpc.ScorerImplBase {
    private final String name;
    private final String version;
    private final Transformer root;
    private final FrameCodec codec;
    // MLeap's pipeline output schema is unordered; replies list the outputs in the order the transform appended them.
    private final Set<String> outputs = new HashSet<>();
    private final ModelInfo info;

    ScorerService(String name, String version, Transformer root, String mleapVersion, String path) {
        this.name = name;
        this.version = version;
        this.root = root;
        this.codec = new FrameCodec(root.inputSchema());
        ModelInfo.Builder described = ModelInfo.newBuilder().setName(name).setVersion(version)
                .setMleapVersion(mleapVersion).setRootOp(root.getClass().getSimpleName()).setHealth("SERVING")
                .setPath(path);
        for (StructField field : FrameCodec.fields(root.inputSchema())) {
            described.addInputs(FrameCodec.fieldSpec(field));
        }
        for (StructField field : FrameCodec.fields(root.outputSchema())) {
            outputs.add(field.name());
            described.addOutputs(FrameCodec.fieldSpec(field));
        }
        this.info = described.build();
    }

    @Override
    public void score(ScoreRequest request, StreamObserver<ScoreResponse> reply) {
        if (!serves(request.getModel())) {
            reply.onError(notFound(request.getModel()));
            return;
        }
        Frame scored;
        try {
            DefaultLeapFrame in = codec.decode(request.getFrame());
            DefaultLeapFrame out = transform(in);
            List<String> names = !request.getSelectList().isEmpty() ? request.getSelectList()
                    : names(out, request.getIncludeInputs() ? null : outputs);
            scored = FrameCodec.encode(out, names);
        } catch (FrameException e) {
            reply.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
            return;
        } catch (RuntimeException e) {
            // An internal failure is logged here and never described to the caller.
            System.err.println("mleap-served: Score failed: " + e);
            reply.onError(Status.INTERNAL.withDescription("internal error").asRuntimeException());
            return;
        }
        reply.onNext(ScoreResponse.newBuilder().setFrame(scored).setModel(name).setVersion(version).build());
        reply.onCompleted();
    }

    @Override
    public void getModel(GetModelRequest request, StreamObserver<ModelInfo> reply) {
        if (!serves(request.getModel())) {
            reply.onError(notFound(request.getModel()));
            return;
        }
        reply.onNext(info);
        reply.onCompleted();
    }

    @Override
    public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> reply) {
        reply.onNext(ListModelsResponse.newBuilder().addModels(info).build());
        reply.onCompleted();
    }

    private DefaultLeapFrame transform(DefaultLeapFrame in) {
        try {
            return root.transform(in).get();
        } catch (Exception e) {
            // MLeap refuses frames it cannot transform (a missing column, an unseen label): the caller's input.
            String reason = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            throw new FrameException("MLeap could not transform the frame: " + reason);
        }
    }

    private boolean serves(String model) {
        return model.equals(name) || model.equals(name + "@" + version);
    }

    private RuntimeException notFound(String model) {
        return Status.NOT_FOUND.withDescription("no model " + model + " is hosted here (this server hosts "
                + name + "@" + version + ")").asRuntimeException();
    }

    /** The frame's column names in order, only those in `keep` unless it is null. */
    private static List<String> names(DefaultLeapFrame frame, Set<String> keep) {
        List<String> names = new ArrayList<>();
        for (StructField field : FrameCodec.fields(frame.schema())) {
            if (keep == null || keep.contains(field.name())) {
                names.add(field.name());
            }
        }
        return names;
    }
}
