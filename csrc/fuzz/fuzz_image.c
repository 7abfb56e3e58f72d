/* sv_media_sniff over any first bytes (images mostly, from the seeds), with and
   without the file's size: never reads past them, never UB, a sane info or why. */
#include "media.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  media_run(data, size, size, -1);
  media_run(data, size, size, (double)size);
  return 0;
}
