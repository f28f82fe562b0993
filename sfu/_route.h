/* sfu/_route.h: the Route type shared by the two halves of sfu._fanout (see sfu/_fanout.c). */
#ifndef SFU_ROUTE_H
#define SFU_ROUTE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <sys/socket.h>

#define BUFFER_SIZE 2048
#define SRTP_MAX_TRAILER_LEN 144 /* pylibsrtp.SRTP_MAX_TRAILER_LEN */
#define MAX_PLAIN (BUFFER_SIZE - SRTP_MAX_TRAILER_LEN)

typedef struct {
    PyObject_HEAD
    PyObject *refresh;   /* callable() -> bool: re-reads the DTLS/ICE state and calls set() or clear() */
    PyObject *dtls;      /* aiortc RTCDtlsTransport */
    PyObject *nominated; /* aioice Connection._nominated (the same dict for the connection's lifetime) */
    PyObject *connected; /* aiortc's State.CONNECTED */
    PyObject *pair;      /* the nominated pair the socket and address below belong to */
    PyObject *session;   /* the pylibsrtp.Session whose srtp_t is ctx (kept alive by this reference) */
    void *ctx;
    int fd; /* our own dup of the pair's socket: never a number the process reused for something else */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    unsigned long long sent, dropped, errors;
    int last_dropped; /* the last route_send_buffer failure was a full socket buffer */
    unsigned char buffer[BUFFER_SIZE];
} Route;

/* READY when the cached socket, address and SRTP session are still the connection's; asks `refresh` once
 * otherwise. `refresh` answers True (set() was called), False (not connected: the copy is lost, as with
 * aiortc) or None (this connection cannot be served from C, e.g. a test's stand-in transport: PYTHON). */
enum { FAILED = -1, NOT_CONNECTED = 0, READY = 1, PYTHON = 2 };

extern PyTypeObject RouteType;

int route_ready(Route *self);
/* Protect the `length` plain bytes in the buffer and send them; 1 sent, 0 not sent (counted). */
int route_send_buffer(Route *self, int length);
/* set_protect(address): where libsrtp's srtp_protect is (pylibsrtp's copy). */
PyObject *route_set_protect(PyObject *module, PyObject *arg);
/* Once, from the module's init: the names the route reads; -1 on error. */
int route_init(void);

#endif
