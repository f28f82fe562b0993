/* sfu._fanout: the per-copy forwarding loop in C (rewrite, SRTP protect, sendto), for the steady state.
 *
 * Python keeps every decision (layer choice, switching on a keyframe, keyframe requests, NACK answers) and
 * the reference implementation of the rewrite (Subscription._rewrite); this module repeats only the copy
 * of a packet to a subscription that already forwards its layer, which is what a meeting does 99.9 % of
 * the time. Per copy it allocates nothing: the packet is built in the Route's buffer, protected there by
 * libsrtp (called through pylibsrtp's own srtp_protect, so it is the very session aiortc negotiated) and
 * sent with one sendto. sfu/fanout.py falls back to the pure-Python loop when this module is not built.
 */
#include "_route.h"

#include <structmember.h>

#include <string.h>
#include <time.h>

/* How far (in input sequence numbers) the switch point trails the newest packet forwarded at most. The
 * switch point only has to hold back packets older than the switch (their output numbers would collide
 * with the previous source's); kept within this window of the newest packet, the 16-bit comparison never
 * wraps however long the stream runs. Larger than any ingress ring (sfu/settings.py nack_history <= 4096),
 * so every packet a NACK can still ask for is inside it. Subscription.GUARD_WINDOW is the same number. */
#define GUARD_WINDOW 0x2000

/* The process's counters (sfu/metrics.py reads them through counters()). */
static unsigned long long forwarded_packets, forwarded_bytes, dropped_eagain, dropped_not_connected,
    dropped_guard, dropped_error;

static PyObject *str_seq, *str_ts, *str_pt, *str_marker, *str_payload_start, *str_payload_end, *str_split,
    *str_arrival, *str_vp8, *str_picture_id, *str_pid_bits, *str_pid_offset, *str_tl0, *str_tl0_offset;

/* ------------------------------------------------------------------------------------ SubscriptionBase */

typedef struct {
    PyObject_HEAD
    PyObject *current; /* the Layer forwarded now */
    PyObject *target;  /* the Layer switched to on its next keyframe */
    PyObject *route;   /* a Route, or None: then every copy takes the Python path */
    PyObject *pt_table; /* bytes(128): output payload type per input payload type, 255 = not forwarded */
    PyObject *ext_head, *ext_tail, *ext_bare; /* ExtensionTemplate.head/.tail/.bare */
    int ext_value_len;
    int switch_seq, seq_offset, last_seq;
    int pid_offset, tl0_offset, last_pid, last_tl0;
    unsigned int ts_offset, last_ts, ssrc;
    double last_sent_at;
    long long packets, octets;
    char video, vp8_resync;
} SubscriptionBase;

static int base_traverse(SubscriptionBase *self, visitproc visit, void *arg) {
    Py_VISIT(self->current);
    Py_VISIT(self->target);
    Py_VISIT(self->route);
    Py_VISIT(self->pt_table);
    Py_VISIT(self->ext_head);
    Py_VISIT(self->ext_tail);
    Py_VISIT(self->ext_bare);
    return 0;
}

static int base_clear(SubscriptionBase *self) {
    Py_CLEAR(self->current);
    Py_CLEAR(self->target);
    Py_CLEAR(self->route);
    Py_CLEAR(self->pt_table);
    Py_CLEAR(self->ext_head);
    Py_CLEAR(self->ext_tail);
    Py_CLEAR(self->ext_bare);
    return 0;
}

static void base_dealloc(SubscriptionBase *self) {
    PyObject_GC_UnTrack(self);
    base_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define MEMBER(name, type) {#name, type, offsetof(SubscriptionBase, name), 0, NULL}
static PyMemberDef base_members[] = {
    MEMBER(current, T_OBJECT),     MEMBER(target, T_OBJECT),     MEMBER(route, T_OBJECT),
    MEMBER(pt_table, T_OBJECT),    MEMBER(ext_head, T_OBJECT),   MEMBER(ext_tail, T_OBJECT),
    MEMBER(ext_bare, T_OBJECT),    MEMBER(ext_value_len, T_INT), MEMBER(switch_seq, T_INT),
    MEMBER(seq_offset, T_INT),     MEMBER(last_seq, T_INT),      MEMBER(pid_offset, T_INT),
    MEMBER(tl0_offset, T_INT),     MEMBER(last_pid, T_INT),      MEMBER(last_tl0, T_INT),
    MEMBER(ts_offset, T_UINT),     MEMBER(last_ts, T_UINT),      MEMBER(ssrc, T_UINT),
    MEMBER(last_sent_at, T_DOUBLE), MEMBER(packets, T_LONGLONG), MEMBER(octets, T_LONGLONG),
    MEMBER(video, T_BOOL),         MEMBER(vp8_resync, T_BOOL),   {NULL},
};

static PyTypeObject SubscriptionBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sfu._fanout.SubscriptionBase",
    .tp_doc = "The state of a Subscription that the C copy loop reads and updates.",
    .tp_basicsize = sizeof(SubscriptionBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)base_dealloc,
    .tp_traverse = (traverseproc)base_traverse,
    .tp_clear = (inquiry)base_clear,
    .tp_members = base_members,
};

/* ------------------------------------------------------------------------------------------- fan_out */

typedef struct {
    const unsigned char *data;
    long seq, ts, pt, marker, payload_start, payload_end, split;
    double arrival;
    /* VP8 descriptor, when split > payload_start */
    long picture_id, pid_bits, pid_offset, tl0, tl0_offset;
    const unsigned char *value; /* the extension value spliced into each copy, or NULL */
    Py_ssize_t value_len;
} Input;

static int read_long(PyObject *object, PyObject *name, long *out) {
    PyObject *value = PyObject_GetAttr(object, name);
    if (value == NULL)
        return -1;
    *out = PyLong_AsLong(value);
    Py_DECREF(value);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int read_input(PyObject *h, Input *in) {
    if (read_long(h, str_seq, &in->seq) || read_long(h, str_ts, &in->ts) || read_long(h, str_pt, &in->pt) ||
        read_long(h, str_marker, &in->marker) || read_long(h, str_payload_start, &in->payload_start) ||
        read_long(h, str_payload_end, &in->payload_end) || read_long(h, str_split, &in->split))
        return -1;
    PyObject *arrival = PyObject_GetAttr(h, str_arrival);
    if (arrival == NULL)
        return -1;
    in->arrival = PyFloat_AsDouble(arrival);
    Py_DECREF(arrival);
    if (in->arrival == -1.0 && PyErr_Occurred())
        return -1;
    if (in->split > in->payload_start) {
        PyObject *vp8 = PyObject_GetAttr(h, str_vp8);
        if (vp8 == NULL)
            return -1;
        int failed = read_long(vp8, str_picture_id, &in->picture_id) || read_long(vp8, str_pid_bits, &in->pid_bits) ||
                     read_long(vp8, str_pid_offset, &in->pid_offset) || read_long(vp8, str_tl0, &in->tl0) ||
                     read_long(vp8, str_tl0_offset, &in->tl0_offset);
        Py_DECREF(vp8);
        if (failed)
            return -1;
        long last = in->pid_bits == 15 ? in->pid_offset + 1 : in->pid_offset;
        if (in->pid_offset < in->payload_start || last >= in->split ||
            (in->tl0_offset >= 0 && (in->tl0_offset < in->payload_start || in->tl0_offset >= in->split))) {
            PyErr_SetString(PyExc_ValueError, "fan_out: VP8 descriptor offsets outside the descriptor");
            return -1;
        }
    }
    return 0;
}

static double monotonic(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static inline void put16(unsigned char *p, unsigned int v) {
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void put32(unsigned char *p, unsigned int v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Subscription._rewrite + send, for a subscription already on this layer: FAILED, PYTHON (the caller
 * hands the subscription to Python, nothing done here) or 0. */
static int copy_one(SubscriptionBase *s, Route *route, const Input *in) {
    /* First, so that PYTHON leaves the subscription untouched; the counters move whether or not the copy
     * can be sent, as in Subscription._rewrite. */
    int ready = route_ready(route);
    if (ready == FAILED || ready == PYTHON)
        return ready;
    PyObject *table = s->pt_table;
    if (table == NULL || !PyBytes_Check(table) || PyBytes_GET_SIZE(table) != 128)
        return 0;
    unsigned int out_pt = (unsigned char)PyBytes_AS_STRING(table)[in->pt & 0x7F];
    if (out_pt > 127)
        return 0; /* a payload type this subscriber did not negotiate */
    PyObject *ext_head = s->ext_head, *ext_tail = s->ext_tail, *ext_bare = s->ext_bare;
    if (ext_head == NULL || ext_tail == NULL || ext_bare == NULL || !PyBytes_Check(ext_head) ||
        !PyBytes_Check(ext_tail) || !PyBytes_Check(ext_bare))
        return 0;
    int with_value = in->value != NULL && in->value_len == s->ext_value_len;
    Py_ssize_t ext_len = with_value ? PyBytes_GET_SIZE(ext_head) + in->value_len + PyBytes_GET_SIZE(ext_tail)
                                    : PyBytes_GET_SIZE(ext_bare);
    Py_ssize_t descriptor = in->split - in->payload_start, body = in->payload_end - in->split;
    Py_ssize_t total = 12 + ext_len + descriptor + body;
    unsigned int out_seq = (unsigned int)(in->seq + s->seq_offset) & 0xFFFF;
    unsigned int out_ts = (unsigned int)((unsigned long)in->ts + s->ts_offset);
    unsigned char *b = route->buffer;
    int fits = total <= MAX_PLAIN;
    if (fits) {
        b[0] = ext_len ? 0x90 : 0x80;
        b[1] = (unsigned char)(((in->marker & 1) << 7) | out_pt);
        put16(b + 2, out_seq);
        put32(b + 4, out_ts);
        put32(b + 8, s->ssrc);
        unsigned char *p = b + 12;
        if (with_value) {
            memcpy(p, PyBytes_AS_STRING(ext_head), (size_t)PyBytes_GET_SIZE(ext_head));
            p += PyBytes_GET_SIZE(ext_head);
            memcpy(p, in->value, (size_t)in->value_len);
            p += in->value_len;
            memcpy(p, PyBytes_AS_STRING(ext_tail), (size_t)PyBytes_GET_SIZE(ext_tail));
            p += PyBytes_GET_SIZE(ext_tail);
        } else {
            memcpy(p, PyBytes_AS_STRING(ext_bare), (size_t)ext_len);
            p += ext_len;
        }
        if (descriptor > 0)
            memcpy(p, in->data + in->payload_start, (size_t)descriptor);
        memcpy(p + descriptor, in->data + in->split, (size_t)body);
        if (descriptor > 0) {
            /* Subscription._vp8_descriptor: picture id and TL0PICIDX continue across switches. */
            unsigned int mask = in->pid_bits == 15 ? 0x7FFF : 0x7F;
            if (s->vp8_resync) {
                s->vp8_resync = 0;
                s->pid_offset = (int)((unsigned int)(s->last_pid + 1 - in->picture_id) & 0x7FFF);
                if (in->tl0_offset >= 0)
                    s->tl0_offset = (int)((unsigned int)(s->last_tl0 + 1 - in->tl0) & 0xFF);
            }
            unsigned int pid = (unsigned int)(in->picture_id + s->pid_offset) & mask;
            Py_ssize_t at = in->pid_offset - in->payload_start; /* read_input checked both offsets */
            if (in->pid_bits == 15) {
                p[at] = (unsigned char)(0x80 | (pid >> 8));
                p[at + 1] = (unsigned char)(pid & 0xFF);
            } else {
                p[at] = (unsigned char)pid;
            }
            int newer = ((pid - (unsigned int)s->last_pid) & mask) < (mask >> 1);
            if (newer)
                s->last_pid = (int)pid;
            if (in->tl0_offset >= 0) {
                unsigned int tl0 = (unsigned int)(in->tl0 + s->tl0_offset) & 0xFF;
                p[in->tl0_offset - in->payload_start] = (unsigned char)tl0;
                if (newer)
                    s->last_tl0 = (int)tl0;
            }
        }
    }
    unsigned int ahead = (out_seq - (unsigned int)s->last_seq) & 0xFFFF;
    if (0 < ahead && ahead < 0x8000) {
        s->last_seq = (int)out_seq;
        s->last_ts = out_ts;
    }
    s->last_sent_at = in->arrival != 0.0 ? in->arrival : monotonic();
    s->packets++;
    s->octets += in->payload_end - in->payload_start;
    if (!fits) {
        route->errors++;
        dropped_error++;
    } else if (ready != READY) {
        dropped_not_connected++;
    } else if (route_send_buffer(route, (int)total)) {
        forwarded_packets++;
        forwarded_bytes += (unsigned long long)total;
    } else if (route->last_dropped) {
        dropped_eagain++;
    } else {
        dropped_error++;
    }
    return 0;
}

static PyObject *fan_out(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fan_out(subscriptions, layer, data, h, value)");
        return NULL;
    }
    PyObject *subscriptions = args[0], *layer = args[1], *data = args[2], *h = args[3], *value = args[4];
    if (!PyTuple_Check(subscriptions) || !PyBytes_Check(data) || (value != Py_None && !PyBytes_Check(value))) {
        PyErr_SetString(PyExc_TypeError, "fan_out: subscriptions must be a tuple, data bytes, value bytes or None");
        return NULL;
    }
    Input in;
    if (read_input(h, &in) < 0)
        return NULL;
    Py_ssize_t size = PyBytes_GET_SIZE(data);
    int native = in.split >= in.payload_start && in.payload_start >= 12 && in.payload_end >= in.split &&
                 in.payload_end <= size && in.pt >= 0 && in.pt < 128;
    in.data = (const unsigned char *)PyBytes_AS_STRING(data);
    in.value = value == Py_None ? NULL : (const unsigned char *)PyBytes_AS_STRING(value);
    in.value_len = value == Py_None ? 0 : PyBytes_GET_SIZE(value);
    PyObject *slow = NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(subscriptions);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(subscriptions, i);
        if (!PyObject_TypeCheck(item, &SubscriptionBaseType)) {
            PyErr_SetString(PyExc_TypeError, "fan_out: not a SubscriptionBase");
            goto fail;
        }
        SubscriptionBase *s = (SubscriptionBase *)item;
        /* A reference for the whole iteration: route_ready may call Python, which may rebind these. */
        Py_INCREF(s);
        int take_slow = 0;
        if (s->current == layer) {
            long behind = (in.seq - s->switch_seq) & 0xFFFF;
            if (behind >= 0x8000) {
                dropped_guard++; /* older than the switch point: its output number would collide */
            } else if (native && s->route != NULL && Py_IS_TYPE(s->route, &RouteType)) {
                Route *route = (Route *)s->route;
                Py_INCREF(route);
                int rc = copy_one(s, route, &in);
                Py_DECREF(route);
                if (rc == FAILED) {
                    /* One subscription's failure (its refresh raised) must not stop the copies to the others:
                     * counted, and left to Python, which meets the same error where it is logged once. */
                    PyErr_Clear();
                    dropped_error++;
                    take_slow = 1;
                } else if (rc == PYTHON) {
                    take_slow = 1;
                } else if (behind > GUARD_WINDOW) {
                    s->switch_seq = (int)((in.seq - GUARD_WINDOW) & 0xFFFF);
                }
            } else {
                take_slow = 1;
            }
        } else if (s->target == layer) {
            take_slow = 1;
        }
        if (take_slow) {
            if (slow == NULL && (slow = PyList_New(0)) == NULL) {
                Py_DECREF(s);
                goto fail;
            }
            if (PyList_Append(slow, item) < 0) {
                Py_DECREF(s);
                goto fail;
            }
        }
        Py_DECREF(s);
    }
    if (slow == NULL)
        Py_RETURN_NONE;
    return slow;
fail:
    Py_XDECREF(slow);
    return NULL;
}

static PyObject *counters(PyObject *module, PyObject *unused) {
    return Py_BuildValue("{sKsKsKsKsKsK}", "forwarded_packets", forwarded_packets, "forwarded_bytes",
                         forwarded_bytes, "dropped_eagain", dropped_eagain, "dropped_not_connected",
                         dropped_not_connected, "dropped_guard", dropped_guard, "dropped_error", dropped_error);
}

static PyMethodDef module_methods[] = {
    {"counters", (PyCFunction)counters, METH_NOARGS, "The copy loop's counters since the process started."},
    {"fan_out", (PyCFunction)(void (*)(void))fan_out, METH_FASTCALL,
     "Copy one input packet to every subscription forwarding `layer`; the ones Python must handle, or None."},
    {"set_protect", (PyCFunction)route_set_protect, METH_O, "The address of libsrtp's srtp_protect to call."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, .m_name = "sfu._fanout", .m_doc = "The SFU's per-copy forwarding loop in C.",
    .m_size = -1, .m_methods = module_methods,
};

#define INTERN(var, text)                                                                                      \
    if ((var = PyUnicode_InternFromString(text)) == NULL)                                                      \
        return NULL;

PyMODINIT_FUNC PyInit__fanout(void) {
    INTERN(str_seq, "seq");
    INTERN(str_ts, "ts");
    INTERN(str_pt, "pt");
    INTERN(str_marker, "marker");
    INTERN(str_payload_start, "payload_start");
    INTERN(str_payload_end, "payload_end");
    INTERN(str_split, "split");
    INTERN(str_arrival, "arrival");
    INTERN(str_vp8, "vp8");
    INTERN(str_picture_id, "picture_id");
    INTERN(str_pid_bits, "pid_bits");
    INTERN(str_pid_offset, "pid_offset");
    INTERN(str_tl0, "tl0");
    INTERN(str_tl0_offset, "tl0_offset");
    if (route_init() < 0)
        return NULL;
    if (PyType_Ready(&RouteType) < 0 || PyType_Ready(&SubscriptionBaseType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddType(module, &RouteType) < 0 || PyModule_AddType(module, &SubscriptionBaseType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
