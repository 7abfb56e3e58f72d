/* The audio readers (WAV, MP3/ID3/Xing/VBRI, ADTS, OGG with its tail): the first
   byte picks where the head ends and whether the size is known; the rest is the
   file, its tail read where the sniffer asks. */
#include "media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = { data, size };
  unsigned pick = take_byte(&r);
  size_t head = pick & 0x80 ? r.left : (size_t)(pick & 0x7f) * 8;
  media_run(r.p, r.left, head, pick & 0x40 ? -1 : (double)r.left);
  return 0;
}
