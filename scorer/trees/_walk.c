/* The forest kernel: scoring rows against a packed forest, many trees walked in lockstep per row.
 *
 * Packed node layout (16 bytes a node, int32 [n, 4] also read as float64 [n, 2]):
 *   ints[4i]:       feature index (>= 0) of a continuous split, LEAF_MARK for a leaf, or -2 - c for
 *                   categorical split c (row c of the category table);
 *   ints[4i + 1]:   absolute index of the right child (internal) or row of the leaf-value table (leaf);
 *   floats[2i + 1]: the threshold of a continuous split.
 * The left child of an internal node is always the next node (pre-order), so it is not stored.
 *
 * A `Forest` checks every node once when it is made (children after their parent and inside the
 * forest, features and leaf rows in range), so walking needs no bounds checks and always ends: each
 * step moves to a later node. It holds its arrays' buffers for as long as it lives, and scores
 * without the GIL.
 *
 * C rather than a JIT: a process that scores from the compiled cache starts in milliseconds, where a
 * JIT's start-up (about 0.9 s for numba) would be most of a warm load.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

#define LEAF_MARK (-1)
#define MAX_LANES 256
/* Rows scored per pass over the trees: bounds the leaf scratch (rows x trees) for any batch size. */
#define CHUNK_ROWS 256

typedef struct {
    PyObject_HEAD
    Py_buffer nodes, roots, values, cat_meta, cat_values;
    Py_ssize_t n_nodes, n_trees, n_leaf_rows, n_outputs, n_features;
    int lanes;
} Forest;

/* Kinds of array element a buffer may hold, by their buffer-protocol format characters. */
static int is_kind(const Py_buffer *b, char kind, Py_ssize_t itemsize) {
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') {
#if PY_BIG_ENDIAN
        if (*f == '<') return 0;
#endif
        f++;
    }
    if (b->itemsize != itemsize || f[0] == '\0' || f[1] != '\0') return 0;
    switch (kind) {
    case 'i': return f[0] == 'i' || f[0] == 'l' || f[0] == 'q';
    case 'd': return f[0] == 'd';
    }
    return 0;
}

static int get_array(PyObject *obj, Py_buffer *view, const char *name, char kind, Py_ssize_t itemsize,
                     int ndim, int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous%s array", name, writable ? " writable" : "");
        return -1;
    }
    if (!is_kind(view, kind, itemsize) || view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must be a %d-d array of %s%d", name, ndim,
                     kind == 'd' ? "float" : "int", (int)(8 * itemsize));
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static const int32_t *ints_of(const Forest *f) { return (const int32_t *)f->nodes.buf; }
static const double *floats_of(const Forest *f) { return (const double *)f->nodes.buf; }

/* The first inconsistency in the forest, as an error message in `message`; 0 if there is none. */
static int find_fault(const Forest *f, char *message, size_t size) {
    const int32_t *ints = ints_of(f);
    const int64_t *roots = (const int64_t *)f->roots.buf;
    const int64_t *meta = (const int64_t *)f->cat_meta.buf;
    Py_ssize_t n_cat = f->cat_meta.shape[0], n_cat_values = f->cat_values.shape[0];
    for (Py_ssize_t t = 0; t < f->n_trees; t++) {
        if (roots[t] < 0 || roots[t] >= f->n_nodes) {
            snprintf(message, size, "tree %zd: root %lld is not a node", t, (long long)roots[t]);
            return 1;
        }
    }
    for (Py_ssize_t c = 0; c < n_cat; c++) {
        const int64_t *m = meta + 4 * c;
        if (m[0] < 0 || m[0] >= f->n_features || m[2] < 0 || m[2] > m[3] || m[3] > n_cat_values) {
            snprintf(message, size, "categorical split %zd is out of range", c);
            return 1;
        }
    }
    for (Py_ssize_t i = 0; i < f->n_nodes; i++) {
        int32_t feature = ints[4 * i], link = ints[4 * i + 1];
        if (feature == LEAF_MARK) {
            if (link < 0 || link >= f->n_leaf_rows) {
                snprintf(message, size, "node %zd: leaf row %d is out of range", i, link);
                return 1;
            }
            continue;
        }
        if (feature >= f->n_features || (feature < 0 && -2 - (int64_t)feature >= n_cat)) {
            snprintf(message, size, "node %zd: split %d is out of range", i, feature);
            return 1;
        }
        if (link <= i + 1 || link >= f->n_nodes) {
            snprintf(message, size, "node %zd: right child %d is not a later node of the forest", i, link);
            return 1;
        }
    }
    return 0;
}

static void Forest_dealloc(Forest *self) {
    Py_buffer *held[] = {&self->nodes, &self->roots, &self->values, &self->cat_meta, &self->cat_values};
    for (size_t b = 0; b < sizeof held / sizeof held[0]; b++) {
        if (held[b]->obj) PyBuffer_Release(held[b]);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Forest_init(Forest *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"nodes", "roots", "values", "cat_meta", "cat_values", "n_features", "lanes", NULL};
    PyObject *nodes, *roots, *values, *cat_meta, *cat_values;
    Py_ssize_t n_features;
    int lanes;
    if (self->nodes.obj) {
        PyErr_SetString(PyExc_RuntimeError, "a Forest is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOni", keywords, &nodes, &roots, &values, &cat_meta,
                                     &cat_values, &n_features, &lanes)) {
        return -1;
    }
    if (lanes < 1 || lanes > MAX_LANES) {
        PyErr_Format(PyExc_ValueError, "lanes must be between 1 and %d, got %d", MAX_LANES, lanes);
        return -1;
    }
    if (get_array(nodes, &self->nodes, "nodes", 'i', 4, 2, 0) < 0 ||
        get_array(roots, &self->roots, "roots", 'i', 8, 1, 0) < 0 ||
        get_array(values, &self->values, "values", 'd', 8, 2, 0) < 0 ||
        get_array(cat_meta, &self->cat_meta, "cat_meta", 'i', 8, 2, 0) < 0 ||
        get_array(cat_values, &self->cat_values, "cat_values", 'd', 8, 1, 0) < 0) {
        return -1;  /* buffers taken so far are released by dealloc */
    }
    if (self->nodes.shape[1] != 4 || self->cat_meta.shape[1] != 4) {
        PyErr_SetString(PyExc_ValueError, "nodes and cat_meta must have 4 columns");
        return -1;
    }
    if (self->nodes.shape[0] >= INT32_MAX || self->values.shape[0] > INT32_MAX ||
        self->roots.shape[0] > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "the forest is too large to index with 32 bits");
        return -1;
    }
    self->n_nodes = self->nodes.shape[0];
    self->n_trees = self->roots.shape[0];
    self->n_leaf_rows = self->values.shape[0];
    self->n_outputs = self->values.shape[1];
    self->n_features = n_features;
    self->lanes = lanes;
    char message[160];
    int fault;
    Py_BEGIN_ALLOW_THREADS
    fault = find_fault(self, message, sizeof message);
    Py_END_ALLOW_THREADS
    if (fault) {
        PyErr_SetString(PyExc_ValueError, message);
        return -1;
    }
    return 0;
}

/* leaf[r * n_trees + t] = the leaf-value row that row r reaches in tree t, for rows [0, n).
 *
 * Each row walks `lanes` trees at a time. A pass moves every walking tree one level down and prefetches
 * its next node as soon as it is known, so all lanes' memory loads are in flight together; a tree that
 * reaches its leaf hands its lane to the next tree at once, so the loads in flight stay at `lanes` until
 * the last trees. (Walking fixed blocks of trees instead, each block's deep tail runs with few lanes:
 * 1.2-1.3x slower per row and per batch on the seed forest.) */
static void walk(const Forest *f, const double *rows, Py_ssize_t stride, Py_ssize_t n, int32_t *leaf) {
    const int32_t *ints = ints_of(f);
    const double *floats = floats_of(f);
    const int64_t *roots = (const int64_t *)f->roots.buf;
    const int64_t *meta = (const int64_t *)f->cat_meta.buf;
    const double *categories = (const double *)f->cat_values.buf;
    uint64_t node_at[MAX_LANES];
    int32_t tree_at[MAX_LANES];
    for (Py_ssize_t r = 0; r < n; r++) {
        const double *x = rows + r * stride;
        int32_t *reached = leaf + r * f->n_trees;
        int32_t next_tree = 0;
        int active = 0;
        while (active < f->lanes && next_tree < f->n_trees) {
            node_at[active] = (uint64_t)roots[next_tree];
            tree_at[active++] = next_tree++;
        }
        while (active > 0) {
            int j = 0;
            while (j < active) {
                uint64_t node = node_at[j];
                const int32_t *at = ints + 4 * node;
                int32_t feature = at[0];
                uint64_t next;
                if (feature >= 0) {
                    /* NaN <= t is false, so NaN goes right as in MLeap. Branch-free (a mask, not a
                       conditional jump): a mispredicted branch would discard the other lanes' loads */
                    uint64_t right = (uint32_t)at[1];
                    uint64_t go_left = x[feature] <= floats[2 * node + 1];
                    next = right ^ ((right ^ (node + 1)) & (0 - go_left));
                } else if (feature == LEAF_MARK) {
                    reached[tree_at[j]] = at[1];
                    if (next_tree == f->n_trees) {
                        active--;
                        node_at[j] = node_at[active];
                        tree_at[j] = tree_at[active];
                        continue;
                    }
                    next = (uint64_t)roots[next_tree];
                    tree_at[j] = next_tree++;
                } else {
                    const int64_t *m = meta + 4 * (-2 - (int64_t)feature);
                    double v = x[m[0]];
                    int found = 0;
                    for (int64_t c = m[2]; c < m[3]; c++) {
                        if (categories[c] == v) {
                            found = 1;
                            break;
                        }
                    }
                    next = found == (m[1] != 0) ? node + 1 : (uint64_t)(uint32_t)at[1];
                }
                __builtin_prefetch(ints + 4 * next, 0, 3);
                node_at[j++] = next;
            }
        }
    }
}

/* out[r] = the sum of row r's leaf values, in tree order so that it does not depend on which tree
   finished first. */
static void sum_reached(const Forest *f, const int32_t *leaf, Py_ssize_t n, double *out) {
    const double *values = (const double *)f->values.buf;
    Py_ssize_t k = f->n_outputs;
    for (Py_ssize_t r = 0; r < n; r++) {
        double *o = out + r * k;
        const int32_t *reached = leaf + r * f->n_trees;
        for (Py_ssize_t c = 0; c < k; c++) o[c] = 0.0;
        for (Py_ssize_t t = 0; t < f->n_trees; t++) {
            const double *v = values + (Py_ssize_t)reached[t] * k;
            for (Py_ssize_t c = 0; c < k; c++) o[c] += v[c];
        }
    }
}

static PyObject *Forest_sum_leaves(Forest *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer rows, out;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sum_leaves(rows, out) takes 2 arguments");
        return NULL;
    }
    if (!self->nodes.obj) {
        PyErr_SetString(PyExc_RuntimeError, "the Forest was not initialised");
        return NULL;
    }
    if (get_array(args[0], &rows, "rows", 'd', 8, 2, 0) < 0) return NULL;
    if (get_array(args[1], &out, "out", 'd', 8, 2, 1) < 0) {
        PyBuffer_Release(&rows);
        return NULL;
    }
    Py_ssize_t n = rows.shape[0];
    PyObject *result = NULL;
    int32_t *leaf = NULL;
    if (rows.shape[1] < self->n_features) {
        PyErr_Format(PyExc_ValueError, "rows have %zd features, the forest needs %zd", rows.shape[1],
                     self->n_features);
    } else if (out.shape[0] != n || out.shape[1] != self->n_outputs) {
        PyErr_Format(PyExc_ValueError, "out must have shape (%zd, %zd)", n, self->n_outputs);
    } else if (n > 0 && !(leaf = PyMem_RawMalloc(sizeof(int32_t) * (size_t)self->n_trees *
                                                   (size_t)(n < CHUNK_ROWS ? n : CHUNK_ROWS)))) {
        PyErr_NoMemory();
    } else {
        const double *x = (const double *)rows.buf;
        double *o = (double *)out.buf;
        Py_ssize_t stride = rows.shape[1];
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t start = 0; start < n; start += CHUNK_ROWS) {
            Py_ssize_t count = n - start < CHUNK_ROWS ? n - start : CHUNK_ROWS;
            walk(self, x + start * stride, stride, count, leaf);
            sum_reached(self, leaf, count, o + start * self->n_outputs);
        }
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyMem_RawFree(leaf);
    PyBuffer_Release(&out);
    PyBuffer_Release(&rows);
    return result;
}

static PyMethodDef Forest_methods[] = {
    {"sum_leaves", (PyCFunction)(void (*)(void))Forest_sum_leaves, METH_FASTCALL,
     "sum_leaves(rows, out): out[r] = the sum over all trees of the leaf values row r reaches.\n\n"
     "rows: float64 [n, >= n_features], C-contiguous; out: float64 [n, n_outputs], written. Runs without "
     "the GIL."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ForestType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scorer.trees._walk.Forest",
    .tp_doc = PyDoc_STR("Forest(nodes, roots, values, cat_meta, cat_values, n_features, lanes): a packed "
                        "forest, checked once, ready to score (see scorer.trees.forest for the arrays)."),
    .tp_basicsize = sizeof(Forest),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Forest_init,
    .tp_dealloc = (destructor)Forest_dealloc,
    .tp_methods = Forest_methods,
};

static struct PyModuleDef walk_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "scorer.trees._walk",
    .m_doc = PyDoc_STR("The forest kernel: rows scored against a packed forest, trees walked in lockstep."),
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__walk(void) {
    if (PyType_Ready(&ForestType) < 0) return NULL;
    PyObject *module = PyModule_Create(&walk_module);
    if (!module) return NULL;
    if (PyModule_AddObjectRef(module, "Forest", (PyObject *)&ForestType) < 0 ||
        PyModule_AddIntConstant(module, "LEAF_MARK", LEAF_MARK) < 0 ||
        PyModule_AddIntConstant(module, "MAX_LANES", MAX_LANES) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
