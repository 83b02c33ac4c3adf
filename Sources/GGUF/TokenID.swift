// The token id type, shared by every module that handles tokens (Tokenization, ModelRuntime, Engine, ...).
// It lives in GGUF, the one module they all import, because a vocabulary's ids index GGUF's token arrays.

package typealias TokenID = Int32
