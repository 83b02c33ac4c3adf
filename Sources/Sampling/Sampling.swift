// Sampling: logits -> token (issue 5).
