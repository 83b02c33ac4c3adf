// OpenAIServer: Hummingbird routes, wire types, SSE, auth, limits (issue 6).
import Engine
import Metering
import Tokenization
