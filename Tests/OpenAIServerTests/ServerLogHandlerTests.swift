// The log line formats of `tally serve --log-format text|json`.

import Foundation
import Logging
import OpenAIServer
import Testing

@Suite struct ServerLogHandlerTests {
    let event = LogEvent(level: .info, message: "request finished", metadata: ["tenant": "acme", "request_id": "cmpl-1", "note": "two words"],
                         source: nil, file: #fileID, function: #function, line: #line)

    @Test func textIsTimeLevelLoggerMessageThenSortedPairs() throws {
        var handler = ServerLogHandler(label: "tally", level: .info, format: .text)
        handler[metadataKey: "replica"] = "r0"
        let line = handler.render(event)
        let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
        #expect(ISO8601DateFormatter.withFractionalSeconds.date(from: parts[0]) != nil)
        #expect(parts[1] == "info" && parts[2] == "tally:")
        #expect(parts[3] == #"request finished note="two words" replica=r0 request_id=cmpl-1 tenant=acme"#)
    }

    @Test func jsonIsOneObjectWithTheMetadataAsMembers() throws {
        let line = ServerLogHandler(label: "tally.meter", level: .info, format: .json).render(event)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["level"] == "info" && object["logger"] == "tally.meter" && object["message"] == "request finished")
        #expect(object["tenant"] == "acme" && object["request_id"] == "cmpl-1" && object["note"] == "two words")
        #expect(object["time"].flatMap(ISO8601DateFormatter.withFractionalSeconds.date(from:)) != nil)
    }
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let withFractionalSeconds: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()
}
