/* The s3 rock's part sums (parts.c): an upload's stream (the core's check of
   the video, csrc/lua/stream.c) that also keeps each part's SHA-256 (its
   payload hash and x-amz-checksum-sha256) and MD5 (Content-MD5, for a store
   that takes no x-amz-checksum-*). */
#ifndef SV_S3_PARTS_H
#define SV_S3_PARTS_H

#include "../../../csrc/lua/lsv.h"

/* stream(seconds, md5 [, saved]) and part(stream) set into the table on top (starvideos.sigv4). */
SV_API void sv_s3_open_parts(lua_State *L);

#endif
