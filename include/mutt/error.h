/* Error codes shared by every module: 0 is success, failures are negative MUTT_E* values
 * (libuv style). Pure data, no I/O; mutt_strerror() never fails and never allocates. */
#ifndef MUTT_ERROR_H
#define MUTT_ERROR_H

enum mutt_error {
    MUTT_OK = 0,
    MUTT_ENOMEM = -1,        /* allocation failed */
    MUTT_EINVAL = -2,        /* bad argument or input */
    MUTT_EFULL = -3,         /* a capped buffer/queue is full: caller turns it into backpressure */
    MUTT_ECANCELED = -4,     /* operation cancelled (shutdown, stop) */
    MUTT_ETIMEDOUT = -5,     /* deadline passed */
    MUTT_EDISCONNECTED = -6, /* the backend is not connected: fail fast, never queue forever */
    MUTT_EIO = -7,           /* I/O or protocol failure reported by a backend */
    MUTT_ENOTFOUND = -8,     /* no such key/row/item */
    MUTT_EEXIST = -9,        /* already exists / held by someone else */
    MUTT_ESTATE = -10,       /* called in the wrong state */
    MUTT_ERANGE = -11,       /* value out of range */
};

/* Returns a static, human-readable description of `err` (any int; unknown codes say so). */
const char *mutt_strerror(int err);

#endif
