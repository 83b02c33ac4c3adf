// Kernels: the Swift face of CKernels, the f32 ops and the compute thread pool (issue 5).
import CKernels
