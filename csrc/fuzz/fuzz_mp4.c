/* MP4 boxes: the sniffer over a head of the file (moov at the end read through
   media_tail, as a caller would), and sv_mp4_check_fd over the same bytes on disk:
   it answers 1 only for boxes that run exactly to the end, ftyp first. */
#include "media.h"

#include <unistd.h>

static char path[64];
static void remove_file(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r = { data, size };
  unsigned pick = take_byte(&r);
  size_t head = pick & 0x80 ? r.left : (size_t)(pick & 0x7f) * 16;
  sv_buf why = { 0 };
  double d;
  FILE *f;
  int rc;
  media_run(r.p, r.left, head, (double)r.left);
  if (!path[0]) {
    snprintf(path, sizeof path, "/tmp/fuzz_mp4.%ld", (long)getpid());
    atexit(remove_file);
  }
  f = fopen(path, "w+b");
  if (!f) abort();
  if ((r.left && fwrite(r.p, 1, r.left, f) != r.left) || fflush(f) != 0) abort();
  rc = sv_mp4_check_fd(fileno(f), pick & 0x40 ? 5 : -1, &d, NULL, &why);
  fclose(f);
  if (rc == 1) {
    PROPERTY(r.left >= 16 && memcmp(r.p + 4, "ftyp", 4) == 0, "ftyp first");
    PROPERTY(d == -1 || (d >= 0 && isfinite(d)), "-1 or a finite duration");
  } else {
    PROPERTY(why.len > 0, "a failure says why");
  }
  sv_buf_free(&why);
  return 0;
}
