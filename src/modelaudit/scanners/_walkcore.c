/* _walkcore: the native opcode loop of the symbolic pickle walker.
 *
 * PurePickleWalker (_pickle_vm.py) is the reference; this core must give exactly its results,
 * only faster. It runs the opcode loop over the input buffer with compact C values instead of a
 * Python object per value:
 *
 *   - immediates: None, True, False, int64, double, OPAQUE;
 *   - text and bytes up to LAZY_THRESHOLD as (offset, length) windows on the buffer, validated
 *     when pushed (longer ones are LazyBytes objects, as in the pure walker);
 *   - tuples and containers (list/dict/set/frozenset) as refcounted nodes that keep at most
 *     MAX_KEPT_ITEMS items plus a count, exactly like _pickle_values.Container;
 *   - PY: a Python object handed back by the walker (Global, Call, Persistent, text-opcode values).
 *
 * Data opcodes run here. Opcodes with security meaning (globals, calls, BUILD, EXT, persistent
 * ids, extending a non-container, discarding a Python value) call the walker's act_* methods
 * with their operands materialized as the same symbolic Python values the pure walker uses.
 * A materialized node caches its Python object: identity is preserved, and later additions to
 * a container are mirrored into its Container so Python sees what the pure walker would see.
 *
 * Every read is bounds-checked against `end`; lengths from the file are compared as unsigned
 * against the bytes left, never added to a position first. Nested structures are built,
 * materialized and freed with explicit work lists, never C recursion, so deep input cannot
 * exhaust the C stack. Nodes that end up in reference cycles (a list appended to itself) are
 * freed when the walk ends, through the list of all live nodes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Constants shared with the Python walker; setup() receives their values from it. */
static Py_ssize_t MAX_KEPT = 64, MAX_TUPLE = 1024, LAZY_THRESHOLD = 64 * 1024, EXACT_RUN = 64;
static int64_t DEADLINE_EVERY = 1 << 15;
static Py_ssize_t MEMO_KEEP_ALL = 200000;

/* Python objects the core hands out or raises; set once by setup(). */
static PyObject *Malformed, *BudgetExceeded, *OPAQUE, *ContainerCls, *LazyBytesCls, *PersistentCls;
static PyObject *LineValues, *IntArg, *MemoValue, *GlobalCls, *CallCls;
static PyObject *KindNames[5];
static PyObject *s_buf, *s_end, *s_pos, *s_opcodes, *s_check_deadline, *s_shadow_budget, *s_calls,
    *s_discarded, *s_count, *s_extend, *s_act_global, *s_act_stack_global, *s_act_inst, *s_act_obj,
    *s_act_reduce, *s_act_newobj, *s_act_newobj_ex, *s_act_build, *s_act_ext, *s_act_persid, *s_from_bytes,
    *s_little, *s_APPEND, *s_APPENDS, *s_ADDITEMS, *s_SETITEM, *s_SETITEMS, *s_EXT1, *s_EXT2, *s_EXT4,
    *s_inert, *s_checked_named, *s_REDUCE, *s_NEWOBJ, *s_func, *s_args, *s_pos_field, *s_opcode, *s_pid, *EmptyTuple;
/* whether Call and Persistent may be made without running their __init__ (see make_record) */
static int RecordsDirect;

/* ------------------------------------------------------------------ values */
enum { V_EMPTY = 0, V_NONE, V_TRUE, V_FALSE, V_INT, V_FLOAT, V_OPAQUE, V_TEXT, V_LATIN, V_BYTES, V_NODE, V_PY };
enum { N_TUPLE = 0, N_LIST, N_DICT, N_SET, N_FROZENSET };

struct Node;
/* 16 bytes: the stack and the memo hold millions of these. */
typedef struct {
    uint32_t kind;
    uint32_t len; /* window length (V_TEXT, V_LATIN, V_BYTES), at most LAZY_THRESHOLD */
    union {
        int64_t i;
        double f;
        Py_ssize_t off; /* window offset in the buffer */
        struct Node *node;
        PyObject *obj;
    } u;
} Val;

_Static_assert(sizeof(Val) == 16, "Val must stay 16 bytes");

#define NODE_INLINE 4 /* items kept inside the node: most tuples and containers are small */

typedef struct Node {
    Py_ssize_t rc;
    struct Node *prev, *next; /* every live node, so cycles can be freed at the end */
    struct Node *pending;     /* work list while freeing */
    PyObject *py;             /* materialized object, cached for identity */
    PyObject *pyitems;        /* its items list, when py is a Container */
    int32_t kind;
    int32_t n, cap;           /* kept items (at most MAX_TUPLE or MAX_KEPT), allocated slots */
    int64_t count;            /* containers: items added in total */
    Val *items;               /* inl, or a heap array once a container outgrows it */
    Val inl[];                /* NODE_INLINE slots, or all of a longer tuple's items */
} Node;

typedef struct {
    int64_t key;
    Val v; /* V_EMPTY: free slot (entries are never deleted) */
} HEnt;

struct VMStateObj;
typedef struct State {
    Val *stack;
    Py_ssize_t len, cap;
    Py_ssize_t *marks;
    Py_ssize_t nmarks, mcap;
    /* memo: dense array for the usual small keys, open-addressing hash for the rest */
    Val *dense;
    Py_ssize_t dcap;
    HEnt *hash;
    Py_ssize_t hcap, hused;
    Py_ssize_t memo_len;
    struct State *prev, *next; /* every state of the core */
    struct VMStateObj *owner;  /* the VMState holding it while saved */
} State;

typedef struct {
    PyObject_HEAD
    State *st;         /* the current state */
    State *states;     /* all states */
    Node *nodes;       /* all live nodes */
    int64_t max_stack, max_memo;
    PyObject *max_stack_obj, *max_memo_obj;
    PyObject *bigkeys; /* memo keys beyond int64: Python int -> synthetic negative key */
    int depth;         /* nested run() calls in progress */
} CoreObj;

typedef struct VMStateObj {
    PyObject_HEAD
    CoreObj *core;
    State *st;
} VMStateObj;

static PyTypeObject CoreType, VMStateType;

typedef struct {
    CoreObj *c;
    PyObject *walker;
    PyObject *bufobj;
    const uint8_t *buf;
    Py_ssize_t end;
} Run;

/* ------------------------------------------------------------------ nodes and refcounts */
static Node *node_new(CoreObj *c, int kind, Py_ssize_t inline_items) {
    if (inline_items < NODE_INLINE) inline_items = NODE_INLINE;
    Node *nd = PyMem_Malloc(sizeof(Node) + (size_t)inline_items * sizeof(Val));
    if (!nd) {
        PyErr_NoMemory();
        return NULL;
    }
    nd->rc = 1;
    nd->prev = NULL;
    nd->next = c->nodes;
    if (c->nodes) c->nodes->prev = nd;
    c->nodes = nd;
    nd->pending = NULL;
    nd->py = nd->pyitems = NULL;
    nd->kind = kind;
    nd->n = 0;
    nd->cap = (int32_t)inline_items;
    nd->count = 0;
    nd->items = nd->inl;
    return nd;
}

static void node_unlink_free(CoreObj *c, Node *nd) {
    if (nd->prev) nd->prev->next = nd->next;
    else c->nodes = nd->next;
    if (nd->next) nd->next->prev = nd->prev;
    Py_XDECREF(nd->py);
    Py_XDECREF(nd->pyitems);
    if (nd->items != nd->inl) PyMem_Free(nd->items);
    PyMem_Free(nd);
}

/* Drop one reference; frees the node and whatever it alone kept alive, without recursion. */
static void node_decref(CoreObj *c, Node *nd) {
    if (--nd->rc > 0) return;
    nd->pending = NULL;
    Node *todo = nd;
    while (todo) {
        Node *cur = todo;
        todo = cur->pending;
        for (Py_ssize_t i = 0; i < cur->n; i++) {
            Val *v = &cur->items[i];
            if (v->kind == V_NODE) {
                Node *ch = v->u.node;
                if (--ch->rc == 0) {
                    ch->pending = todo;
                    todo = ch;
                }
            } else if (v->kind == V_PY) {
                Py_DECREF(v->u.obj);
            }
        }
        node_unlink_free(c, cur);
    }
}

static inline void val_incref(const Val *v) {
    if (v->kind == V_NODE) v->u.node->rc++;
    else if (v->kind == V_PY) Py_INCREF(v->u.obj);
}

static inline void val_release(CoreObj *c, Val *v) {
    if (v->kind == V_NODE) node_decref(c, v->u.node);
    else if (v->kind == V_PY) Py_DECREF(v->u.obj);
    v->kind = V_EMPTY;
}

static inline void release_all(CoreObj *c, Val *vals, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) val_release(c, &vals[i]);
}

/* ------------------------------------------------------------------ states */
static State *state_new(CoreObj *c) {
    State *st = PyMem_Calloc(1, sizeof(State));
    if (!st) {
        PyErr_NoMemory();
        return NULL;
    }
    st->next = c->states;
    if (c->states) c->states->prev = st;
    c->states = st;
    return st;
}

static void state_free(CoreObj *c, State *st) {
    release_all(c, st->stack, st->len);
    release_all(c, st->dense, st->dcap);
    for (Py_ssize_t i = 0; i < st->hcap; i++) val_release(c, &st->hash[i].v);
    PyMem_Free(st->stack);
    PyMem_Free(st->marks);
    PyMem_Free(st->dense);
    PyMem_Free(st->hash);
    if (st->prev) st->prev->next = st->next;
    else c->states = st->next;
    if (st->next) st->next->prev = st->prev;
    if (st->owner) st->owner->st = NULL;
    PyMem_Free(st);
}

static void *dup_array(const void *src, size_t size) {
    if (!size) return NULL;
    void *p = PyMem_Malloc(size);
    if (p) memcpy(p, src, size);
    return p;
}

/* A deep copy of the stack, marks and memo (values shared by reference, like list(stack)). */
static State *state_copy(CoreObj *c, const State *src) {
    State *st = state_new(c);
    if (!st) return NULL;
    st->stack = dup_array(src->stack, (size_t)src->cap * sizeof(Val));
    st->marks = dup_array(src->marks, (size_t)src->mcap * sizeof(Py_ssize_t));
    st->dense = dup_array(src->dense, (size_t)src->dcap * sizeof(Val));
    st->hash = dup_array(src->hash, (size_t)src->hcap * sizeof(HEnt));
    if ((src->cap && !st->stack) || (src->mcap && !st->marks) || (src->dcap && !st->dense) ||
        (src->hcap && !st->hash)) {
        state_free(c, st); /* frees the arrays copied so far: no counts are set yet, so no values are released */
        PyErr_NoMemory();
        return NULL;
    }
    st->len = src->len, st->cap = src->cap, st->nmarks = src->nmarks, st->mcap = src->mcap;
    st->dcap = src->dcap, st->hcap = src->hcap, st->hused = src->hused, st->memo_len = src->memo_len;
    for (Py_ssize_t i = 0; i < st->len; i++) val_incref(&st->stack[i]);
    for (Py_ssize_t i = 0; i < st->dcap; i++) val_incref(&st->dense[i]);
    for (Py_ssize_t i = 0; i < st->hcap; i++) val_incref(&st->hash[i].v);
    return st;
}

/* arr resized to hold at least `need` items of `size` bytes, the capacity doubling from `first`; updates *cap.
 * NULL with MemoryError (arr untouched). `need` is at most PY_SSIZE_T_MAX / 2, so doubling cannot overflow. */
static void *array_grow(void *arr, Py_ssize_t *cap, Py_ssize_t need, Py_ssize_t first, size_t size) {
    Py_ssize_t n = *cap ? *cap : first;
    while (n < need) n *= 2;
    void *p = (size_t)n > PY_SSIZE_T_MAX / size ? NULL : PyMem_Realloc(arr, (size_t)n * size);
    if (!p) {
        PyErr_NoMemory();
        return NULL;
    }
    *cap = n;
    return p;
}

static int stack_grow(State *st, Py_ssize_t extra) {
    if (extra > PY_SSIZE_T_MAX / 2 - st->len) {
        PyErr_NoMemory();
        return -1;
    }
    Val *p = array_grow(st->stack, &st->cap, st->len + extra, 64, sizeof(Val));
    if (!p) return -1;
    st->stack = p;
    return 0;
}

/* Pops the innermost mark and the n items above it, which stay at stack[mark:] for the caller to release;
 * -1 when there is no mark. */
static inline Py_ssize_t marks_pop(State *st, Py_ssize_t *n) {
    if (!st->nmarks) return -1;
    Py_ssize_t mark = st->marks[--st->nmarks];
    *n = st->len - mark;
    st->len = mark;
    return mark;
}

static int marks_push(State *st, Py_ssize_t mark) {
    if (st->nmarks == st->mcap) {
        Py_ssize_t *p = array_grow(st->marks, &st->mcap, st->nmarks + 1, 16, sizeof(Py_ssize_t));
        if (!p) return -1;
        st->marks = p;
    }
    st->marks[st->nmarks++] = mark;
    return 0;
}

/* ------------------------------------------------------------------ memo */
static inline size_t key_hash(int64_t key) { return (size_t)((uint64_t)key * 0x9E3779B97F4A7C15ULL >> 17); }

static Val *memo_find(State *st, int64_t key) {
    if (key >= 0 && key < st->dcap) return st->dense[key].kind ? &st->dense[key] : NULL;
    if (!st->hcap) return NULL;
    size_t mask = (size_t)st->hcap - 1, i = key_hash(key) & mask;
    for (;;) {
        HEnt *e = &st->hash[i];
        if (!e->v.kind) return NULL;
        if (e->key == key) return &e->v;
        i = (i + 1) & mask;
    }
}

static HEnt *hash_slot(HEnt *table, Py_ssize_t cap, int64_t key) {
    size_t mask = (size_t)cap - 1, i = key_hash(key) & mask;
    while (table[i].v.kind && table[i].key != key) i = (i + 1) & mask;
    return &table[i];
}

/* Rebuild the hash with `cap` slots, moving keys below the dense size into the dense array. */
static int hash_rebuild(State *st, Py_ssize_t cap) {
    HEnt *table = PyMem_Calloc((size_t)cap, sizeof(HEnt));
    if (!table) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < st->hcap; i++) {
        HEnt *e = &st->hash[i];
        if (!e->v.kind) continue;
        if (e->key >= 0 && e->key < st->dcap) {
            st->dense[e->key] = e->v;
        } else {
            *hash_slot(table, cap, e->key) = *e;
            used++;
        }
    }
    PyMem_Free(st->hash);
    st->hash = table;
    st->hcap = cap;
    st->hused = used;
    return 0;
}

/* memo[key] = v; takes ownership of v. */
static int memo_put(CoreObj *c, State *st, int64_t key, Val v) {
    if (key >= st->dcap && key >= 0 && key <= 2 * (int64_t)st->memo_len + 1024) {
        /* dense stays at most about twice the entry count, so sparse keys cannot inflate it */
        Py_ssize_t cap = st->dcap ? st->dcap * 2 : 256;
        if (cap <= key) cap = (Py_ssize_t)key + 1;
        Val *p = PyMem_Realloc(st->dense, (size_t)cap * sizeof(Val));
        if (!p) {
            val_release(c, &v);
            PyErr_NoMemory();
            return -1;
        }
        memset(p + st->dcap, 0, (size_t)(cap - st->dcap) * sizeof(Val));
        st->dense = p;
        st->dcap = cap;
        if (st->hused && hash_rebuild(st, st->hcap) < 0) {
            val_release(c, &v);
            return -1;
        }
    }
    Val *slot;
    if (key >= 0 && key < st->dcap) {
        slot = &st->dense[key];
    } else {
        if ((st->hused + 1) * 2 > st->hcap && hash_rebuild(st, st->hcap ? st->hcap * 2 : 64) < 0) {
            val_release(c, &v);
            return -1;
        }
        HEnt *e = hash_slot(st->hash, st->hcap, key);
        if (!e->v.kind) {
            e->key = key;
            st->hused++;
        }
        slot = &e->v;
    }
    if (slot->kind) {
        Val old = *slot;
        *slot = v;
        val_release(c, &old);
    } else {
        *slot = v;
        st->memo_len++;
    }
    return 0;
}

/* memo_put for the common case, a free slot of the dense array: inlined in the loop. */
static inline int memo_put_fast(CoreObj *c, State *st, int64_t key, Val v) {
    if (key >= 0 && key < st->dcap && !st->dense[key].kind) {
        st->dense[key] = v;
        st->memo_len++;
        return 0;
    }
    return memo_put(c, st, key, v);
}

/* ------------------------------------------------------------------ errors and positions */
static int set_pos(Run *r, Py_ssize_t pos) {
    PyObject *p = PyLong_FromSsize_t(pos);
    if (!p) return -1;
    int rc = PyObject_SetAttr(r->walker, s_pos, p);
    Py_DECREF(p);
    return rc;
}

/* Raise Malformed(msg) with the walker's _pos at `pos`, as the pure walker does. */
static void malformed_obj(Run *r, Py_ssize_t pos, PyObject *msg) {
    if (msg && set_pos(r, pos) == 0) PyErr_SetObject(Malformed, msg);
    Py_XDECREF(msg);
}

static void malformed(Run *r, Py_ssize_t pos, const char *msg) {
    malformed_obj(r, pos, PyUnicode_FromString(msg));
}

static void budget_error(PyObject *msg) {
    if (msg) PyErr_SetObject(BudgetExceeded, msg);
    Py_XDECREF(msg);
}

/* ------------------------------------------------------------------ text checks */
/* UTF-8 as Python decodes it with "surrogatepass": standard UTF-8, plus encoded surrogates. */
static int utf8_valid(const uint8_t *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        uint8_t b = s[i];
        if (b < 0x80) {
            i++;
        } else if (b < 0xC2) {
            return 0;
        } else if (b < 0xE0) {
            if (n - i < 2 || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (b < 0xF0) {
            if (n - i < 3 || (s[i + 2] & 0xC0) != 0x80) return 0;
            uint8_t b1 = s[i + 1];
            if (b == 0xE0 ? (b1 < 0xA0 || b1 > 0xBF) : ((b1 & 0xC0) != 0x80)) return 0;
            i += 3;
        } else if (b < 0xF5) {
            if (n - i < 4 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80) return 0;
            uint8_t b1 = s[i + 1];
            if (b == 0xF0 ? (b1 < 0x90 || b1 > 0xBF) : b == 0xF4 ? (b1 < 0x80 || b1 > 0x8F) : ((b1 & 0xC0) != 0x80))
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* 1 if ASCII text matches _NAME_LIKE ([A-Za-z_][\w.]{0,127}), 0 if not, -1 if not ASCII. */
static int ascii_name_like(const uint8_t *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i] >= 0x80) return -1;
    if (n < 1 || n > 128) return 0;
    uint8_t b = s[0];
    if (!((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || b == '_')) return 0;
    for (Py_ssize_t i = 1; i < n; i++) {
        b = s[i];
        if (!((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '_' || b == '.'))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ C values <-> Python */
static PyObject *leaf_py(Run *r, const Val *v) {
    switch (v->kind) {
    case V_NONE: Py_RETURN_NONE;
    case V_TRUE: Py_RETURN_TRUE;
    case V_FALSE: Py_RETURN_FALSE;
    case V_INT: return PyLong_FromLongLong(v->u.i);
    case V_FLOAT: return PyFloat_FromDouble(v->u.f);
    case V_OPAQUE: Py_INCREF(OPAQUE); return OPAQUE;
    case V_TEXT: return PyUnicode_DecodeUTF8((const char *)r->buf + v->u.off, (Py_ssize_t)v->len, "surrogatepass");
    case V_LATIN: return PyUnicode_DecodeLatin1((const char *)r->buf + v->u.off, (Py_ssize_t)v->len, NULL);
    case V_BYTES: return PyBytes_FromStringAndSize((const char *)r->buf + v->u.off, (Py_ssize_t)v->len);
    case V_PY: Py_INCREF(v->u.obj); return v->u.obj;
    default: PyErr_SetString(PyExc_SystemError, "walkcore: bad value kind"); return NULL;
    }
}

/* The Python object for a node, without its items yet; cached on the node. */
static int node_shell(Node *nd) {
    if (nd->kind == N_TUPLE) {
        nd->py = PyTuple_New(nd->n);
        return nd->py ? 0 : -1;
    }
    PyObject *items = PyList_New(0), *count = PyLong_FromLongLong(nd->count);
    if (items && count) nd->py = PyObject_CallFunctionObjArgs(ContainerCls, KindNames[nd->kind], items, count, NULL);
    Py_XDECREF(count);
    if (!nd->py) {
        Py_XDECREF(items);
        return -1;
    }
    nd->pyitems = items;
    return 0;
}

typedef struct {
    Node *nd;
    Py_ssize_t i;
} Work;

/* Materialize a node and everything it keeps, iteratively; shared nodes and cycles reuse the
 * cached object, so the Python graph has the same shape the pure walker builds. */
static PyObject *node_py(Run *r, Node *root) {
    if (root->py) {
        Py_INCREF(root->py);
        return root->py;
    }
    Py_ssize_t wlen = 0, wcap = 16;
    Work *work = PyMem_Malloc((size_t)wcap * sizeof(Work));
    if (!work) return PyErr_NoMemory();
    if (node_shell(root) < 0) goto error;
    work[wlen++] = (Work){root, 0};
    while (wlen) {
        Work *w = &work[wlen - 1];
        Node *nd = w->nd;
        if (w->i >= nd->n) {
            wlen--;
            continue;
        }
        Val *it = &nd->items[w->i];
        PyObject *o;
        if (it->kind == V_NODE) {
            Node *ch = it->u.node;
            if (!ch->py) {
                if (node_shell(ch) < 0) goto error;
                if (wlen == wcap) {
                    Work *p = PyMem_Realloc(work, (size_t)wcap * 2 * sizeof(Work));
                    if (!p) {
                        PyErr_NoMemory();
                        goto error;
                    }
                    work = p;
                    wcap *= 2;
                }
                work[wlen++] = (Work){ch, 0};
                continue; /* this slot is filled once the child is done */
            }
            o = ch->py;
            Py_INCREF(o);
        } else {
            o = leaf_py(r, it);
            if (!o) goto error;
        }
        if (nd->kind == N_TUPLE) {
            PyTuple_SET_ITEM(nd->py, w->i, o);
        } else {
            int rc = PyList_Append(nd->pyitems, o);
            Py_DECREF(o);
            if (rc < 0) goto error;
        }
        w->i++;
    }
    PyMem_Free(work);
    Py_INCREF(root->py);
    return root->py;
error:
    PyMem_Free(work);
    return NULL;
}

static PyObject *to_py(Run *r, const Val *v) { return v->kind == V_NODE ? node_py(r, v->u.node) : leaf_py(r, v); }

/* A Python value back into a C value; steals the reference. */
static Val from_py(PyObject *o) {
    Val v;
    v.len = 0;
    if (o == Py_None) v.kind = V_NONE;
    else if (o == Py_True) v.kind = V_TRUE;
    else if (o == Py_False) v.kind = V_FALSE;
    else if (o == OPAQUE) v.kind = V_OPAQUE;
    else if (PyFloat_CheckExact(o)) {
        v.kind = V_FLOAT;
        v.u.f = PyFloat_AS_DOUBLE(o);
    } else {
        int overflow = 0;
        long long x = PyLong_CheckExact(o) ? PyLong_AsLongLongAndOverflow(o, &overflow) : 0;
        if (PyLong_CheckExact(o) && !overflow && !(x == -1 && PyErr_Occurred())) {
            v.kind = V_INT;
            v.u.i = x;
        } else {
            PyErr_Clear();
            v.kind = V_PY;
            v.u.obj = o;
            return v;
        }
    }
    Py_DECREF(o);
    return v;
}

/* A list of the materialized values vals[0:n]. */
static PyObject *list_py(Run *r, Val *vals, Py_ssize_t n) {
    PyObject *list = PyList_New(n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = to_py(r, &vals[i]);
        if (!o) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, o);
    }
    return list;
}

/* ------------------------------------------------------------------ containers */
/* Container.add: keep up to MAX_KEPT items, count them all; takes ownership of items[0:n].
 * A container Python has already seen gets the same additions, so both views stay equal. */
static int container_add(Run *r, Node *nd, Val *items, Py_ssize_t n) {
    CoreObj *c = r->c;
    Py_ssize_t keep = MAX_KEPT - nd->n;
    if (keep < 0) keep = 0;
    if (keep > n) keep = n;
    if (nd->n + keep > nd->cap) {
        Py_ssize_t cap = nd->cap * 2;
        if (cap < nd->n + keep) cap = nd->n + keep;
        if (cap > MAX_KEPT) cap = MAX_KEPT;
        Val *p = nd->items == nd->inl ? PyMem_Malloc((size_t)cap * sizeof(Val))
                                       : PyMem_Realloc(nd->items, (size_t)cap * sizeof(Val));
        if (!p) {
            release_all(c, items, n);
            PyErr_NoMemory();
            return -1;
        }
        if (nd->items == nd->inl) memcpy(p, nd->inl, (size_t)nd->n * sizeof(Val));
        nd->items = p;
        nd->cap = (int32_t)cap;
    }
    Py_ssize_t old = nd->n;
    if (keep) memcpy(nd->items + old, items, (size_t)keep * sizeof(Val));
    nd->n += (int32_t)keep;
    /* the items past MAX_KEPT: a plain loop, about 15% faster on long float lists than release_all(items + keep) */
    for (Py_ssize_t i = keep; i < n; i++) val_release(c, &items[i]);
    nd->count += n;
    if (!nd->py) return 0;
    for (Py_ssize_t i = old; i < nd->n; i++) {
        PyObject *o = to_py(r, &nd->items[i]);
        if (!o) return -1;
        int rc = PyList_Append(nd->pyitems, o);
        Py_DECREF(o);
        if (rc < 0) return -1;
    }
    PyObject *count = PyLong_FromLongLong(nd->count);
    if (!count) return -1;
    int rc = PyObject_SetAttr(nd->py, s_count, count);
    Py_DECREF(count);
    return rc;
}

/* A tuple of items[0:n] (the head only past MAX_TUPLE); takes ownership of the items. */
static Node *tuple_node(CoreObj *c, Val *items, Py_ssize_t n) {
    Py_ssize_t keep = n < MAX_TUPLE ? n : MAX_TUPLE;
    Node *nd = node_new(c, N_TUPLE, keep);
    if (!nd) {
        release_all(c, items, n);
        return NULL;
    }
    if (keep) memcpy(nd->items, items, (size_t)keep * sizeof(Val));
    nd->n = (int32_t)keep;
    for (Py_ssize_t i = keep; i < n; i++) val_release(c, &items[i]);
    return nd;
}

/* ------------------------------------------------------------------ memo keep rule */
/* _memo_value: past MEMO_KEEP_ALL entries only values that can matter later are kept. */
static int memo_value(Run *r, Val *v, Val *out) {
    switch (v->kind) {
    case V_INT: case V_FLOAT: case V_BYTES: case V_NODE: case V_OPAQUE:
        out->kind = V_OPAQUE;
        return 0;
    case V_TEXT: case V_LATIN: {
        int like = ascii_name_like(r->buf + v->u.off, (Py_ssize_t)v->len);
        if (like >= 0) {
            if (like) *out = *v;
            else out->kind = V_OPAQUE;
            return 0;
        }
        break; /* non-ASCII: \w is Unicode-aware, ask Python */
    }
    case V_PY:
        break;
    default:
        *out = *v;
        return 0;
    }
    PyObject *o = to_py(r, v);
    if (!o) return -1;
    PyObject *res = PyObject_CallOneArg(MemoValue, o);
    Py_DECREF(o);
    if (!res) return -1;
    if (res == OPAQUE) out->kind = V_OPAQUE;
    else *out = *v;
    Py_DECREF(res);
    val_incref(out);
    return 0;
}

/* ------------------------------------------------------------------ reading arguments */
/* Index of the newline ending the line at pos, or -1. */
static Py_ssize_t line_end(Run *r, Py_ssize_t pos) {
    if (pos >= r->end) return -1;
    const uint8_t *nl = memchr(r->buf + pos, '\n', (size_t)(r->end - pos));
    return nl ? (Py_ssize_t)(nl - r->buf) : -1;
}

static uint64_t read_le(const uint8_t *p, int width) {
    uint64_t x = 0;
    for (int i = width - 1; i >= 0; i--) x = (x << 8) | p[i];
    return x;
}

/* A memo key from the Python int that PUT/GET spell. 1: key set; 0: negative; -1: error.
 * Keys beyond int64 get synthetic negative keys (real keys are never negative). */
static int memo_key(CoreObj *c, PyObject *index, int create, int64_t *key) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(index, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (overflow < 0 || (!overflow && x < 0)) return 0;
    if (!overflow) {
        *key = x;
        return 1;
    }
    PyObject *k = PyDict_GetItemWithError(c->bigkeys, index);
    if (!k && PyErr_Occurred()) return -1;
    if (!k) {
        if (!create) {
            *key = INT64_MIN; /* absent */
            return 1;
        }
        k = PyLong_FromSsize_t(-1 - PyDict_GET_SIZE(c->bigkeys));
        if (!k || PyDict_SetItem(c->bigkeys, index, k) < 0) {
            Py_XDECREF(k);
            return -1;
        }
        Py_DECREF(k);
    }
    *key = PyLong_AsLongLong(k);
    return 1;
}

/* ------------------------------------------------------------------ periodic checks */
static int periodic(Run *r, Py_ssize_t pos, int64_t count) {
    CoreObj *c = r->c;
    if (set_pos(r, pos) < 0) return -1;
    PyObject *res = PyObject_CallMethodNoArgs(r->walker, s_check_deadline);
    if (!res) return -1;
    Py_DECREF(res);
    PyObject *budget = PyObject_GetAttr(r->walker, s_shadow_budget);
    if (!budget) return -1;
    if (budget != Py_None) {
        long long b = PyLong_AsLongLong(budget);
        Py_DECREF(budget);
        if (b == -1 && PyErr_Occurred()) return -1;
        if (count > b) {
            budget_error(PyUnicode_FromFormat("array data at position %zd still parses as pickle opcodes after %lld "
                                              "opcodes; the rest of that reading was not analysed", pos,
                                              (long long)count));
            return -1;
        }
    } else {
        Py_DECREF(budget);
    }
    if ((int64_t)c->st->len > c->max_stack) {
        budget_error(PyUnicode_FromFormat("pickle stack exceeds %S entries at position %zd", c->max_stack_obj, pos));
        return -1;
    }
    if ((int64_t)c->st->memo_len > c->max_memo) {
        budget_error(PyUnicode_FromFormat("pickle memo exceeds %S entries", c->max_memo_obj));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ calls into the walker */
/* f(the bytes from pos up to the newline at nl) with _pos at the opcode p0; returns a new reference. */
static PyObject *call_on_line(Run *r, Py_ssize_t p0, PyObject *f, Py_ssize_t pos, Py_ssize_t nl) {
    PyObject *raw = PyBytes_FromStringAndSize((const char *)r->buf + pos, nl - pos), *o = NULL;
    if (raw && set_pos(r, p0) == 0) o = PyObject_CallOneArg(f, raw);
    Py_XDECREF(raw);
    return o;
}

/* walker.<name>(*args) with _pos at the opcode; returns a new reference. */
static PyObject *act(Run *r, Py_ssize_t p0, PyObject *name, PyObject *a, PyObject *b, PyObject *cc) {
    if (set_pos(r, p0) < 0) return NULL;
    return PyObject_CallMethodObjArgs(r->walker, name, a, b, cc, NULL);
}

/* An instance of a walker value class with `n` fields set and the others left at their class-level
 * defaults: object.__new__(cls) plus setattr, what its dataclass __init__ does, without running Python
 * code (these records are made once or twice per tensor of a checkpoint). configure() in _pickle_native
 * passes direct=True only after checking that the classes' fields and __init__ allow it. */
static PyObject *make_record(PyObject *cls, Py_ssize_t n, PyObject **names, PyObject **values) {
    if (!RecordsDirect) {
        PyObject *args = PyTuple_New(n);
        if (!args) return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_INCREF(values[i]);
            PyTuple_SET_ITEM(args, i, values[i]);
        }
        PyObject *o = PyObject_Call(cls, args, NULL);
        Py_DECREF(args);
        return o;
    }
    PyObject *o = PyBaseObject_Type.tp_new((PyTypeObject *)cls, EmptyTuple, NULL);
    for (Py_ssize_t i = 0; o && i < n; i++) {
        if (PyObject_SetAttr(o, names[i], values[i]) < 0) Py_CLEAR(o);
    }
    return o;
}

/* REDUCE/NEWOBJ of a call CallAnalysis.inert_call waves through (an allowlisted callable that needs no
 * analysis, a tuple of arguments, no argument-checked helper named so far): the Call record is made here,
 * skipping the round trip through act_reduce/_call, which would make the same record. Most calls of honest
 * files are such calls. Returns 1 with *out set, 0 when Python must decide, -1 on error. */
static int inert_call(Run *r, Py_ssize_t p0, PyObject *func, PyObject *args, PyObject *opname, PyObject **out) {
    *out = NULL;
    if (!CallCls || Py_TYPE(func) != (PyTypeObject *)GlobalCls || !PyTuple_CheckExact(args)) return 0;
    PyObject *flag = PyObject_GetAttr(func, s_inert);
    if (!flag) return -1;
    int inert = flag == Py_True;
    Py_DECREF(flag);
    if (!inert) return 0;
    PyObject *calls = PyObject_GetAttr(r->walker, s_calls), *named = NULL;
    if (calls) named = PyObject_GetAttr(calls, s_checked_named);
    Py_XDECREF(calls);
    if (!named) return -1;
    int checked = PyObject_IsTrue(named);
    Py_DECREF(named);
    if (checked) return checked < 0 ? -1 : 0;
    PyObject *pos = PyLong_FromSsize_t(p0);
    if (!pos) return -1;
    PyObject *names[4] = {s_func, s_args, s_pos_field, s_opcode}, *values[4] = {func, args, pos, opname};
    *out = make_record(CallCls, 4, names, values);
    Py_DECREF(pos);
    return *out ? 1 : -1;
}

/* calls.discarded(values, pos) for the Python values among vals[0:n] (only those can be calls). */
static int discarded(Run *r, Py_ssize_t p0, Val *vals, Py_ssize_t n) {
    PyObject *list = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (vals[i].kind != V_PY) continue;
        if (!list && !(list = PyList_New(0))) return -1;
        if (PyList_Append(list, vals[i].u.obj) < 0) {
            Py_DECREF(list);
            return -1;
        }
    }
    if (!list) return 0;
    PyObject *calls = PyObject_GetAttr(r->walker, s_calls), *res = NULL, *pos = PyLong_FromSsize_t(p0);
    if (calls && pos && set_pos(r, p0) == 0) res = PyObject_CallMethodObjArgs(calls, s_discarded, list, pos, NULL);
    Py_XDECREF(calls);
    Py_XDECREF(pos);
    Py_DECREF(list);
    if (!res) return -1;
    Py_DECREF(res);
    return 0;
}

/* APPEND/APPENDS/ADDITEMS/SETITEM(S) onto a value that is not a container: the walker decides
 * (a method call on an object, or Malformed). Takes ownership of items[0:n]. */
static int extend_other(Run *r, Py_ssize_t p0, Val *target, Val *items, Py_ssize_t n, PyObject *opname) {
    PyObject *t = to_py(r, target), *list = t ? list_py(r, items, n) : NULL, *res = NULL;
    release_all(r->c, items, n);
    if (list) res = act(r, p0, s_extend, t, list, opname);
    Py_XDECREF(t);
    Py_XDECREF(list);
    if (!res) return -1;
    Py_DECREF(res);
    return 0;
}

/* ------------------------------------------------------------------ the opcode loop */
#define FLOOR() (st->nmarks ? st->marks[st->nmarks - 1] : 0)
#define RELOAD() (st = c->st)
#define NEED(k) do { if (st->len + (k) > st->cap && stack_grow(st, (k)) < 0) goto error; } while (0)
#define FAIL(msg) do { malformed(r, p0, (msg)); goto error; } while (0)
#define TRUNC() FAIL("pickle data was truncated")
#define NO_NEWLINE() FAIL("pickle data was truncated (missing newline)")
#define UNDERFLOW_IF(cond) do { if (cond) FAIL("unpickling stack underflow"); } while (0)
/* Push a C value (st->len < st->cap guaranteed by NEED). */
#define PUSH(val) (st->stack[st->len++] = (val))
#define PUSH_KIND(k) do { NEED(1); st->stack[st->len].kind = (k); st->len++; } while (0)
/* A node the stack has room for (NULL: out of memory). */
#define PUSH_NODE(nd) do { Node *nd_ = (nd); if (!nd_) goto error; PUSH(((Val){.kind = V_NODE, .u.node = nd_})); } while (0)
/* What a call into Python gave back (a new reference, NULL: error); the call may have switched states. */
#define PUSH_RESULT(o) do { PyObject *o_ = (o); if (!o_) goto error; RELOAD(); NEED(1); PUSH(from_py(o_)); } while (0)

/* Walk opcodes from pos until STOP; returns the position after it, or -1 with an exception set. */
static Py_ssize_t run_loop(Run *r, Py_ssize_t pos) {
    CoreObj *c = r->c;
    State *st = c->st;
    const uint8_t *buf = r->buf;
    const Py_ssize_t end = r->end;
    int64_t count = 0, next_check = DEADLINE_EVERY;
    Val tmp[3];

    for (;;) {
        if (pos >= end) {
            malformed(r, pos, "pickle data was truncated (no STOP opcode)");
            goto error;
        }
        const Py_ssize_t p0 = pos;
        const uint8_t op = buf[pos];
        count++;
        switch (op) {
        /* ---------------------------------------------------------- numbers */
        case 'K': case 'M': case 'J': case 'G': {
            /* A maximal run of the same numeric opcode is one step, as in the pure walker: its
             * opcodes all count, and runs longer than EXACT_RUN become OPAQUE. */
            const Py_ssize_t w = op == 'K' ? 2 : op == 'M' ? 3 : op == 'J' ? 5 : 9;
            if (end - pos < w) TRUNC();
            Py_ssize_t n = 1;
            while (end - (pos + n * w) >= w && buf[pos + n * w] == op) n++;
            if (n > EXACT_RUN) {
                if ((int64_t)st->len + n > c->max_stack) {
                    budget_error(PyUnicode_FromFormat("pickle stack exceeds %S entries at position %zd",
                                                      c->max_stack_obj, pos));
                    goto error;
                }
                NEED(n);
                for (Py_ssize_t i = 0; i < n; i++) st->stack[st->len++].kind = V_OPAQUE;
            } else {
                NEED(n);
                for (Py_ssize_t i = 0; i < n; i++) {
                    const uint8_t *a = buf + pos + i * w + 1;
                    Val *v = &st->stack[st->len++];
                    if (op == 'G') {
                        uint64_t bits = 0;
                        for (int k = 0; k < 8; k++) bits = (bits << 8) | a[k];
                        v->kind = V_FLOAT;
                        memcpy(&v->u.f, &bits, 8);
                    } else {
                        v->kind = V_INT;
                        v->u.i = op == 'K' ? a[0] : op == 'M' ? (a[0] | a[1] << 8) : (int32_t)read_le(a, 4);
                    }
                }
            }
            pos += n * w;
            count += n - 1;
            break;
        }
        case 0x8a: { /* LONG1 */
            if (end - pos < 2) TRUNC();
            Py_ssize_t n = buf[pos + 1], start = pos + 2;
            if (end - start < n) TRUNC();
            Val v;
            v.len = 0;
            if (n > 64) {
                v.kind = V_OPAQUE;
            } else if (n <= 8) {
                uint64_t x = n ? read_le(buf + start, (int)n) : 0;
                if (n && n < 8 && (buf[start + n - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * n); /* sign-extend */
                v.kind = V_INT;
                v.u.i = (int64_t)x;
            } else {
                /* 9..64 bytes: a Python int, int.from_bytes(raw, "little", signed=True) */
                PyObject *raw = PyBytes_FromStringAndSize((const char *)buf + start, n), *o = NULL;
                PyObject *from_bytes = PyObject_GetAttr((PyObject *)&PyLong_Type, s_from_bytes);
                PyObject *kw = Py_BuildValue("{s:O}", "signed", Py_True), *pargs = NULL;
                if (raw) pargs = PyTuple_Pack(2, raw, s_little);
                if (from_bytes && kw && pargs) o = PyObject_Call(from_bytes, pargs, kw);
                Py_XDECREF(raw);
                Py_XDECREF(from_bytes);
                Py_XDECREF(kw);
                Py_XDECREF(pargs);
                if (!o) goto error;
                v = from_py(o);
            }
            NEED(1);
            PUSH(v);
            pos = start + n;
            break;
        }
        case 0x8b: { /* LONG4 */
            if (end - pos < 5) TRUNC();
            if ((int32_t)read_le(buf + pos + 1, 4) < 0) FAIL("LONG pickle has negative byte count");
            uint64_t n = read_le(buf + pos + 1, 4);
            Py_ssize_t start = pos + 5;
            if (n > (uint64_t)(end - start)) TRUNC();
            PUSH_KIND(V_OPAQUE);
            pos = start + (Py_ssize_t)n;
            break;
        }
        case 'N': PUSH_KIND(V_NONE); pos++; break;
        case 0x88: PUSH_KIND(V_TRUE); pos++; break;
        case 0x89: PUSH_KIND(V_FALSE); pos++; break;
        case 0x97: PUSH_KIND(V_OPAQUE); pos++; break; /* NEXT_BUFFER: data the loader supplies */
        case 0x98: /* READONLY_BUFFER */
            UNDERFLOW_IF(st->len <= FLOOR());
            pos++;
            break;
        /* ---------------------------------------------------------- text and bytes */
        case 0x8c: case 'X': case 0x8d: case 'U': case 'T': case 'C': case 'B': case 0x8e: case 0x96: {
            const int width = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 'X' || op == 'T' || op == 'B') ? 4 : 8;
            if (end - pos - 1 < width) TRUNC();
            uint64_t n = read_le(buf + pos + 1, width);
            Py_ssize_t start = pos + 1 + width;
            if (n > (uint64_t)(end - start)) TRUNC();
            Val v;
            if (n > (uint64_t)LAZY_THRESHOLD) { /* a window Python keeps as LazyBytes */
                NEED(1);
                PyObject *lazy = PyObject_CallFunction(LazyBytesCls, "Onn", r->bufobj, start, (Py_ssize_t)n);
                if (!lazy) goto error;
                PUSH(from_py(lazy));
                pos = start + (Py_ssize_t)n;
                break;
            }
            v.u.off = start;
            v.len = (uint32_t)n;
            if (op == 0x8c || op == 'X' || op == 0x8d) {
                if (!utf8_valid(buf + start, (Py_ssize_t)n))
                    FAIL(op == 0x8c ? "invalid UTF-8 in a SHORT_BINUNICODE argument" : "invalid UTF-8 in a text argument");
                v.kind = V_TEXT;
            } else {
                v.kind = (op == 'U' || op == 'T') ? V_LATIN : V_BYTES;
            }
            NEED(1);
            PUSH(v);
            pos = start + (Py_ssize_t)n;
            break;
        }
        case 'I': case 'L': case 'F': case 'S': case 'V': { /* protocol 0 text values */
            Py_ssize_t nl = line_end(r, pos + 1);
            if (nl < 0) NO_NEWLINE();
            PyObject *key = PyLong_FromLong(op);
            PyObject *f = key ? PyDict_GetItemWithError(LineValues, key) : NULL; /* borrowed */
            Py_XDECREF(key);
            PUSH_RESULT(f ? call_on_line(r, p0, f, pos + 1, nl) : NULL);
            pos = nl + 1;
            break;
        }
        /* ---------------------------------------------------------- tuples and containers */
        case ')':
            NEED(1);
            PUSH_NODE(node_new(c, N_TUPLE, 0));
            pos++;
            break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1-3 */
            Py_ssize_t k = op - 0x84;
            UNDERFLOW_IF(st->len - FLOOR() < k);
            st->len -= k;
            PUSH_NODE(tuple_node(c, &st->stack[st->len], k));
            pos++;
            break;
        }
        case ']': case '}': case 0x8f:
            NEED(1);
            PUSH_NODE(node_new(c, op == ']' ? N_LIST : op == '}' ? N_DICT : N_SET, 0));
            pos++;
            break;
        case '(':
            if (marks_push(st, st->len) < 0) goto error;
            pos++;
            break;
        case 't': case 'l': case 'd': case 0x91: { /* TUPLE, LIST, DICT, FROZENSET */
            if (!st->nmarks) FAIL("could not find MARK");
            Py_ssize_t mark = st->marks[--st->nmarks], n = st->len - mark;
            if (op == 'd' && n % 2) FAIL("odd number of items for DICT");
            st->len = mark;
            Node *nd;
            if (op == 't') {
                nd = tuple_node(c, &st->stack[mark], n);
                if (!nd) goto error;
            } else {
                nd = node_new(c, op == 'l' ? N_LIST : op == 'd' ? N_DICT : N_FROZENSET, 0);
                if (!nd) {
                    release_all(c, &st->stack[mark], n);
                    goto error;
                }
                if (container_add(r, nd, &st->stack[mark], n) < 0) {
                    node_decref(c, nd);
                    goto error;
                }
            }
            Val v = {.kind = V_NODE, .u.node = nd};
            if (st->len + 1 > st->cap && stack_grow(st, 1) < 0) { /* an empty MARK may leave no room */
                node_decref(c, nd);
                goto error;
            }
            PUSH(v);
            pos++;
            break;
        }
        case 'a': case 's': { /* APPEND, SETITEM */
            Py_ssize_t k = op == 'a' ? 1 : 2, floor = FLOOR();
            UNDERFLOW_IF(st->len - floor < k + 1);
            Val *target = &st->stack[st->len - k - 1];
            st->len -= k;
            if (target->kind == V_NODE && target->u.node->kind != N_TUPLE) {
                if (container_add(r, target->u.node, &st->stack[st->len], k) < 0) goto error;
            } else {
                memcpy(tmp, &st->stack[st->len], (size_t)k * sizeof(Val));
                if (extend_other(r, p0, target, tmp, k, op == 'a' ? s_APPEND : s_SETITEM) < 0) goto error;
                RELOAD();
            }
            pos++;
            break;
        }
        case 'e': case 'u': case 0x90: { /* APPENDS, SETITEMS, ADDITEMS */
            if (!st->nmarks) FAIL("could not find MARK");
            Py_ssize_t mark = st->marks[st->nmarks - 1], n = st->len - mark;
            if (op == 'u' && n % 2) {
                st->nmarks--;
                release_all(c, &st->stack[mark], n);
                st->len = mark;
                FAIL("odd number of items for SETITEMS");
            }
            st->nmarks--;
            st->len = mark;
            if (mark <= FLOOR()) {
                release_all(c, &st->stack[mark], n);
                FAIL("unpickling stack underflow");
            }
            Val *target = &st->stack[mark - 1];
            if (target->kind == V_NODE && target->u.node->kind != N_TUPLE) {
                if (container_add(r, target->u.node, &st->stack[mark], n) < 0) goto error;
            } else {
                /* the items sit past the stack's end; move them out before Python runs */
                Val *items = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Val));
                if (!items) {
                    release_all(c, &st->stack[mark], n);
                    PyErr_NoMemory();
                    goto error;
                }
                if (n) memcpy(items, &st->stack[mark], (size_t)n * sizeof(Val));
                int rc = extend_other(r, p0, target, items, n, op == 'e' ? s_APPENDS : op == 'u' ? s_SETITEMS : s_ADDITEMS);
                PyMem_Free(items);
                if (rc < 0) goto error;
                RELOAD();
            }
            pos++;
            break;
        }
        /* ---------------------------------------------------------- stack */
        case '.': /* STOP */
            UNDERFLOW_IF(st->len <= FLOOR());
            val_release(c, &st->stack[--st->len]);
            {
                PyObject *old = PyObject_GetAttr(r->walker, s_opcodes), *add = PyLong_FromLongLong(count), *sum = NULL;
                if (old && add) sum = PyNumber_Add(old, add);
                Py_XDECREF(old);
                Py_XDECREF(add);
                if (!sum) goto error;
                int rc = PyObject_SetAttr(r->walker, s_opcodes, sum);
                Py_DECREF(sum);
                if (rc < 0) goto error;
            }
            return pos + 1;
        case '0': { /* POP */
            Py_ssize_t floor = FLOOR();
            if (st->len > floor) {
                Val v = st->stack[--st->len];
                int rc = v.kind == V_PY ? discarded(r, p0, &v, 1) : 0;
                val_release(c, &v);
                if (rc < 0) goto error;
                RELOAD();
            } else if (st->nmarks) {
                st->nmarks--; /* the C unpickler pops a mark when the stack is empty above it */
            } else {
                FAIL("unpickling stack underflow");
            }
            pos++;
            break;
        }
        case '1': { /* POP_MARK */
            Py_ssize_t n, mark = marks_pop(st, &n);
            if (mark < 0) FAIL("could not find MARK");
            int rc = discarded(r, p0, &st->stack[mark], n);
            release_all(c, &st->stack[mark], n);
            if (rc < 0) goto error;
            RELOAD();
            pos++;
            break;
        }
        case '2': { /* DUP */
            UNDERFLOW_IF(st->len <= FLOOR());
            NEED(1);
            Val v = st->stack[st->len - 1];
            val_incref(&v);
            PUSH(v);
            pos++;
            break;
        }
        /* ---------------------------------------------------------- memo */
        case 0x94: { /* MEMOIZE: no budget check here, exactly like the pure walker's fast path */
            if (st->len <= FLOOR()) FAIL("unpickling stack underflow on memo write");
            Val v = st->stack[st->len - 1];
            if (st->memo_len < MEMO_KEEP_ALL) val_incref(&v);
            else if (v.kind == V_NODE || v.kind == V_INT || v.kind == V_FLOAT) v.kind = V_OPAQUE; /* data */
            else if (memo_value(r, &st->stack[st->len - 1], &v) < 0) goto error;
            if (memo_put_fast(c, st, st->memo_len, v) < 0) goto error;
            pos++;
            break;
        }
        case 'q': { /* BINPUT keeps the value whatever the memo size, like the pure walker */
            if (end - pos < 2) TRUNC();
            if (st->len <= FLOOR()) FAIL("unpickling stack underflow on memo write");
            Val v = st->stack[st->len - 1];
            val_incref(&v);
            if (memo_put_fast(c, st, buf[pos + 1], v) < 0) goto error;
            pos += 2;
            break;
        }
        case 'r': case 'p': { /* LONG_BINPUT, PUT: the full _memo_put */
            int64_t key;
            Py_ssize_t next;
            if (op == 'r') {
                if (end - pos < 5) TRUNC();
                key = (int64_t)read_le(buf + pos + 1, 4);
                next = pos + 5;
            } else {
                Py_ssize_t nl = line_end(r, pos + 1);
                if (nl < 0) NO_NEWLINE();
                PyObject *idx = call_on_line(r, p0, IntArg, pos + 1, nl);
                if (!idx) goto error;
                RELOAD();
                if (st->len <= FLOOR()) {
                    Py_DECREF(idx);
                    FAIL("unpickling stack underflow on memo write");
                }
                int ok = memo_key(c, idx, 1, &key);
                Py_DECREF(idx);
                if (ok < 0) goto error;
                if (!ok) FAIL("negative PUT argument");
                next = nl + 1;
            }
            if (st->len <= FLOOR()) FAIL("unpickling stack underflow on memo write");
            if ((int64_t)st->memo_len >= c->max_memo && !memo_find(st, key)) {
                budget_error(PyUnicode_FromFormat("pickle memo exceeds %S entries", c->max_memo_obj));
                goto error;
            }
            Val v = st->stack[st->len - 1];
            if (st->memo_len < MEMO_KEEP_ALL) val_incref(&v);
            else if (memo_value(r, &st->stack[st->len - 1], &v) < 0) goto error;
            if (memo_put(c, st, key, v) < 0) goto error;
            pos = next;
            break;
        }
        case 'h': case 'j': case 'g': { /* BINGET, LONG_BINGET, GET */
            int64_t key;
            Py_ssize_t next;
            PyObject *idx = NULL;
            if (op == 'h') {
                if (end - pos < 2) TRUNC();
                key = buf[pos + 1];
                next = pos + 2;
            } else if (op == 'j') {
                if (end - pos < 5) TRUNC();
                key = (int64_t)read_le(buf + pos + 1, 4);
                next = pos + 5;
            } else {
                Py_ssize_t nl = line_end(r, pos + 1);
                if (nl < 0) NO_NEWLINE();
                idx = call_on_line(r, p0, IntArg, pos + 1, nl);
                if (!idx) goto error;
                RELOAD();
                int ok = memo_key(c, idx, 0, &key);
                if (ok < 0) {
                    Py_DECREF(idx);
                    goto error;
                }
                if (!ok) key = INT64_MIN;
                next = nl + 1;
            }
            Val *found = key == INT64_MIN ? NULL : memo_find(st, key);
            if (!found) {
                if (idx) malformed_obj(r, p0, PyUnicode_FromFormat("memo value not found at index %S", idx));
                else malformed_obj(r, p0, PyUnicode_FromFormat("memo value not found at index %lld", (long long)key));
                Py_XDECREF(idx);
                goto error;
            }
            Py_XDECREF(idx);
            NEED(1);
            Val v = *found;
            val_incref(&v);
            PUSH(v);
            pos = next;
            break;
        }
        /* ---------------------------------------------------------- structure */
        case 0x80: /* PROTO */
            if (end - pos < 2) TRUNC();
            if (buf[pos + 1] > 5) {
                malformed_obj(r, p0, PyUnicode_FromFormat("unsupported pickle protocol: %d", (int)buf[pos + 1]));
                goto error;
            }
            pos += 2;
            break;
        case 0x95: { /* FRAME: its bytes are walked as opcodes */
            if (end - pos < 9) TRUNC();
            if (read_le(buf + pos + 1, 8) > (uint64_t)(end - pos - 9)) TRUNC();
            pos += 9;
            break;
        }
        /* ---------------------------------------------------------- globals and calls: Python decides */
        case 'c': case 'i': { /* GLOBAL, INST */
            Py_ssize_t nl1 = line_end(r, pos + 1), nl2 = nl1 < 0 ? -1 : line_end(r, nl1 + 1);
            if (nl2 < 0) NO_NEWLINE();
            PyObject *items = NULL;
            if (op == 'i') {
                Py_ssize_t n, mark = marks_pop(st, &n);
                if (mark < 0) FAIL("could not find MARK");
                items = list_py(r, &st->stack[mark], n);
                release_all(c, &st->stack[mark], n);
                if (!items) goto error;
            }
            PyObject *mod = PyBytes_FromStringAndSize((const char *)buf + pos + 1, nl1 - pos - 1);
            PyObject *name = PyBytes_FromStringAndSize((const char *)buf + nl1 + 1, nl2 - nl1 - 1), *o = NULL;
            if (mod && name) o = act(r, p0, op == 'c' ? s_act_global : s_act_inst, mod, name, items);
            Py_XDECREF(mod);
            Py_XDECREF(name);
            Py_XDECREF(items);
            PUSH_RESULT(o);
            pos = nl2 + 1;
            break;
        }
        case 0x93: case 'R': case 0x81: case 0x92: case 'Q': { /* STACK_GLOBAL, REDUCE, NEWOBJ, NEWOBJ_EX, BINPERSID */
            Py_ssize_t k = op == 0x92 ? 3 : op == 'Q' ? 1 : 2;
            UNDERFLOW_IF(st->len - FLOOR() < k);
            st->len -= k;
            memcpy(tmp, &st->stack[st->len], (size_t)k * sizeof(Val));
            PyObject *a[3] = {NULL, NULL, NULL}, *o = NULL;
            int ok = 1;
            for (Py_ssize_t i = 0; i < k; i++) { /* the topmost operand first, as the act_* methods take them */
                a[i] = to_py(r, &tmp[k - 1 - i]);
                if (!a[i]) ok = 0;
            }
            release_all(c, tmp, k);
            int fast = 0;
            if (ok && (op == 'R' || op == 0x81))
                fast = inert_call(r, p0, a[1], a[0], op == 'R' ? s_REDUCE : s_NEWOBJ, &o);
            if (fast < 0) ok = 0;
            if (ok && !fast) {
                if (op == 0x93) o = act(r, p0, s_act_stack_global, a[1], a[0], NULL);
                else if (op == 'R') o = act(r, p0, s_act_reduce, a[0], a[1], NULL);
                else if (op == 0x81) o = act(r, p0, s_act_newobj, a[0], a[1], NULL);
                else if (op == 0x92) o = act(r, p0, s_act_newobj_ex, a[0], a[1], a[2]);
                else if (set_pos(r, p0) == 0) o = make_record(PersistentCls, 1, &s_pid, &a[0]);
            }
            for (Py_ssize_t i = 0; i < k; i++) Py_XDECREF(a[i]);
            PUSH_RESULT(o);
            pos++;
            break;
        }
        case 'o': { /* OBJ */
            Py_ssize_t n, mark = marks_pop(st, &n);
            if (mark < 0) FAIL("could not find MARK");
            PyObject *items = list_py(r, &st->stack[mark], n), *o = NULL;
            release_all(c, &st->stack[mark], n);
            if (items) o = act(r, p0, s_act_obj, items, NULL, NULL);
            Py_XDECREF(items);
            PUSH_RESULT(o);
            pos++;
            break;
        }
        case 'b': { /* BUILD: the walker may step over joblib array data, so it says where to go on */
            UNDERFLOW_IF(st->len - FLOOR() < 2);
            Val state = st->stack[--st->len];
            PyObject *s = to_py(r, &state), *t = s ? to_py(r, &st->stack[st->len - 1]) : NULL, *o = NULL;
            PyObject *next = PyLong_FromSsize_t(pos + 1);
            val_release(c, &state);
            if (s && t && next) o = act(r, p0, s_act_build, t, s, next);
            Py_XDECREF(s);
            Py_XDECREF(t);
            Py_XDECREF(next);
            if (!o) goto error;
            Py_ssize_t np = PyLong_AsSsize_t(o);
            Py_DECREF(o);
            if (np == -1 && PyErr_Occurred()) goto error;
            RELOAD();
            if (np < pos + 1 || np > end) {
                PyErr_SetString(PyExc_SystemError, "walkcore: BUILD resumed outside the buffer");
                goto error;
            }
            pos = np;
            break;
        }
        case 0x82: case 0x83: case 0x84: { /* EXT1, EXT2, EXT4 */
            const int width = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
            if (end - pos - 1 < width) TRUNC();
            PyObject *code = PyLong_FromUnsignedLongLong(read_le(buf + pos + 1, width)), *o = NULL;
            if (code) o = act(r, p0, s_act_ext, code, op == 0x82 ? s_EXT1 : op == 0x83 ? s_EXT2 : s_EXT4, NULL);
            Py_XDECREF(code);
            PUSH_RESULT(o);
            pos += 1 + width;
            break;
        }
        case 'P': { /* PERSID */
            Py_ssize_t nl = line_end(r, pos + 1);
            if (nl < 0) NO_NEWLINE();
            PyObject *raw = PyBytes_FromStringAndSize((const char *)buf + pos + 1, nl - pos - 1), *o = NULL;
            if (raw) o = act(r, p0, s_act_persid, raw, NULL, NULL);
            Py_XDECREF(raw);
            PUSH_RESULT(o);
            pos = nl + 1;
            break;
        }
        default: {
            PyObject *key = PyBytes_FromStringAndSize((const char *)&op, 1);
            if (key) malformed_obj(r, p0, PyUnicode_FromFormat("invalid load key %R (unknown opcode)", key));
            Py_XDECREF(key);
            goto error;
        }
        }
        if (count >= next_check) {
            next_check = count + DEADLINE_EVERY;
            if (periodic(r, pos, count) < 0) goto error;
            RELOAD();
        }
    }
error:
    return -1;
}

/* ------------------------------------------------------------------ Core type */
static PyObject *Core_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"max_stack", "max_memo", NULL};
    PyObject *ms, *mm;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO", kwlist, &ms, &mm)) return NULL;
    if (!Malformed) {
        PyErr_SetString(PyExc_RuntimeError, "walkcore: setup() was not called");
        return NULL;
    }
    CoreObj *c = (CoreObj *)type->tp_alloc(type, 0);
    if (!c) return NULL;
    int o1 = 0, o2 = 0;
    c->max_stack = PyLong_AsLongLongAndOverflow(ms, &o1);
    c->max_memo = PyLong_AsLongLongAndOverflow(mm, &o2);
    if (PyErr_Occurred()) {
        Py_DECREF(c);
        return NULL;
    }
    if (o1) c->max_stack = o1 > 0 ? INT64_MAX : -1;
    if (o2) c->max_memo = o2 > 0 ? INT64_MAX : -1;
    Py_INCREF(ms);
    Py_INCREF(mm);
    c->max_stack_obj = ms;
    c->max_memo_obj = mm;
    c->bigkeys = PyDict_New();
    c->st = c->bigkeys ? state_new(c) : NULL;
    if (!c->st) {
        Py_DECREF(c);
        return NULL;
    }
    return (PyObject *)c;
}

/* Free every state and node; nodes left after the states are gone were cycles. */
static void core_clear(CoreObj *c) {
    while (c->states) state_free(c, c->states);
    c->st = NULL;
    for (Node *nd = c->nodes; nd; nd = nd->next)
        for (Py_ssize_t i = 0; i < nd->n; i++)
            if (nd->items[i].kind == V_PY) Py_CLEAR(nd->items[i].u.obj);
    while (c->nodes) {
        Node *nd = c->nodes;
        nd->n = 0;
        node_unlink_free(c, nd);
    }
}

static void Core_dealloc(CoreObj *c) {
    core_clear(c);
    Py_XDECREF(c->max_stack_obj);
    Py_XDECREF(c->max_memo_obj);
    Py_XDECREF(c->bigkeys);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *Core_clear(CoreObj *c, PyObject *Py_UNUSED(ignored)) {
    if (c->depth) {
        PyErr_SetString(PyExc_RuntimeError, "walkcore: clear() during a walk");
        return NULL;
    }
    core_clear(c);
    PyDict_Clear(c->bigkeys);
    if (!(c->st = state_new(c))) return NULL;
    Py_RETURN_NONE;
}

static PyObject *Core_run(CoreObj *c, PyObject *args) {
    PyObject *walker;
    Py_ssize_t pos;
    int fresh;
    if (!PyArg_ParseTuple(args, "Onp", &walker, &pos, &fresh)) return NULL;
    Run r = {.c = c, .walker = walker};
    PyObject *endobj = PyObject_GetAttr(walker, s_end);
    if (!endobj) return NULL;
    r.end = PyLong_AsSsize_t(endobj);
    Py_DECREF(endobj);
    if (r.end == -1 && PyErr_Occurred()) return NULL;
    r.bufobj = PyObject_GetAttr(walker, s_buf);
    if (!r.bufobj) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(r.bufobj, &view, PyBUF_SIMPLE) < 0) {
        Py_DECREF(r.bufobj);
        return NULL;
    }
    PyObject *result = NULL;
    if (r.end > view.len || pos < 0) {
        PyErr_SetString(PyExc_ValueError, "walkcore: walk outside the buffer");
        goto done;
    }
    r.buf = view.buf;
    if (fresh || !c->st) {
        State *st = state_new(c);
        if (!st) goto done;
        if (c->st && !c->st->owner) state_free(c, c->st);
        c->st = st;
    }
    c->depth++;
    Py_ssize_t np = run_loop(&r, pos);
    c->depth--;
    if (np >= 0) result = PyLong_FromSsize_t(np);
done:
    PyBuffer_Release(&view);
    Py_DECREF(r.bufobj);
    return result;
}

static VMStateObj *vmstate_wrap(CoreObj *c, State *st) {
    VMStateObj *vm = PyObject_New(VMStateObj, &VMStateType);
    if (!vm) return NULL;
    Py_INCREF(c);
    vm->core = c;
    vm->st = st;
    st->owner = vm;
    return vm;
}

/* The current state saved in the returned VMState; walking goes on with `next` (NULL: its creation failed). */
static PyObject *save_and_switch(CoreObj *c, State *next) {
    if (!next) return NULL;
    VMStateObj *vm = vmstate_wrap(c, c->st);
    if (!vm) {
        state_free(c, next);
        return NULL;
    }
    c->st = next;
    return (PyObject *)vm;
}

/* fork(): save the state, go on with a copy. */
static PyObject *Core_fork(CoreObj *c, PyObject *Py_UNUSED(ignored)) { return save_and_switch(c, state_copy(c, c->st)); }

/* save(): save the state, go on with an empty one. */
static PyObject *Core_save(CoreObj *c, PyObject *Py_UNUSED(ignored)) { return save_and_switch(c, state_new(c)); }

static PyObject *Core_restore(CoreObj *c, PyObject *arg) {
    if (!PyObject_TypeCheck(arg, &VMStateType) || ((VMStateObj *)arg)->core != c || !((VMStateObj *)arg)->st) {
        PyErr_SetString(PyExc_ValueError, "walkcore: not a saved state of this core");
        return NULL;
    }
    VMStateObj *vm = (VMStateObj *)arg;
    if (c->st && c->st != vm->st) state_free(c, c->st);
    c->st = vm->st;
    c->st->owner = NULL;
    vm->st = NULL;
    Py_RETURN_NONE;
}

static PyObject *Core_memo_size(CoreObj *c, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSsize_t(c->st ? c->st->memo_len : 0);
}

static PyObject *Core_stack_size(CoreObj *c, PyObject *Py_UNUSED(ignored)) {
    return PyLong_FromSsize_t(c->st ? c->st->len : 0);
}

static PyObject *Core_live_nodes(CoreObj *c, PyObject *Py_UNUSED(ignored)) {
    Py_ssize_t n = 0;
    for (Node *nd = c->nodes; nd; nd = nd->next) n++;
    return PyLong_FromSsize_t(n);
}

static PyMethodDef Core_methods[] = {
    {"run", (PyCFunction)Core_run, METH_VARARGS, "run(walker, pos, fresh) -> position after STOP"},
    {"fork", (PyCFunction)Core_fork, METH_NOARGS, "save the state, go on with a copy"},
    {"save", (PyCFunction)Core_save, METH_NOARGS, "save the state, go on with an empty one"},
    {"restore", (PyCFunction)Core_restore, METH_O, "go back to a saved state"},
    {"clear", (PyCFunction)Core_clear, METH_NOARGS, "free every value of the walk"},
    {"memo_size", (PyCFunction)Core_memo_size, METH_NOARGS, "entries in the current memo"},
    {"stack_size", (PyCFunction)Core_stack_size, METH_NOARGS, "values on the current stack"},
    {"live_nodes", (PyCFunction)Core_live_nodes, METH_NOARGS, "tuples and containers alive"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "modelaudit.scanners._walkcore.Core",
    .tp_basicsize = sizeof(CoreObj),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Core(max_stack, max_memo): the native opcode loop of one walker",
    .tp_new = Core_new,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_methods = Core_methods,
};

static void VMState_dealloc(VMStateObj *vm) {
    if (vm->st) state_free(vm->core, vm->st);
    Py_DECREF(vm->core);
    PyObject_Free(vm);
}

static PyTypeObject VMStateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "modelaudit.scanners._walkcore.VMState",
    .tp_basicsize = sizeof(VMStateObj),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a saved stack, marks and memo",
    .tp_dealloc = (destructor)VMState_dealloc,
};

/* ------------------------------------------------------------------ module */
static int set_global(PyObject **slot, PyObject *value) {
    Py_XINCREF(value);
    Py_XSETREF(*slot, value);
    return 0;
}

static PyObject *setup(PyObject *Py_UNUSED(self), PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"malformed", "budget_exceeded", "opaque", "container", "lazy_bytes", "persistent",
                             "line_values", "int_arg", "memo_value", "max_kept", "max_tuple", "lazy_threshold",
                             "exact_run", "deadline_every", "memo_keep_all", "global_cls", "call_cls", "direct", NULL};
    PyObject *a[9], *glob = NULL, *call = NULL;
    int direct = 0;
    Py_ssize_t kept, tup, lazy, exact, every, keep;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOO!OOnnnnnn|OOp", kwlist, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5],
                                     &PyDict_Type, &a[6], &a[7], &a[8], &kept, &tup, &lazy, &exact, &every, &keep, &glob, &call, &direct))
        return NULL;
    if (kept < 0 || kept > 1 << 20 || tup < 0 || tup > 1 << 20 || lazy < 0 || lazy > 1 << 30 || exact < 0 ||
        every < 1 || keep < 0) {
        PyErr_SetString(PyExc_ValueError, "walkcore: bad limits");
        return NULL;
    }
    set_global(&Malformed, a[0]);
    set_global(&BudgetExceeded, a[1]);
    set_global(&OPAQUE, a[2]);
    set_global(&ContainerCls, a[3]);
    set_global(&LazyBytesCls, a[4]);
    set_global(&PersistentCls, a[5]);
    set_global(&LineValues, a[6]);
    set_global(&IntArg, a[7]);
    set_global(&MemoValue, a[8]);
    if (glob && !PyType_Check(glob)) glob = NULL;
    set_global(&GlobalCls, call ? glob : NULL); /* without both classes every call goes through Python */
    set_global(&CallCls, glob ? call : NULL);
    RecordsDirect = direct && PyType_Check(a[5]) && (!call || PyType_Check(call));
    MAX_KEPT = kept, MAX_TUPLE = tup, LAZY_THRESHOLD = lazy, EXACT_RUN = exact, DEADLINE_EVERY = every;
    MEMO_KEEP_ALL = keep;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", (PyCFunction)(void (*)(void))setup, METH_VARARGS | METH_KEYWORDS,
     "setup(...): the walker's exception types, value classes and limits"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_walkcore", "Native opcode loop of the symbolic pickle walker.", -1, module_methods,
};

#define INTERN(var, text) do { if (!((var) = PyUnicode_InternFromString(text))) return NULL; } while (0)

PyMODINIT_FUNC PyInit__walkcore(void) {
    INTERN(s_buf, "buf"); INTERN(s_end, "end"); INTERN(s_pos, "_pos"); INTERN(s_opcodes, "opcodes");
    INTERN(s_check_deadline, "check_deadline"); INTERN(s_shadow_budget, "_shadow_budget");
    INTERN(s_calls, "calls"); INTERN(s_discarded, "discarded"); INTERN(s_count, "count");
    INTERN(s_extend, "_extend"); INTERN(s_act_global, "act_global"); INTERN(s_act_stack_global, "act_stack_global");
    INTERN(s_act_inst, "act_inst"); INTERN(s_act_obj, "act_obj"); INTERN(s_act_reduce, "act_reduce");
    INTERN(s_act_newobj, "act_newobj"); INTERN(s_act_newobj_ex, "act_newobj_ex"); INTERN(s_act_build, "act_build");
    INTERN(s_act_ext, "act_ext"); INTERN(s_act_persid, "act_persid"); INTERN(s_from_bytes, "from_bytes");
    INTERN(s_little, "little"); INTERN(s_APPEND, "APPEND"); INTERN(s_APPENDS, "APPENDS");
    INTERN(s_ADDITEMS, "ADDITEMS"); INTERN(s_SETITEM, "SETITEM"); INTERN(s_SETITEMS, "SETITEMS");
    INTERN(s_func, "func"); INTERN(s_args, "args"); INTERN(s_pos_field, "pos"); INTERN(s_opcode, "opcode");
    INTERN(s_pid, "pid"); INTERN(s_inert, "inert"); INTERN(s_checked_named, "_checked_named");
    INTERN(s_REDUCE, "REDUCE"); INTERN(s_NEWOBJ, "NEWOBJ"); INTERN(s_EXT1, "EXT1"); INTERN(s_EXT2, "EXT2"); INTERN(s_EXT4, "EXT4");
    INTERN(KindNames[N_TUPLE], "tuple"); INTERN(KindNames[N_LIST], "list"); INTERN(KindNames[N_DICT], "dict");
    INTERN(KindNames[N_SET], "set"); INTERN(KindNames[N_FROZENSET], "frozenset");
    if (!(EmptyTuple = PyTuple_New(0))) return NULL;
    if (PyType_Ready(&CoreType) < 0 || PyType_Ready(&VMStateType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
