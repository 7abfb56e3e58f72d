/* Shared by the media targets: what any info sv_media_sniff or sv_media_tail
   gives must hold, whatever the bytes. */
#ifndef SV_FUZZ_MEDIA_H
#define SV_FUZZ_MEDIA_H

#include "fuzz.h"

#include <math.h>

static inline void media_sane(const sv_media *m) {
  PROPERTY(m->kind >= SV_MEDIA_IMAGE && m->kind <= SV_MEDIA_TEXT && m->type, "a kind and a type");
  PROPERTY(m->width >= 0 && m->height >= 0 && isfinite(m->width) && isfinite(m->height), "a finite frame size");
  PROPERTY(m->duration == -1 || (m->duration >= 0 && isfinite(m->duration)), "-1 or a finite duration");
  PROPERTY(m->tail == -1 || (m->tail >= 0 && isfinite(m->tail)), "-1 or a finite tail");
  PROPERTY(m->size < 0 || m->tail < m->size, "a tail inside the file");
}

/* sniff data[0, head) of a file of `total` bytes (< 0 unknown), then, when asked,
   read the rest as its tail (when the rest lies at the offset asked) */
static inline void media_run(const uint8_t *data, size_t size, size_t head, double total) {
  sv_media m;
  sv_buf why = { 0 };
  if (head > size) head = size;
  if (sv_media_sniff(data, head, total, &m, &why) == 0) {
    media_sane(&m);
    if (m.tail >= 0 && m.tail <= (double)size) {
      size_t at = (size_t)m.tail;
      double before = m.tail;
      if (sv_media_tail(&m, data + at, size - at, (double)at, &why) == 0) {
        media_sane(&m);
        PROPERTY(m.tail == -1 || m.tail > before, "a new tail lies further on");
      }
    }
  } else {
    PROPERTY(why.len > 0 && !why.oom, "a failure says why");
  }
  sv_buf_free(&why);
}

#endif
