package dev.rtscore.served;

import java.lang.reflect.Array;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import ml.combust.mleap.core.types.BasicType;
import ml.combust.mleap.core.types.DataType;
import ml.combust.mleap.core.types.ScalarType;
import ml.combust.mleap.core.types.StructField;
import ml.combust.mleap.core.types.StructType;
import ml.combust.mleap.core.types.TensorType;
import ml.combust.mleap.runtime.frame.ArrayRow;
import ml.combust.mleap.runtime.frame.DefaultLeapFrame;
import ml.combust.mleap.runtime.frame.Row;
import ml.combust.mleap.tensor.Tensor;
import ml.combust.mleap.tensor.Tensor$;
import rtscore.v1.FrameOuterClass.Column;
import rtscore.v1.FrameOuterClass.ColumnType;
import rtscore.v1.FrameOuterClass.DenseDoubles;
import rtscore.v1.FrameOuterClass.FieldSpec;
import rtscore.v1.FrameOuterClass.Frame;
import scala.collection.JavaConverters;
import scala.collection.mutable.WrappedArray;
import scala.reflect.ClassTag;
import scala.reflect.ClassTag$;

/**
 * rtscore.v1 {@code Frame} (columnar, or the dense row-major block of doubles) to MLeap's row-based
 * {@code DefaultLeapFrame} and back. A column the model reads takes the type the bundle declares for it.
 */
final class FrameCodec {
    private static final ClassTag<Object> DOUBLE_TAG = ClassTag$.MODULE$.Double();

    private final Map<String, DataType> declared = new HashMap<>();

    FrameCodec(StructType inputs) {
        for (StructField field : fields(inputs)) {
            declared.put(field.name(), field.dataType());
        }
    }

    /** The fields of a schema as a Java list. */
    static List<StructField> fields(StructType schema) {
        return JavaConverters.seqAsJavaList(schema.fields());
    }

    /** Decode a wire frame into MLeap's frame; bad shapes and types raise {@link FrameException}. */
    DefaultLeapFrame decode(Frame frame) {
        long declaredRows = frame.getRows();
        if (declaredRows < 0 || declaredRows > Integer.MAX_VALUE) {
            throw new FrameException("frame rows must be between 0 and 2^31-1, got " + declaredRows);
        }
        int rows = (int) declaredRows;
        DenseDoubles dense = frame.getDense();
        int width = frame.getColumnsCount() + dense.getNamesCount();
        Object[][] cells = new Object[rows][width];
        List<StructField> schema = new ArrayList<>(width);
        Set<String> seen = new HashSet<>();
        for (int j = 0; j < frame.getColumnsCount(); j++) {
            Column column = frame.getColumns(j);
            String name = column.getName();
            if (name.isEmpty()) {
                throw new FrameException("column " + j + " has no name");
            }
            if (!seen.add(name)) {
                throw new FrameException("column " + name + " appears twice in the frame");
            }
            schema.add(StructField.apply(name, decodeColumn(column, rows, cells, j)));
        }
        decodeDense(dense, rows, cells, frame.getColumnsCount(), seen, schema);
        List<Row> dataset = new ArrayList<>(rows);
        for (Object[] row : cells) {
            dataset.add(new ArrayRow(WrappedArray.make(row)));
        }
        StructType structType;
        try {
            structType = StructType.apply(schema).get();
        } catch (Exception e) {
            throw new FrameException("MLeap refused the frame's schema: " + e.getMessage());
        }
        return new DefaultLeapFrame(structType, dataset);
    }

    private DataType decodeColumn(Column column, int rows, Object[][] cells, int j) {
        String name = column.getName();
        ColumnType kind = column.getType();
        int carried = column.getDoublesCount() + column.getInt64SCount() + column.getStringsCount()
                + column.getBoolsCount();
        int count = switch (kind) {
            case COLUMN_TYPE_DOUBLE, COLUMN_TYPE_DOUBLE_TENSOR -> column.getDoublesCount();
            case COLUMN_TYPE_INT64 -> column.getInt64SCount();
            case COLUMN_TYPE_STRING -> column.getStringsCount();
            case COLUMN_TYPE_BOOL -> column.getBoolsCount();
            default -> throw new FrameException("column " + name + ": unknown column type " + column.getTypeValue());
        };
        if (carried != count) {
            throw new FrameException("column " + name + ": carries values in a field that does not match its type "
                    + kind);
        }
        if (kind == ColumnType.COLUMN_TYPE_DOUBLE_TENSOR) {
            return decodeTensor(column, rows, cells, j);
        }
        if (column.getShapeCount() != 0) {
            throw new FrameException("column " + name + ": a scalar column must have no shape");
        }
        if (count != rows) {
            throw new FrameException("column " + name + ": has " + count + " values for " + rows + " rows");
        }
        DataType want = declared.get(name);
        BasicType base = want instanceof ScalarType scalar ? scalar.base() : null;
        switch (kind) {
            case COLUMN_TYPE_DOUBLE -> {
                boolean asFloat = base == BasicType.Float$.MODULE$;
                for (int r = 0; r < rows; r++) {
                    double value = column.getDoubles(r);
                    cells[r][j] = asFloat ? (Object) (float) value : (Object) value;
                }
                return asFloat || base == BasicType.Double$.MODULE$ ? want : ScalarType.Double();
            }
            case COLUMN_TYPE_INT64 -> {
                for (int r = 0; r < rows; r++) {
                    cells[r][j] = integral(column.getInt64S(r), base, name);
                }
                return isIntegralOrDouble(base) ? want : ScalarType.Long();
            }
            case COLUMN_TYPE_STRING -> {
                for (int r = 0; r < rows; r++) {
                    cells[r][j] = column.getStrings(r);
                }
                return base == BasicType.String$.MODULE$ ? want : ScalarType.String();
            }
            default -> {
                for (int r = 0; r < rows; r++) {
                    cells[r][j] = column.getBools(r);
                }
                return base == BasicType.Boolean$.MODULE$ ? want : ScalarType.Boolean();
            }
        }
    }

    private static Object integral(long value, BasicType base, String name) {
        if (base == BasicType.Double$.MODULE$) {
            return (double) value; // an integer where a double is read is exact: widen it
        }
        if (base == BasicType.Int$.MODULE$ || base == BasicType.Short$.MODULE$ || base == BasicType.Byte$.MODULE$) {
            long low = base == BasicType.Int$.MODULE$ ? Integer.MIN_VALUE
                    : base == BasicType.Short$.MODULE$ ? Short.MIN_VALUE : Byte.MIN_VALUE;
            long high = base == BasicType.Int$.MODULE$ ? Integer.MAX_VALUE
                    : base == BasicType.Short$.MODULE$ ? Short.MAX_VALUE : Byte.MAX_VALUE;
            if (value < low || value > high) {
                throw new FrameException("column " + name + ": " + value + " does not fit the model's " + base);
            }
            if (base == BasicType.Int$.MODULE$) {
                return (int) value;
            }
            return base == BasicType.Short$.MODULE$ ? (Object) (short) value : (Object) (byte) value;
        }
        return value;
    }

    private static boolean isIntegralOrDouble(BasicType base) {
        return base == BasicType.Long$.MODULE$ || base == BasicType.Int$.MODULE$ || base == BasicType.Short$.MODULE$
                || base == BasicType.Byte$.MODULE$ || base == BasicType.Double$.MODULE$;
    }

    private DataType decodeTensor(Column column, int rows, Object[][] cells, int j) {
        String name = column.getName();
        if (column.getShapeCount() != 1 || column.getShape(0) < 0 || column.getShape(0) > Integer.MAX_VALUE) {
            throw new FrameException("column " + name + ": tensor shape must be one dimension >= 0, got "
                    + column.getShapeList());
        }
        int k = (int) column.getShape(0);
        if ((long) rows * k != column.getDoublesCount()) {
            throw new FrameException("column " + name + ": tensor of shape [" + k + "] needs " + (long) rows * k
                    + " values for " + rows + " rows, got " + column.getDoublesCount());
        }
        for (int r = 0; r < rows; r++) {
            double[] values = new double[k];
            for (int i = 0; i < k; i++) {
                values[i] = column.getDoubles(r * k + i);
            }
            cells[r][j] = Tensor$.MODULE$.denseVector(values, DOUBLE_TAG);
        }
        DataType want = declared.get(name);
        if (want instanceof TensorType tensor && tensor.base() == BasicType.Double$.MODULE$) {
            return want;
        }
        return TensorType.Double(JavaConverters.asScalaBuffer(List.<Object>of(k)).toList());
    }

    private void decodeDense(DenseDoubles dense, int rows, Object[][] cells, int first, Set<String> seen,
            List<StructField> schema) {
        int width = dense.getNamesCount();
        if (width == 0) {
            if (!dense.getValues().isEmpty()) {
                throw new FrameException("dense block has values but no column names");
            }
            return;
        }
        long expected = (long) rows * width * Double.BYTES;
        if (dense.getValues().size() != expected) {
            throw new FrameException("dense block of " + width + " columns needs " + expected + " bytes for "
                    + rows + " rows, got " + dense.getValues().size());
        }
        DoubleBuffer values = dense.getValues().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer();
        for (int i = 0; i < width; i++) {
            String name = dense.getNames(i);
            if (name.isEmpty()) {
                throw new FrameException("dense column " + i + " has no name");
            }
            if (!seen.add(name)) {
                throw new FrameException("column " + name + " appears twice in the frame");
            }
            DataType want = declared.get(name);
            boolean asFloat = want instanceof ScalarType s && s.base() == BasicType.Float$.MODULE$;
            boolean asDouble = want instanceof ScalarType s && s.base() == BasicType.Double$.MODULE$;
            for (int r = 0; r < rows; r++) {
                double value = values.get(r * width + i);
                cells[r][first + i] = asFloat ? (Object) (float) value : (Object) value;
            }
            schema.add(StructField.apply(name, asFloat || asDouble ? want : ScalarType.Double()));
        }
    }

    /** Encode the named columns of MLeap's frame as a wire frame. */
    static Frame encode(DefaultLeapFrame frame, List<String> names) {
        StructType schema = frame.schema();
        List<Row> rows = JavaConverters.seqAsJavaList(frame.dataset());
        Frame.Builder out = Frame.newBuilder().setRows(rows.size());
        for (String name : names) {
            if (!schema.hasField(name)) {
                throw new FrameException("selected column " + name + " is not in the model's output");
            }
            int index = (Integer) schema.indexOf(name).get();
            DataType type = schema.getField(name).get().dataType();
            out.addColumns(encodeColumn(name, type, rows, index));
        }
        return out.build();
    }

    private static Column encodeColumn(String name, DataType type, List<Row> rows, int index) {
        Column.Builder column = Column.newBuilder().setName(name);
        ColumnType kind = columnType(type);
        column.setType(kind);
        switch (kind) {
            case COLUMN_TYPE_DOUBLE -> {
                for (Row row : rows) {
                    Object value = row.getRaw(index);
                    column.addDoubles(value == null ? Double.NaN : ((Number) value).doubleValue());
                }
            }
            case COLUMN_TYPE_INT64 -> {
                for (Row row : rows) {
                    column.addInt64S(((Number) notNull(row.getRaw(index), name)).longValue());
                }
            }
            case COLUMN_TYPE_STRING -> {
                for (Row row : rows) {
                    Object value = row.getRaw(index);
                    column.addStrings(value == null ? "" : value.toString());
                }
            }
            case COLUMN_TYPE_BOOL -> {
                for (Row row : rows) {
                    column.addBools((Boolean) notNull(row.getRaw(index), name));
                }
            }
            case COLUMN_TYPE_DOUBLE_TENSOR -> encodeTensor(column, rows, index, name);
            default -> throw new FrameException("column " + name + ": type " + type.simpleString()
                    + " cannot be sent on the wire");
        }
        return column.build();
    }

    private static void encodeTensor(Column.Builder column, List<Row> rows, int index, String name) {
        int width = -1;
        for (Row row : rows) {
            Tensor<?> tensor = (Tensor<?>) notNull(row.getRaw(index), name);
            // MLeap keeps some vectors sparse (one-hot encodings): the wire carries them dense.
            Object values = tensor.toDense().values();
            int size = Array.getLength(values);
            if (width < 0) {
                width = size;
                column.addShape(width);
            } else if (size != width) {
                throw new FrameException("column " + name + ": tensors of sizes " + width + " and " + size);
            }
            if (values instanceof double[] doubles) {
                for (double v : doubles) {
                    column.addDoubles(v);
                }
            } else {
                for (int i = 0; i < size; i++) {
                    column.addDoubles(Array.getDouble(values, i));
                }
            }
        }
        if (width < 0) {
            column.addShape(0);
        }
    }

    private static Object notNull(Object value, String name) {
        if (value == null) {
            throw new FrameException("column " + name + " has a null value the wire cannot carry");
        }
        return value;
    }

    /** The wire column type MLeap's data type travels as. */
    static ColumnType columnType(DataType type) {
        if (type instanceof ScalarType scalar) {
            BasicType base = scalar.base();
            if (base == BasicType.Double$.MODULE$ || base == BasicType.Float$.MODULE$) {
                return ColumnType.COLUMN_TYPE_DOUBLE;
            }
            if (base == BasicType.Long$.MODULE$ || base == BasicType.Int$.MODULE$ || base == BasicType.Short$.MODULE$
                    || base == BasicType.Byte$.MODULE$) {
                return ColumnType.COLUMN_TYPE_INT64;
            }
            if (base == BasicType.String$.MODULE$) {
                return ColumnType.COLUMN_TYPE_STRING;
            }
            if (base == BasicType.Boolean$.MODULE$) {
                return ColumnType.COLUMN_TYPE_BOOL;
            }
        } else if (type instanceof TensorType tensor) {
            BasicType base = tensor.base();
            if (base != BasicType.String$.MODULE$ && base != BasicType.ByteString$.MODULE$
                    && base != BasicType.Boolean$.MODULE$) {
                return ColumnType.COLUMN_TYPE_DOUBLE_TENSOR;
            }
        }
        return ColumnType.COLUMN_TYPE_UNSPECIFIED;
    }

    /** A schema field as the wire's {@code FieldSpec}. */
    static FieldSpec fieldSpec(StructField field) {
        DataType type = field.dataType();
        FieldSpec.Builder spec = FieldSpec.newBuilder().setName(field.name()).setType(columnType(type))
                .setNullable(type.isNullable());
        if (type instanceof TensorType tensor && tensor.dimensions().isDefined()) {
            for (Object dimension : JavaConverters.seqAsJavaList(tensor.dimensions().get())) {
                spec.addShape((Integer) dimension);
            }
        }
        return spec.build();
    }
}
