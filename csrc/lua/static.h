/* The static library's Lua modules (make static): tools/embed-lua.lua writes
   the table, static.c loads from it.  Hidden like every symbol but
   luaopen_*; make static also localizes it in the archive. */
#ifndef LSV_STATIC_H
#define LSV_STATIC_H

#include <stddef.h>

typedef struct sv_lua_module {
  const char *name;      /* "starvideos.client"; NULL ends the table */
  const char *chunkname; /* "@starvideos/client.lua", for messages */
  const char *src;
  size_t len;
} sv_lua_module;

#if defined(__GNUC__)
__attribute__((visibility("hidden")))
#endif
extern const sv_lua_module sv_lua_modules[];

#endif
