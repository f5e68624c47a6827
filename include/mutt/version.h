/* The one place the product version lives; --version, /health, build_info and the Moog
 * `agent` field all read it. */
#ifndef MUTT_VERSION_H
#define MUTT_VERSION_H

#define MUTT_VERSION "0.1.0"
#ifndef MUTT_GIT_REV
#define MUTT_GIT_REV "unknown"
#endif

#endif
