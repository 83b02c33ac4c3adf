// ModelRuntime: model config, weights as views into the mmap, paged KV storage, the forward pass (issue 5).
import GGUF
import Kernels
