// CKernels: the hot int8 loops in C (issue 5 fills this in). Each kernel has a scalar reference.
#ifndef TALLY_CKERNELS_H
#define TALLY_CKERNELS_H

#include <stdint.h>

/// Dot product of one Q8_0 row (n/32 blocks of {f16 d; int8 q[32]}) with int8-quantized activations
/// (n/32 blocks of scale xs[b] and int8 xq[32]); scalar reference.
float tally_q8_0_dot_scalar(const void *row, const float *xs, const int8_t *xq, int n);

#endif
