// Engine: requests, scheduler, block pool, prefix cache, the engine loop; token ids only (issue 6).
import ModelRuntime
import Sampling
