/* sfu/_route.c: Route, one subscribe PeerConnection's way out for the C copy loop (see sfu/_fanout.c). */
#include "_route.h"

#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

/* libsrtp 2: srtp_err_status_t srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr). */
typedef int (*protect_fn)(void *ctx, void *packet, int *length);
static protect_fn srtp_protect_fn = NULL;

static PyObject *str_state, *str_tx_srtp, *one;

int route_init(void) {
    str_state = PyUnicode_InternFromString("_state");
    str_tx_srtp = PyUnicode_InternFromString("_tx_srtp");
    one = PyLong_FromLong(1);
    return str_state && str_tx_srtp && one ? 0 : -1;
}

static void route_forget(Route *self) {
    Py_CLEAR(self->dtls);
    Py_CLEAR(self->nominated);
    Py_CLEAR(self->connected);
    Py_CLEAR(self->pair);
    Py_CLEAR(self->session);
    self->ctx = NULL;
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
    }
}

static int route_traverse(Route *self, visitproc visit, void *arg) {
    Py_VISIT(self->refresh);
    Py_VISIT(self->dtls);
    Py_VISIT(self->nominated);
    Py_VISIT(self->connected);
    Py_VISIT(self->pair);
    Py_VISIT(self->session);
    return 0;
}

static int route_clear_refs(Route *self) {
    Py_CLEAR(self->refresh);
    route_forget(self);
    return 0;
}

static void route_dealloc(Route *self) {
    PyObject_GC_UnTrack(self);
    route_clear_refs(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *route_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"refresh", NULL};
    PyObject *refresh;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:Route", keywords, &refresh))
        return NULL;
    if (!PyCallable_Check(refresh)) {
        PyErr_SetString(PyExc_TypeError, "Route: refresh must be callable");
        return NULL;
    }
    Route *self = (Route *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->fd = -1;
    Py_INCREF(refresh);
    self->refresh = refresh;
    return (PyObject *)self;
}

static PyObject *route_set(Route *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"dtls", "nominated", "connected", "pair", "session", "srtp", "fd", "host", "port",
                               NULL};
    PyObject *dtls, *nominated, *connected, *pair, *session;
    unsigned long long srtp;
    int fd, port;
    const char *host;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!OOOKisi:set", keywords, &dtls, &PyDict_Type, &nominated,
                                     &connected, &pair, &session, &srtp, &fd, &host, &port))
        return NULL;
    /* srtp 0: plain RTP (a SIP room terminal without SDES, sfu/plain.py); sent as built. */
    if (port <= 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "Route.set: a bad port");
        return NULL;
    }
    struct sockaddr_storage addr;
    socklen_t addrlen;
    memset(&addr, 0, sizeof addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        addrlen = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        addrlen = sizeof *v6;
    } else {
        PyErr_Format(PyExc_ValueError, "Route.set: %s is not an IP address", host);
        return NULL;
    }
    int own = dup(fd);
    if (own < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    route_forget(self);
    self->fd = own;
    memcpy(&self->addr, &addr, sizeof addr);
    self->addrlen = addrlen;
    self->ctx = (void *)(uintptr_t)srtp;
    Py_INCREF(dtls);
    self->dtls = dtls;
    Py_INCREF(nominated);
    self->nominated = nominated;
    Py_INCREF(connected);
    self->connected = connected;
    Py_INCREF(pair);
    self->pair = pair;
    Py_INCREF(session);
    self->session = session;
    Py_RETURN_NONE;
}

static PyObject *route_clear(Route *self, PyObject *unused) {
    route_forget(self);
    Py_RETURN_NONE;
}

int route_ready(Route *self) {
    if (self->pair != NULL) {
        PyObject *state = PyObject_GetAttr(self->dtls, str_state);
        if (state == NULL)
            return FAILED;
        int connected = state == self->connected;
        Py_DECREF(state);
        if (connected) {
            PyObject *pair = PyDict_GetItemWithError(self->nominated, one); /* borrowed */
            if (pair == NULL && PyErr_Occurred())
                return FAILED;
            if (pair == self->pair) {
                PyObject *session = PyObject_GetAttr(self->dtls, str_tx_srtp);
                if (session == NULL)
                    return FAILED;
                int same = session == self->session;
                Py_DECREF(session);
                if (same)
                    return READY;
            }
        }
    }
    PyObject *result = PyObject_CallNoArgs(self->refresh);
    if (result == NULL)
        return FAILED;
    if (result == Py_None) {
        Py_DECREF(result);
        route_forget(self);
        return PYTHON;
    }
    int ok = PyObject_IsTrue(result);
    Py_DECREF(result);
    if (ok < 0)
        return FAILED;
    return ok && self->pair != NULL && self->fd >= 0 ? READY : NOT_CONNECTED;
}

int route_send_buffer(Route *self, int length) {
    self->last_dropped = 0;
    if (self->ctx != NULL && (srtp_protect_fn == NULL || srtp_protect_fn(self->ctx, self->buffer, &length) != 0)) {
        self->errors++;
        return 0;
    }
    ssize_t sent = sendto(self->fd, self->buffer, (size_t)length, MSG_DONTWAIT, (struct sockaddr *)&self->addr,
                          self->addrlen);
    if (sent < 0) {
        /* As asyncio would with a full socket buffer, minus its queue: a late media packet is a lost one. */
        self->last_dropped = errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS;
        if (self->last_dropped)
            self->dropped++;
        else
            self->errors++;
        return 0;
    }
    self->sent++;
    return 1;
}

static PyObject *route_send(Route *self, PyObject *data) {
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "Route.send: data must be bytes");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    if (n > MAX_PLAIN) {
        PyErr_SetString(PyExc_ValueError, "packet is too long");
        return NULL;
    }
    int ready = route_ready(self);
    if (ready == FAILED)
        return NULL;
    if (ready == PYTHON)
        Py_RETURN_NONE;
    if (ready == NOT_CONNECTED)
        Py_RETURN_FALSE;
    memcpy(self->buffer, PyBytes_AS_STRING(data), (size_t)n);
    return PyBool_FromLong(route_send_buffer(self, (int)n));
}

static PyObject *route_close(Route *self, PyObject *unused) {
    route_forget(self);
    Py_RETURN_NONE;
}

static PyObject *route_get_routed(Route *self, void *closure) {
    return PyBool_FromLong(self->fd >= 0);
}

static PyMethodDef route_methods[] = {
    {"set", (PyCFunction)(void (*)(void))route_set, METH_VARARGS | METH_KEYWORDS,
     "Send on `pair` (socket `fd`, to host:port) with the SRTP session at address `srtp`."},
    {"clear", (PyCFunction)route_clear, METH_NOARGS, "Forget the pair, the socket and the session."},
    {"send", (PyCFunction)route_send, METH_O,
     "Protect and send one RTP packet: True sent, False not sent, None not a connection C can send on."},
    {"close", (PyCFunction)route_close, METH_NOARGS, "Release the socket (idempotent)."},
    {NULL},
};

static PyMemberDef route_members[] = {
    {"sent", T_ULONGLONG, offsetof(Route, sent), READONLY, "packets sent"},
    {"dropped", T_ULONGLONG, offsetof(Route, dropped), READONLY, "packets dropped: socket buffer full"},
    {"errors", T_ULONGLONG, offsetof(Route, errors), READONLY, "packets not sent: SRTP or socket errors"},
    {NULL},
};

static PyGetSetDef route_getset[] = {
    {"routed", (getter)route_get_routed, NULL, "whether a socket is held", NULL},
    {NULL},
};

PyTypeObject RouteType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sfu._fanout.Route",
    .tp_doc = "One subscribe PeerConnection's way out: its nominated pair's socket and its SRTP session.",
    .tp_basicsize = sizeof(Route),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = route_new,
    .tp_dealloc = (destructor)route_dealloc,
    .tp_traverse = (traverseproc)route_traverse,
    .tp_clear = (inquiry)route_clear_refs,
    .tp_methods = route_methods,
    .tp_members = route_members,
    .tp_getset = route_getset,
};

PyObject *route_set_protect(PyObject *module, PyObject *arg) {
    unsigned long long address = PyLong_AsUnsignedLongLong(arg);
    if (address == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    srtp_protect_fn = (protect_fn)(uintptr_t)address;
    Py_RETURN_NONE;
}
