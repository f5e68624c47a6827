/* Text for MUTT_E* codes. Pure; no I/O. */
#include "mutt/error.h"

const char *mutt_strerror(int err)
{
    switch (err) {
    case MUTT_OK: return "success";
    case MUTT_ENOMEM: return "out of memory";
    case MUTT_EINVAL: return "invalid argument";
    case MUTT_EFULL: return "queue or buffer full";
    case MUTT_ECANCELED: return "operation cancelled";
    case MUTT_ETIMEDOUT: return "timed out";
    case MUTT_EDISCONNECTED: return "not connected";
    case MUTT_EIO: return "I/O error";
    case MUTT_ENOTFOUND: return "not found";
    case MUTT_EEXIST: return "already exists";
    case MUTT_ESTATE: return "wrong state";
    case MUTT_ERANGE: return "out of range";
    default: return "unknown error";
    }
}
