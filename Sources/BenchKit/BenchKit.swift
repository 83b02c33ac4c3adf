// BenchKit: workloads, load generator (in-process or HTTP), results (issue 8).
import Engine
import Metering
import Tokenization
