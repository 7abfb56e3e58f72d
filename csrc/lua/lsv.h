/* The Lua binding's pieces (csrc/lua/).  What the modules share, each linking
   it once: the error table and the verdict (error.c), the .part handle
   (part.c), a helper thread's handle (work.c).  starvideos.core (core.c) adds
   the commit (commit.c), the command runner (run.c) and the journal's lock and
   writer (lock.c); starvideos.curl is curl.c; starvideos.sign sign.c. */
#ifndef LSV_H
#define LSV_H

#include "../core/sv_core.h"

#include <lauxlib.h>
#include <lua.h>

#ifndef LUAOPEN_API
#define LUAOPEN_API __attribute__((visibility("default")))
#endif

#define ERROR_MT "starvideos.error"
/* a stream (stream.c: starvideos.sign's, and a rock's made with lsv_push_stream): its userdata begins with an
   sv_tap, which the libcurl transport feeds (curl.c: send{tap = stream}) */
#define STREAM_MT "starvideos.stream"
/* starvideos.bytes (curl.c's class, registered with the libcurl transport): bytes in C memory, never copied into a
   Lua string (a part's as the transport read them), which the transport sends
   as a body as they are. */
#define BYTES_MT "starvideos.bytes"
typedef struct lbytes { sv_buf b; } lbytes;

/* nil, the error table (kind, message, field, status, ...) with ERROR_MT: 2 */
SV_API int lsv_fail(lua_State *L, const sv_error *e);
SV_API void lsv_push_error(lua_State *L, const sv_error *e); /* the error table alone, pushed */
/* The error metatable (the same in both modules), left on the stack. */
SV_API void lsv_error_metatable(lua_State *L);
/* A class: methods as __index, close as __gc and __close, __metatable set. */
SV_API void lsv_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close);
/* The verdict's Lua face (verdict.c): task, err, wire[, bytes, total]; the task a
   table built in C from the core's one scan of the answer (a download's: ""). */
SV_API int lsv_push_verdict(lua_State *L, const sv_exchange *x, const char *secret);

/* t[key] of the table at t, a value the options table (options.lua) always
   passes: raises "<where>: <key> is missing ..." when it is absent or of another
   type, so that C never invents a default; a number is clamped to [lo, hi]. */
SV_API double lsv_need_number(lua_State *L, int t, const char *key, double lo, double hi, const char *where);
SV_API const char *lsv_need_string(lua_State *L, int t, const char *key, const char *where);
/* A userdata of size bytes, zeroed, with nuv user values and the class name's metatable, pushed. */
SV_API void *lsv_new_object(lua_State *L, size_t size, int nuv, const char *name);
/* t[k] = v, t the table on top: len bytes of s (NULL: ""), a C string, an integer */
SV_API void lsv_set_str(lua_State *L, const char *k, const char *s, size_t len);
SV_API void lsv_set_cstr(lua_State *L, const char *k, const char *s);
SV_API void lsv_set_int(lua_State *L, const char *k, lua_Integer v);
/* true, or nil and why's text (rc -1); why is freed: 1 or 2 values */
SV_API int lsv_answer(lua_State *L, int rc, sv_buf *why);

/* A download's .part as a Lua value (part.c).  lsv_part_class registers the
   class (both modules do, when opened).  lsv_push_part pushes a handle holding
   no .part yet and returns where it goes: made before the .part is taken from
   its owner, so that an error of memory in making it loses none.
   lsv_take_part: the .part of the handle at idx, which gives it up; raises on
   another value, or a handle already committed or closed. */
SV_API void lsv_part_class(lua_State *L);
SV_API sv_part **lsv_push_part(lua_State *L);
SV_API sv_part *lsv_take_part(lua_State *L, int idx);
/* The part_commit function (part.c) hashing with hash (NULL: none), pushed.
   lsv_opt_hasher: the hasher at idx (a module's sv_hasher, as a light
   userdata: starvideos.sign's SHA256), NULL when none; raises on another value. */
SV_API void lsv_push_part_commit(lua_State *L, const sv_hasher *hash);
/* What came of a commit's mark (m; NULL: none asked, nothing pushed): true, or why it was not written.  The count
   pushed. */
SV_API int lsv_push_mark(lua_State *L, const sv_mark *m);
SV_API const sv_hasher *lsv_opt_hasher(lua_State *L, int idx);
/* lsv_opt_mp4: the whole-MP4 check asked at idx (nil or false: none, NULL; true:
   any duration, -1; a number: the seconds expected) into *seconds. */
SV_API const double *lsv_opt_mp4(lua_State *L, int idx, double *seconds);

/* A helper thread's handle (work.c): a userdata of a class of its own holding a work (the core's sv_work), with
   poll (nil while the thread works, then what push pushes of the done work: how many values) and close (also __gc
   and __close: lets go of the work, never waiting for the thread).  lsv_new_work_class registers the class c (a
   static: its methods keep its address).  lsv_push_work pushes a handle holding no work yet: its slot.
   lsv_start_work: a handle of kind's work, its data size bytes and the string at 1 copied to data + at (NUL
   ended), started (done here when no thread can be had) and pushed: 1, or nil and why: 2. */
typedef struct lsv_work_class {
  const char *mt;   /* the class's name */
  const char *what; /* the handle's, in "the <what> handle was closed" */
  int (*push)(lua_State *L, sv_work *w);
} lsv_work_class;
SV_API void lsv_new_work_class(lua_State *L, const lsv_work_class *c);
SV_API sv_work **lsv_push_work(lua_State *L, const lsv_work_class *c);
SV_API int lsv_start_work(lua_State *L, const lsv_work_class *c, const sv_work_kind *kind, size_t size, size_t at);

/* The objects of starvideos.core: each registers its class and sets its
   functions into the table on top (part_open; commit_start; run_start; lock_journal,
   try_lock and journal_writer). */
SV_API void lsv_open_part(lua_State *L);
SV_API void lsv_open_commit(lua_State *L);
SV_API void lsv_open_run(lua_State *L);
SV_API void lsv_open_lock(lua_State *L);
/* media_sniff, media_tail and media_check (media.c) */
SV_API void lsv_open_media(lua_State *L);
/* starvideos.sign's stream (stream.c): a check of a video's bytes as they pass, its stream() set into the table
   on top */
SV_API void lsv_open_stream(lua_State *L);
/* What a rock's stream keeps beside the check (the s3 rock's part sums, rocks/s3/csrc/parts.c): fed the bytes the
   stream hashes, in order (-1: fed no more, the stream failed with why); freed with the stream. */
typedef struct lsv_also lsv_also;
struct lsv_also {
  int (*feed)(lsv_also *a, const char *p, size_t n, sv_buf *why);
  void (*free)(lsv_also *a);
};
/* A stream of `expected` seconds (< 0: any) from saved (NULL: byte 0) with also (NULL: none; the stream owns it,
   freed on a failure too) pushed: 1, or nil and why: 2.  Its class is registered once per Lua state, by the
   first module that makes one (each links stream.c: the same class). */
SV_API int lsv_push_stream(lua_State *L, double expected, const char *saved, lsv_also *also);
/* The also of the stream at idx when its feed is `feed` (a module's own), else raises naming `what`. */
SV_API lsv_also *lsv_stream_also(lua_State *L, int idx, int (*feed)(lsv_also *, const char *, size_t, sv_buf *),
                                 const char *what);

#endif
