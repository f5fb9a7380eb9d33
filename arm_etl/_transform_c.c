/* The transform's hot path in C: arm_etl.transform._Walk over an item, compiled.
 *
 * Each function here mirrors one method of the pure-Python _Walk (same name, same order of
 * visits, same cells, same lines), which stays the reference and the fallback where this module cannot
 * be built: tests/test_transform_compiled.py checks both give byte-identical results. Only the common
 * cells are encoded here (a VARCHAR string, a plain BIGINT, a plain DECIMAL, a BOOLEAN; see
 * arm_etl.encoders.compiled_kind); every other cell, every SUPER value and every rejected value calls
 * back into the Python methods, so a rule lives in one place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum { K_PYTHON = 0, K_VARCHAR = 1, K_BIGINT = 2, K_DECIMAL = 3, K_BOOLEAN = 4, K_TIMESTAMPTZ = 5, K_DATE = 6 };
enum { T_OTHER, T_S, T_N, T_B, T_BOOL, T_NULL, T_M, T_L, T_SS, T_NS, T_BS };

static PyObject *RejectType;  /* arm_etl.encoders.Reject */
static PyObject *s_children, *s_fast_enc, *s_fast_slot, *s_kind, *s_col, *s_is_super, *s_row_children, *s_list_plan, *s_element, *s_yields_rows, *s_ncols, *s_no, *s_key_slots,
    *s_idx_slots, *s_lines, *s_idx, *s_key_cells, *s_reason, *s_unknown, *s_cell_tag, *s_reject_at,
    *s_set_elements, *s_reject, *s_M, *s_true, *s_false, *r_nul, *r_too_long, *r_invalid_utf8,
    *r_type_drift, *r_new_table;

/* What the walk reads of a PathNode (or of a Plan), read once per batch: attribute lookups on every
 * cell cost more than the encoding. Strong references, released when the batch ends. */
typedef struct {
    PyObject *obj;
    /* PathNode */
    PyObject *children, *enc, *row_children, *plan, *element;
    Py_ssize_t slot, kind, a, b;
    int super, yields;
    /* Plan */
    PyObject *key_slots, *idx_slots, *lines;
    Py_ssize_t ncols;
} Info;

typedef struct {
    Info **tab;
    size_t cap, used;
} Cache;

typedef struct {
    PyObject *self;  /* the batch's walk (transform._Walk): its methods are the callbacks */
    PyObject *null;  /* the dialect's NULL text */
    PyObject *tail;  /* ",<segment>,<extracted_at>\n" */
    PyObject *lines; /* the walk's lines: one list per plan, by ``plan.no`` */
    Cache cache;
} T;

static int tag_of(PyObject *tag) {
    if (!PyUnicode_Check(tag) || !PyUnicode_IS_ASCII(tag)) return T_OTHER;
    Py_ssize_t n = PyUnicode_GET_LENGTH(tag);
    const char *c = (const char *)PyUnicode_DATA(tag);
    if (n == 1) {
        switch (c[0]) {
            case 'S': return T_S;
            case 'N': return T_N;
            case 'B': return T_B;
            case 'M': return T_M;
            case 'L': return T_L;
        }
        return T_OTHER;
    }
    if (n == 2 && c[1] == 'S') {
        switch (c[0]) {
            case 'S': return T_SS;
            case 'N': return T_NS;
            case 'B': return T_BS;
        }
        return T_OTHER;
    }
    if (n == 4 && memcmp(c, "BOOL", 4) == 0) return T_BOOL;
    if (n == 4 && memcmp(c, "NULL", 4) == 0) return T_NULL;
    return T_OTHER;
}

static int not_plain(int t) { /* transform._NOT_PLAIN */
    return t == T_M || t == T_L || t == T_SS || t == T_NS || t == T_BS || t == T_NULL;
}


/* ------------------------------------------------------------------------------------ cell encoders */

/* One pass over a string's characters: NUL present, quotes, UTF-8 bytes, surrogates present. Branch-free
 * so the compiler vectorises it: a cell may be a 64 KB string. */
#define SCAN_BODY(TYPE)                                                     \
    do {                                                                    \
        const TYPE *p = (const TYPE *)data;                                 \
        for (Py_ssize_t i = 0; i < n; i++) {                                \
            Py_UCS4 ch = p[i];                                              \
            nul |= ch == 0;                                                 \
            quotes += ch == '"';                                            \
            nbytes += 1 + (ch >= 0x80) + (ch >= 0x800) + (ch >= 0x10000);   \
            sur |= (Py_UCS4)(ch - 0xD800) < 0x800;                          \
        }                                                                   \
    } while (0)

/* encoders.encoder_for("VARCHAR(n)") on an "S" (or "N") value: the same checks in the same order (NUL,
 * characters over the limit, no UTF-8 form, UTF-8 bytes over the limit), then quoted with "" doubled.
 * Returns a new reference, NULL with *reason set for a reject, or NULL with an exception set. */
static PyObject *enc_varchar(PyObject *s, Py_ssize_t limit, PyObject **reason) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t quotes = 0, nbytes = 0;
    int nul = 0, sur = 0;
    if (kind == PyUnicode_1BYTE_KIND) SCAN_BODY(Py_UCS1);
    else if (kind == PyUnicode_2BYTE_KIND) SCAN_BODY(Py_UCS2);
    else SCAN_BODY(Py_UCS4);
    if (nul) {
        *reason = r_nul;
        return NULL;
    }
    if (n > limit) {
        *reason = r_too_long;
        return NULL;
    }
    if (sur) {
        *reason = r_invalid_utf8;
        return NULL;
    }
    if (nbytes > limit) {
        *reason = r_too_long;
        return NULL;
    }
    PyObject *out = PyUnicode_New(n + quotes + 2, PyUnicode_MAX_CHAR_VALUE(s));
    if (!out) return NULL;
    int okind = PyUnicode_KIND(out);
    void *odata = PyUnicode_DATA(out);
    if (quotes == 0 && okind == kind) {
        PyUnicode_WRITE(okind, odata, 0, '"');
        memcpy((char *)odata + kind, data, (size_t)n * (size_t)kind);
        PyUnicode_WRITE(okind, odata, n + 1, '"');
        return out;
    }
    Py_ssize_t j = 0;
    PyUnicode_WRITE(okind, odata, j++, '"');
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch == '"') PyUnicode_WRITE(okind, odata, j++, '"');
        PyUnicode_WRITE(okind, odata, j++, ch);
    }
    PyUnicode_WRITE(okind, odata, j, '"');
    return out;
}

/* encoders._PLAIN_INT: ^-?[0-9]{1,18}$ (without the regex's allowance for a trailing newline, which
 * leaves such a value to the Python encoder). */
static int plain_int(const char *c, Py_ssize_t n) {
    Py_ssize_t i = (n > 0 && c[0] == '-') ? 1 : 0;
    if (n - i < 1 || n - i > 18) return 0;
    for (; i < n; i++)
        if (c[i] < '0' || c[i] > '9') return 0;
    return 1;
}

/* encoders._PLAIN_DEC: ^-?([0-9]+)(?:\.([0-9]+))?$ with the digit-room checks of enc_decimal.
 * Returns 1 (fits: the cell is the value itself), 0 (reject type_drift), -1 (not plain: Python decides). */
static int plain_decimal(const char *c, Py_ssize_t n, Py_ssize_t int_room, Py_ssize_t frac_room) {
    Py_ssize_t i = (n > 0 && c[0] == '-') ? 1 : 0;
    Py_ssize_t start = i;
    while (i < n && c[i] >= '0' && c[i] <= '9') i++;
    Py_ssize_t int_end = i;
    if (int_end == start) return -1;
    Py_ssize_t frac = 0;
    if (i < n) {
        if (c[i] != '.') return -1;
        i++;
        Py_ssize_t fs = i;
        while (i < n && c[i] >= '0' && c[i] <= '9') i++;
        if (i != n || i == fs) return -1;
        frac = i - fs;
    }
    Py_ssize_t lead = start;
    while (lead < int_end && c[lead] == '0') lead++;
    if (int_end - lead > int_room || frac > frac_room) return 0;
    return 1;
}

/* lattice.is_timestamp / is_date, but only ever answering "valid" for what those accept: an ASCII value
 * of exactly their regex's shape whose fields make a real date-time (year 1 or later, the day within its
 * month, hour < 24, minute and second < 60). Anything else is left to the Python encoder. */
static int digits(const char *c, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (c[i] < '0' || c[i] > '9') return -1;
        v = v * 10 + (c[i] - '0');
    }
    return v;
}

static int valid_date(const char *c) { /* YYYY-MM-DD */
    if (c[4] != '-' || c[7] != '-') return 0;
    int y = digits(c, 4), m = digits(c + 5, 2), d = digits(c + 8, 2);
    if (y < 1 || m < 1 || m > 12 || d < 1) return 0;
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= dim[m - 1] + (m == 2 && leap);
}

static int valid_timestamp(const char *c, Py_ssize_t n) {
    if (n < 20 || !valid_date(c) || c[10] != 'T' || c[13] != ':' || c[16] != ':') return 0;
    int hh = digits(c + 11, 2), mi = digits(c + 14, 2), ss = digits(c + 17, 2);
    if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59) return 0;
    Py_ssize_t i = 19;
    if (c[i] == '.') {
        Py_ssize_t f = ++i;
        while (i < n && c[i] >= '0' && c[i] <= '9') i++;
        if (i == f || i - f > 6) return 0;
    }
    if (i + 1 == n && c[i] == 'Z') return 1;
    if (i + 6 != n || (c[i] != '+' && c[i] != '-') || c[i + 3] != ':') return 0;
    int oh = digits(c + i + 1, 2), om = digits(c + i + 4, 2);
    return oh >= 0 && oh <= 14 && om >= 0 && om <= 59;
}

/* One plain cell by the node's compiled kind. Returns a new reference; NULL with *reason set for a
 * reject; NULL with an exception set; or NULL with neither for "the Python encoder decides". */
static PyObject *enc_fast(int kind, Py_ssize_t a, Py_ssize_t b, int t, PyObject *v, PyObject **reason) {
    switch (kind) {
        case K_VARCHAR: /* encoders._canonical_text: a number's text, a boolean's word; binary in Python */
            if ((t == T_S || t == T_N) && PyUnicode_CheckExact(v)) return enc_varchar(v, a, reason);
            if (t == T_BOOL) {
                int truth = PyObject_IsTrue(v);
                if (truth < 0) return NULL;
                return PyUnicode_FromString(truth ? "\"true\"" : "\"false\"");
            }
            return NULL;
        case K_TIMESTAMPTZ:
        case K_DATE:
            if (t == T_S && PyUnicode_CheckExact(v) && PyUnicode_IS_ASCII(v)) {
                const char *c = (const char *)PyUnicode_DATA(v);
                Py_ssize_t len = PyUnicode_GET_LENGTH(v);
                if (kind == K_DATE ? len == 10 && valid_date(c) : valid_timestamp(c, len)) {
                    Py_INCREF(v);
                    return v;
                }
            }
            return NULL;
        case K_BIGINT:
            if (t == T_N && PyUnicode_CheckExact(v) && PyUnicode_IS_ASCII(v) &&
                plain_int((const char *)PyUnicode_DATA(v), PyUnicode_GET_LENGTH(v))) {
                Py_INCREF(v);
                return v;
            }
            return NULL;
        case K_DECIMAL:
            if (t == T_N && PyUnicode_CheckExact(v) && PyUnicode_IS_ASCII(v)) {
                int r = plain_decimal((const char *)PyUnicode_DATA(v), PyUnicode_GET_LENGTH(v), a, b);
                if (r == 1) {
                    Py_INCREF(v);
                    return v;
                }
                if (r == 0) *reason = r_type_drift;
            }
            return NULL;
        case K_BOOLEAN:
            if (t == T_BOOL) {
                int truth = PyObject_IsTrue(v);
                if (truth < 0) return NULL;
                PyObject *out = truth ? s_true : s_false;
                Py_INCREF(out);
                return out;
            }
            return NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ the walk */

static void info_free(Info *in) {
    Py_XDECREF(in->obj);
    Py_XDECREF(in->children);
    Py_XDECREF(in->enc);
    Py_XDECREF(in->row_children);
    Py_XDECREF(in->plan);
    Py_XDECREF(in->element);
    Py_XDECREF(in->key_slots);
    Py_XDECREF(in->idx_slots);
    Py_XDECREF(in->lines);
    PyMem_Free(in);
}

static void cache_clear(Cache *c) {
    for (size_t i = 0; i < c->cap; i++)
        if (c->tab[i]) info_free(c->tab[i]);
    PyMem_Free(c->tab);
    c->tab = NULL;
    c->cap = c->used = 0;
}

static Py_ssize_t ssize_of(PyObject *o, PyObject *name, int *ok) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v) {
        *ok = 0;
        return -1;
    }
    Py_ssize_t r = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    if (r == -1 && PyErr_Occurred()) *ok = 0;
    return r;
}

static PyObject *attr_of(PyObject *o, PyObject *name, int *ok) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (!v) *ok = 0;
    return v;
}

/* The node's column (None, or a pathtree._Col): whether it is SUPER, and its compiled kind (kind, a, b). */
static int fill_col(Info *in, PyObject *col) {
    if (col == Py_None) return 0;
    PyObject *v = PyObject_GetAttr(col, s_is_super);
    if (!v) return -1;
    in->super = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (in->super < 0) return -1;
    PyObject *kind = PyObject_GetAttr(col, s_kind);
    if (!kind) return -1;
    int ok = PyArg_ParseTuple(kind, "nnn", &in->kind, &in->a, &in->b);
    Py_DECREF(kind);
    return ok ? 0 : -1;
}

static int fill_node(Info *in, PyObject *node) {
    int ok = 1;
    in->children = attr_of(node, s_children, &ok);
    in->enc = attr_of(node, s_fast_enc, &ok);
    in->row_children = attr_of(node, s_row_children, &ok);
    in->plan = attr_of(node, s_list_plan, &ok);
    in->element = attr_of(node, s_element, &ok);
    if (!ok) return -1;
    if (!PyDict_Check(in->children) || !PyDict_Check(in->row_children)) {
        PyErr_SetString(PyExc_TypeError, "a node's children must be dicts");
        return -1;
    }
    in->slot = ssize_of(node, s_fast_slot, &ok);
    PyObject *yields = attr_of(node, s_yields_rows, &ok);
    PyObject *col = attr_of(node, s_col, &ok);
    if (ok) {
        in->yields = PyObject_IsTrue(yields);
        ok = in->yields >= 0 && fill_col(in, col) == 0;
    }
    Py_XDECREF(yields);
    Py_XDECREF(col);
    return ok ? 0 : -1;
}

/* A plan's layout, and its lines in this batch: ``walk.lines[plan.no]``. */
static int fill_plan(T *t, Info *in, PyObject *plan) {
    int ok = 1;
    in->key_slots = attr_of(plan, s_key_slots, &ok);
    in->idx_slots = attr_of(plan, s_idx_slots, &ok);
    in->ncols = ssize_of(plan, s_ncols, &ok);
    Py_ssize_t no = ssize_of(plan, s_no, &ok);
    if (!ok) return -1;
    if (!PyList_Check(in->key_slots) || !PyList_Check(in->idx_slots) || in->ncols < 0) {
        PyErr_SetString(PyExc_TypeError, "a plan's slots must be lists, its column count >= 0");
        return -1;
    }
    if (no < 0 || no >= PyList_GET_SIZE(t->lines) || !PyList_Check(PyList_GET_ITEM(t->lines, no))) {
        PyErr_SetString(PyExc_IndexError, "a plan's number has no list in the batch's lines");
        return -1;
    }
    in->lines = PyList_GET_ITEM(t->lines, no);
    Py_INCREF(in->lines);
    return 0;
}

/* The Info of a node or a plan (``is_plan``), read on first use in this batch. */
static Info *info(T *t, PyObject *obj, int is_plan) {
    Cache *c = &t->cache;
    if (c->used * 2 >= c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        Info **tab = PyMem_Calloc(cap, sizeof(Info *));
        if (!tab) {
            PyErr_NoMemory();
            return NULL;
        }
        for (size_t i = 0; i < c->cap; i++) {
            Info *in = c->tab[i];
            if (!in) continue;
            size_t h = ((uintptr_t)in->obj >> 4) & (cap - 1);
            while (tab[h]) h = (h + 1) & (cap - 1);
            tab[h] = in;
        }
        PyMem_Free(c->tab);
        c->tab = tab;
        c->cap = cap;
    }
    size_t h = ((uintptr_t)obj >> 4) & (c->cap - 1);
    while (c->tab[h]) {
        if (c->tab[h]->obj == obj) return c->tab[h];
        h = (h + 1) & (c->cap - 1);
    }
    Info *in = PyMem_Calloc(1, sizeof(Info));
    if (!in) {
        PyErr_NoMemory();
        return NULL;
    }
    Py_INCREF(obj);
    in->obj = obj;
    if ((is_plan ? fill_plan(t, in, obj) : fill_node(in, obj)) < 0) {
        info_free(in);
        return NULL;
    }
    c->tab[h] = in;
    c->used++;
    return in;
}

static int reject_at(T *t, PyObject *ctx, PyObject *av, PyObject *reason, PyObject *node) {
    PyObject *r = PyObject_CallMethodObjArgs(t->self, s_reject_at, ctx, av, reason, node, NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int set_cell(PyObject *row, Py_ssize_t slot, PyObject *cell) {
    if (slot < 0 || slot >= PyList_GET_SIZE(row)) {
        Py_DECREF(cell);
        PyErr_Format(PyExc_IndexError, "cell slot %zd outside a row of %zd", slot, PyList_GET_SIZE(row));
        return -1;
    }
    PyList_SetItem(row, slot, cell);
    return 0;
}

static int check_dict(PyObject *av) {
    if (PyDict_Check(av)) return 0;
    PyErr_Format(PyExc_TypeError, "an attribute value must be a dict, not %.50s", Py_TYPE(av)->tp_name);
    return -1;
}

/* Encode one plain (tag, value) of a node with a fast encoder: C where its kind allows, else Python. */
static int plain_cell(T *t, Info *node, PyObject *tag, int tt, PyObject *v, PyObject *av, PyObject *row,
                      PyObject *ctx) {
    PyObject *cell = NULL, *reason = NULL;
    if (node->kind != K_PYTHON) {
        cell = enc_fast((int)node->kind, node->a, node->b, tt, v, &reason);
        if (!cell && PyErr_Occurred()) return -1;
    }
    if (!cell && !reason) {
        cell = PyObject_CallFunctionObjArgs(node->enc, tag, v, NULL);
        if (!cell) {
            if (!PyErr_ExceptionMatches(RejectType)) return -1;
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            PyObject *why = value ? PyObject_GetAttr(value, s_reason) : NULL;
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            if (!why) return -1;
            int rc = reject_at(t, ctx, av, why, node->obj);
            Py_DECREF(why);
            return rc;
        }
    }
    if (!cell) return reject_at(t, ctx, av, reason, node->obj);
    return set_cell(row, node->slot, cell);
}

static int walk_map(T *t, Info *node, PyObject *m, PyObject *row, PyObject *ctx);

/* _Walk._cell_tag: a map (not under SUPER) is walked here; everything else is Python's. */
static int cell_tag(T *t, Info *node, PyObject *tag, int tt, PyObject *v, PyObject *av, PyObject *row,
                    PyObject *ctx) {
    if (tt == T_M && !node->super && PyDict_Check(v)) return PyDict_GET_SIZE(v) ? walk_map(t, node, v, row, ctx) : 0;
    PyObject *r = PyObject_CallMethodObjArgs(t->self, s_cell_tag, node->obj, tag, v, av, row, ctx, NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* The cells of one attribute value at a node: _Walk._cell, or the fast-encoder loop of _walk_map. */
static int value_cells(T *t, Info *node, PyObject *av, PyObject *row, PyObject *ctx) {
    if (check_dict(av) < 0) return -1;
    int fast = node->enc != Py_None;
    Py_ssize_t pos = 0;
    PyObject *tag, *v;
    while (PyDict_Next(av, &pos, &tag, &v)) {
        int tt = tag_of(tag);
        int rc = fast && !not_plain(tt) ? plain_cell(t, node, tag, tt, v, av, row, ctx)
                                        : cell_tag(t, node, tag, tt, v, av, row, ctx);
        if (rc < 0) return -1;
    }
    return 0;
}

/* _Walk._walk_map */
static int walk_map(T *t, Info *node, PyObject *m, PyObject *row, PyObject *ctx) {
    if (check_dict(m) < 0) return -1;
    int rc = 0;
    Py_ssize_t pos = 0;
    PyObject *key, *av;
    PyObject *children = node->children;
    Py_INCREF(m);
    while (rc == 0 && PyDict_Next(m, &pos, &key, &av)) {
        PyObject *child = PyDict_GetItemWithError(children, key);
        if (!child) {
            if (PyErr_Occurred()) {
                rc = -1;
                break;
            }
            PyObject *r = PyObject_CallMethodObjArgs(t->self, s_unknown, node->obj, key, av, ctx, NULL);
            Py_XDECREF(r);
            rc = r ? 0 : -1;
            continue;
        }
        Info *in = info(t, child, 0);
        rc = in ? value_cells(t, in, av, row, ctx) : -1;
    }
    Py_DECREF(m);
    return rc;
}

static int children_of(T *t, Info *node, PyObject *av, PyObject *ctx);

/* _Walk._children */
static int children(T *t, Info *node, PyObject *m, PyObject *ctx) {
    int rc = 0;
    Py_ssize_t pos = 0;
    PyObject *key, *av;
    Py_INCREF(m);
    while (rc == 0 && PyDict_Next(m, &pos, &key, &av)) {
        PyObject *child = PyDict_GetItemWithError(node->row_children, key);
        if (!child) {
            if (PyErr_Occurred()) rc = -1;
            continue;
        }
        Info *in = info(t, child, 0);
        rc = in ? children_of(t, in, av, ctx) : -1;
    }
    Py_DECREF(m);
    return rc;
}

static int list_rows(T *t, Info *node, PyObject *tag, int tt, PyObject *values, PyObject *ctx);

/* _Walk._children_of */
static int children_of(T *t, Info *node, PyObject *av, PyObject *ctx) {
    if (check_dict(av) < 0) return -1;
    Py_ssize_t pos = 0;
    PyObject *tag, *v;
    while (PyDict_Next(av, &pos, &tag, &v)) {
        if (node->super) return 0;
        int tt = tag_of(tag);
        int truth = PyObject_IsTrue(v);
        if (truth < 0) return -1;
        if (tt == T_M) {
            if (truth && PyDict_GET_SIZE(node->row_children)) {
                if (check_dict(v) < 0 || children(t, node, v, ctx) < 0) return -1;
            }
        } else if ((tt == T_L || tt == T_SS || tt == T_NS || tt == T_BS) && truth && node->plan != Py_None) {
            if (list_rows(t, node, tag, tt, v, ctx) < 0) return -1;
        }
    }
    return 0;
}

/* ",".join(row) + tail, built in one allocation (a line may hold a 64 KB string: copied once, not twice) */
static PyObject *row_line(T *t, PyObject *row) {
    Py_ssize_t n = PyList_GET_SIZE(row);
    Py_ssize_t len = PyUnicode_GET_LENGTH(t->tail) + (n > 0 ? n - 1 : 0);
    Py_UCS4 maxchar = PyUnicode_MAX_CHAR_VALUE(t->tail);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PyList_GET_ITEM(row, i);
        if (!PyUnicode_Check(c)) {
            PyErr_Format(PyExc_TypeError, "a cell must be str, not %.50s", Py_TYPE(c)->tp_name);
            return NULL;
        }
        len += PyUnicode_GET_LENGTH(c);
        Py_UCS4 mc = PyUnicode_MAX_CHAR_VALUE(c);
        if (mc > maxchar) maxchar = mc;
    }
    PyObject *line = PyUnicode_New(len, maxchar);
    if (!line) return NULL;
    int kind = PyUnicode_KIND(line);
    char *out = (char *)PyUnicode_DATA(line);
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i <= n; i++) {
        PyObject *c = i < n ? PyList_GET_ITEM(row, i) : t->tail;
        if (i > 0 && i < n) PyUnicode_WRITE(kind, out, at++, ',');
        Py_ssize_t cl = PyUnicode_GET_LENGTH(c);
        if (PyUnicode_KIND(c) == kind) memcpy(out + at * kind, PyUnicode_DATA(c), (size_t)(cl * kind));
        else if (PyUnicode_CopyCharacters(line, at, c, 0, cl) < 0) {
            Py_DECREF(line);
            return NULL;
        }
        at += cl;
    }
    return line;
}

static int append_line(T *t, Info *plan, PyObject *row) {
    PyObject *line = row_line(t, row);
    if (!line) return -1;
    int rc = PyList_Append(plan->lines, line);
    Py_DECREF(line);
    return rc;
}

static PyObject *null_row(T *t, Py_ssize_t ncols) {
    PyObject *row = PyList_New(ncols);
    if (!row) return NULL;
    for (Py_ssize_t i = 0; i < ncols; i++) {
        Py_INCREF(t->null);
        PyList_SET_ITEM(row, i, t->null);
    }
    return row;
}

/* _Walk._list: one child-table row per element, its children's rows after it. */
static int list_rows(T *t, Info *node, PyObject *tag, int tt, PyObject *values, PyObject *ctx) {
    int rc = -1;
    PyObject *elements = NULL, *idx = NULL, *base = NULL, *key_cells = NULL, *seq = NULL;
    if (node->element == Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "a list plan without an element node");
        return -1;
    }
    Info *plan = info(t, node->plan, 1);
    if (!plan) return -1;
    Info *element = info(t, node->element, 0);
    if (!element) return -1;
    if (tt == T_L) {
        elements = values;
        Py_INCREF(elements);
    } else {
        elements = PyObject_CallMethodObjArgs(t->self, s_set_elements, tag, values, NULL);
    }
    if (!elements) goto done;
    idx = PyObject_GetAttr(ctx, s_idx);
    key_cells = PyObject_GetAttr(ctx, s_key_cells);
    if (!idx || !key_cells) goto done;
    if (!PyList_Check(idx) || !PyList_Check(key_cells)) {
        PyErr_SetString(PyExc_TypeError, "key cells and positions must be lists");
        goto done;
    }
    Py_ssize_t ncols = plan->ncols;
    if (!(base = null_row(t, ncols))) goto done;
    Py_ssize_t nkeys = PyList_GET_SIZE(plan->key_slots);
    if (nkeys != PyList_GET_SIZE(key_cells)) {
        PyErr_SetString(PyExc_ValueError, "zip() arguments differ in length (key slots, key cells)");
        goto done;
    }
    for (Py_ssize_t i = 0; i < nkeys; i++) {
        Py_ssize_t s = PyLong_AsSsize_t(PyList_GET_ITEM(plan->key_slots, i));
        if (s == -1 && PyErr_Occurred()) goto done;
        PyObject *c = PyList_GET_ITEM(key_cells, i);
        Py_INCREF(c);
        if (set_cell(base, s, c) < 0) goto done;
    }
    Py_ssize_t nidx = PyList_GET_SIZE(plan->idx_slots);
    Py_ssize_t depth = PyList_GET_SIZE(idx);
    if (nidx != depth + 1) {
        PyErr_SetString(PyExc_ValueError, "zip() arguments differ in length (position slots, positions)");
        goto done;
    }
    for (Py_ssize_t i = 0; i < nidx; i++) {
        Py_ssize_t s = PyLong_AsSsize_t(PyList_GET_ITEM(plan->idx_slots, i));
        if (s == -1 && PyErr_Occurred()) goto done;
        PyObject *pos = i < depth ? PyObject_Str(PyList_GET_ITEM(idx, i)) : PyUnicode_FromString("0");
        if (!pos || set_cell(base, s, pos) < 0) goto done;
    }
    Py_ssize_t last = PyLong_AsSsize_t(PyList_GET_ITEM(plan->idx_slots, nidx - 1));
    if (last == -1 && PyErr_Occurred()) goto done;
    seq = PySequence_Fast(elements, "list elements must be a sequence");
    if (!seq) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *av = PySequence_Fast_GET_ITEM(seq, i);
        Py_INCREF(av);
        PyObject *row = PyList_GetSlice(base, 0, ncols);
        PyObject *pos = row ? PyUnicode_FromFormat("%zd", i) : NULL;
        int ok = pos != NULL && set_cell(row, last, pos) == 0;
        PyObject *position = ok ? PyLong_FromSsize_t(i) : NULL;
        ok = position != NULL && PyList_Append(idx, position) == 0;
        Py_XDECREF(position);
        if (ok) {
            ok = value_cells(t, element, av, row, ctx) == 0;
            ok = ok && append_line(t, plan, row) == 0;
            ok = ok && (!element->yields || children_of(t, element, av, ctx) == 0);
            if (PyList_GET_SIZE(idx) > depth && PyList_SetSlice(idx, depth, PyList_GET_SIZE(idx), NULL) < 0) ok = 0;
        }
        Py_XDECREF(row);
        Py_DECREF(av);
        if (!ok) goto done;
    }
    rc = 0;
done:
    Py_XDECREF(seq);
    Py_XDECREF(base);
    Py_XDECREF(key_cells);
    Py_XDECREF(idx);
    Py_XDECREF(elements);
    return rc;
}

/* One item: _Walk.transform_items' loop body. */
static int one_item(T *t, PyObject *item, PyObject *roots, PyObject *route_of, PyObject *ctx_type) {
    int rc = -1;
    PyObject *ctx = NULL, *row = NULL, *cells = NULL;
    PyObject *route = PyObject_CallOneArg(route_of, item);
    if (!route) return -1;
    ctx = PyObject_CallFunctionObjArgs(ctx_type, item, route, NULL);
    if (!ctx) goto done;
    PyObject *entry = PyDict_GetItemWithError(roots, route);
    if (!entry) {
        if (PyErr_Occurred()) goto done;
        PyObject *whole = Py_BuildValue("{OO}", s_M, item);
        PyObject *path = PyList_New(0);
        PyObject *r = whole && path ? PyObject_CallMethodObjArgs(t->self, s_reject, ctx, whole, r_new_table, path, NULL)
                                    : NULL;
        Py_XDECREF(whole);
        Py_XDECREF(path);
        Py_XDECREF(r);
        rc = r ? 0 : -1;
        goto done;
    }
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
        PyErr_SetString(PyExc_TypeError, "a root must be (trie, plan)");
        goto done;
    }
    Info *trie = info(t, PyTuple_GET_ITEM(entry, 0), 0);
    Info *plan = trie ? info(t, PyTuple_GET_ITEM(entry, 1), 1) : NULL;
    if (!plan) goto done;
    if (!(row = null_row(t, plan->ncols))) goto done;
    if (walk_map(t, trie, item, row, ctx) < 0) goto done;
    Py_ssize_t nkeys = PyList_GET_SIZE(plan->key_slots);
    if (!(cells = PyList_New(nkeys))) goto done;
    for (Py_ssize_t i = 0; i < nkeys; i++) {
        Py_ssize_t s = PyLong_AsSsize_t(PyList_GET_ITEM(plan->key_slots, i));
        if (s < 0 || s >= plan->ncols) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_IndexError, "key slot outside the row");
            goto done;
        }
        PyObject *c = PyList_GET_ITEM(row, s);
        Py_INCREF(c);
        PyList_SET_ITEM(cells, i, c);
    }
    if (PyObject_SetAttr(ctx, s_key_cells, cells) < 0) goto done;
    if (append_line(t, plan, row) < 0) goto done;
    if (PyDict_GET_SIZE(trie->row_children) && children(t, trie, item, ctx) < 0) goto done;
    rc = 0;
done:
    Py_XDECREF(cells);
    Py_XDECREF(row);
    Py_XDECREF(ctx);
    Py_XDECREF(route);
    return rc;
}

/* The loop of Transformer.transform over a batch (one _Walk): returns the number of items. */
static PyObject *py_transform_items(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "transform_items(walk, items, roots, route, ctx_type, null, tail)");
        return NULL;
    }
    T t = {args[0], args[5], args[6], NULL, {NULL, 0, 0}};
    PyObject *roots = args[2], *route_of = args[3], *ctx_type = args[4];
    if (!PyDict_Check(roots) || !PyUnicode_Check(t.null) || !PyUnicode_Check(t.tail)) {
        PyErr_SetString(PyExc_TypeError, "roots must be a dict, null and tail str");
        return NULL;
    }
    t.lines = PyObject_GetAttr(t.self, s_lines);
    if (!t.lines) return NULL;
    if (!PyList_Check(t.lines)) {
        Py_DECREF(t.lines);
        PyErr_SetString(PyExc_TypeError, "the walk's lines must be a list");
        return NULL;
    }
    PyObject *it = PyObject_GetIter(args[1]);
    if (!it) {
        Py_DECREF(t.lines);
        return NULL;
    }
    Py_ssize_t count = 0;
    PyObject *item;
    int rc = 0;
    while (rc == 0 && (item = PyIter_Next(it))) {
        count++;
        rc = one_item(&t, item, roots, route_of, ctx_type);
        Py_DECREF(item);
    }
    Py_DECREF(it);
    cache_clear(&t.cache);
    Py_DECREF(t.lines);
    if (rc < 0 || PyErr_Occurred()) return NULL;
    return PyLong_FromSsize_t(count);
}

/* upload._utf8_parts: CSV lines as UTF-8, packed greedily into parts of at most part_size bytes (a line is
 * never split; a line over part_size is a part of its own). Returns [(bytes, lines)]. Each line is encoded
 * into its part's buffer directly: no bytes object per line, no join. */
static PyObject *py_utf8_parts(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "utf8_parts(lines: list[str], part_size: int)");
        return NULL;
    }
    PyObject *lines = args[0];
    Py_ssize_t part_size = PyLong_AsSsize_t(args[1]);
    if (part_size == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(lines);
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    Py_ssize_t start = 0, size = 0;
    for (Py_ssize_t i = 0; i <= n; i++) {
        Py_ssize_t len = 0;
        if (i < n) {
            PyObject *line = PyList_GET_ITEM(lines, i);
            if (!PyUnicode_Check(line)) {
                PyErr_Format(PyExc_TypeError, "a CSV line must be str, not %.50s", Py_TYPE(line)->tp_name);
                goto fail;
            }
            if (!PyUnicode_AsUTF8AndSize(line, &len)) goto fail; /* a lone surrogate: UnicodeEncodeError */
            if (i == start || size + len <= part_size) {
                size += len;
                continue;
            }
        }
        if (i == start) break; /* no lines at all */
        PyObject *raw = PyBytes_FromStringAndSize(NULL, size);
        if (!raw) goto fail;
        char *dst = PyBytes_AS_STRING(raw);
        for (Py_ssize_t j = start; j < i; j++) {
            Py_ssize_t l;
            const char *src = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(lines, j), &l);
            memcpy(dst, src, (size_t)l);
            dst += l;
        }
        PyObject *part = Py_BuildValue("(Nn)", raw, i - start);
        if (!part || PyList_Append(out, part) < 0) {
            Py_XDECREF(part);
            goto fail;
        }
        Py_DECREF(part);
        start = i;
        size = len;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"utf8_parts", (PyCFunction)(void (*)(void))py_utf8_parts, METH_FASTCALL,
     "utf8_parts(lines, part_size) -> [(bytes, lines)]\n\n"
     "CSV lines as UTF-8 parts of at most part_size bytes (arm_etl.upload._utf8_parts, compiled)."},
    {"transform_items", (PyCFunction)(void (*)(void))py_transform_items, METH_FASTCALL,
     "transform_items(walk, items, roots, route, ctx_type, null, tail) -> items walked\n\n"
     "_Walk.transform_items over a batch, compiled; fills walk.lines[plan.no]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "arm_etl._transform_c",
    "The transform's hot path, compiled (see arm_etl.transform; the pure-Python path is the reference).", -1,
    methods,
};

#define INTERN(var, text)                                  \
    do {                                                   \
        if (!((var) = PyUnicode_InternFromString(text))) \
            return NULL;                                   \
    } while (0)

PyMODINIT_FUNC PyInit__transform_c(void) {
    PyObject *encoders = PyImport_ImportModule("arm_etl.encoders");
    if (!encoders) return NULL;
    RejectType = PyObject_GetAttrString(encoders, "Reject");
    Py_DECREF(encoders);
    if (!RejectType) return NULL;
    INTERN(s_children, "children");
    INTERN(s_fast_enc, "fast_enc");
    INTERN(s_fast_slot, "fast_slot");
    INTERN(s_kind, "kind");
    INTERN(s_col, "col");
    INTERN(s_is_super, "is_super");
    INTERN(s_row_children, "row_children");
    INTERN(s_list_plan, "list_plan");
    INTERN(s_element, "element");
    INTERN(s_yields_rows, "yields_rows");
    INTERN(s_ncols, "ncols");
    INTERN(s_key_slots, "key_slots");
    INTERN(s_idx_slots, "idx_slots");
    INTERN(s_lines, "lines");
    INTERN(s_no, "no");
    INTERN(s_idx, "idx");
    INTERN(s_key_cells, "key_cells");
    INTERN(s_reason, "reason");
    INTERN(s_unknown, "_unknown");
    INTERN(s_cell_tag, "_cell_tag");
    INTERN(s_reject_at, "_reject_at");
    INTERN(s_set_elements, "_set_elements");
    INTERN(s_reject, "_reject");
    INTERN(s_M, "M");
    INTERN(s_true, "true");
    INTERN(s_false, "false");
    INTERN(r_nul, "nul");
    INTERN(r_too_long, "too_long");
    INTERN(r_invalid_utf8, "invalid_utf8");
    INTERN(r_type_drift, "type_drift");
    INTERN(r_new_table, "new_table");
    return PyModule_Create(&module_def);
}
