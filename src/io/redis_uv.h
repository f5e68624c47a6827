/* Private to src/io/redis*.c: our libuv glue for hiredis 0.14 async contexts. Not a public
 * module header on purpose (nothing outside the Redis adapter attaches hiredis contexts). */
#ifndef MUTT_IO_REDIS_UV_H
#define MUTT_IO_REDIS_UV_H

#include <uv.h>
#include <hiredis/async.h>

/* Attaches `ac` (fresh from redisAsyncConnect, fd valid) to `loop`. The glue's poll handle is
 * closed by hiredis's cleanup hook when the context is freed and frees itself in its close
 * callback, so it needs no owner. Returns 0, or MUTT_ENOMEM / MUTT_EIO (ac then untouched apart
 * from ev.data staying NULL: free it with redisAsyncFree). */
int mutt_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
