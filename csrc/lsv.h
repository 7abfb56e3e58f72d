/* What the two Lua modules share (lsv_util.c): starvideos.core (lsv_core.c) and
   starvideos.curl (lsv_curl.c, the libcurl transport) each link it once. */
#ifndef LSV_H
#define LSV_H

#include "sv_core.h"

#include <lauxlib.h>
#include <lua.h>

#ifndef LUAOPEN_API
#define LUAOPEN_API __attribute__((visibility("default")))
#endif

#define ERROR_MT "starvideos.error"

SV_API const char *const lsv_op_names[];  /* sv_op's, for luaL_checkoption */
SV_API const char *const lsv_wire_names[];  /* sv_wire's */

/* The error table (kind, message, field, status, ...) with ERROR_MT. */
SV_API void lsv_push_error(lua_State *L, const sv_error *e);
/* nil, the error table: 2 */
SV_API int lsv_fail(lua_State *L, const sv_error *e);
/* The error metatable (the same in both modules), left on the stack. */
SV_API void lsv_error_metatable(lua_State *L);
/* A class: methods as __index (NULL: none, the caller sets it), close as __gc
   and __close; __metatable set last (made again over a table a memory error
   left half made, it is whole: lsv_push_kept relies on it). */
SV_API void lsv_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction close);
/* The verdict's Lua face: task, err, wire[, bytes, total]; the task a table
   built in C from the core's one scan of the answer (a download's: ""). */
SV_API int lsv_push_verdict(lua_State *L, const sv_exchange *x, const char *secret);

/* t[key] of the table at t, a value the options table (options.lua) always
   passes: raises "<where>: <key> is missing ..." when it is absent or of another
   type, so that C never invents a default; a number is clamped to [lo, hi]. */
SV_API double lsv_need_number(lua_State *L, int t, const char *key, double lo, double hi, const char *where);
SV_API const char *lsv_need_string(lua_State *L, int t, const char *key, const char *where);

/* A finished download's open .part, handed as a value from the transport that
   wrote it to the commit: t:result returns it (a userdata of class
   starvideos.kept_file, whose close, __gc and __close close the descriptor),
   core.commit and core.commit_start take it as an argument, so that the commit
   syncs and renames the very file the download wrote, never whatever the name
   points to later.  lsv_push_kept pushes a handle that owns no descriptor yet
   and returns where its descriptor goes: it is made before the descriptor is
   taken, so that an error of memory in making it loses none.
   lsv_kept_take: the descriptor (the handle gives it up), -1 when idx is nil or
   none (a file a Lua transport wrote: the commit opens it by name); raises on
   another value or a handle already taken or closed. */
SV_API int *lsv_push_kept(lua_State *L);
SV_API int lsv_kept_take(lua_State *L, int idx);

#endif
