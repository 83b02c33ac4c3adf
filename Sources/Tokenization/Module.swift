// Tokenization: byte-level BPE, SentencePiece BPE, streaming detokenizer, chat templates (issue 4).
import GGUF
