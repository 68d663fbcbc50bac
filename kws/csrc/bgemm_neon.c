/* ARMv8 NEON micro-kernel (FBCK).  Placeholder until the FBCK kernel lands: off aarch64 this file
 * compiles to the NULL getter. */
#include "kernels.h"
const kws_isa *kws_isa_neon(void) { return 0; }
