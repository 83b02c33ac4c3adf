// `tally pull ORG/REPO FILE` and `tally pull URL`: a model file the user names, from a Hugging Face
// repository (resolved at ENDPOINT/ORG/REPO/resolve/REVISION/FILE, as huggingface_hub resolves it) or any
// http(s) URL. The bytes go to DEST.part and a later run resumes from there with a Range request; the whole
// file is checked against a sha256 (given with --sha256, else the hub's X-Linked-Etag, the sha256 of an LFS
// file) before it is renamed into place. Redirects are followed by hand: the hub states the sha256 on its
// redirect, not on the CDN's answer, and a token must not travel to another host.

import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

package struct ModelDownload: Sendable {
    package var url: String
    package var destination: String
    package var expectedSHA256: String?
    /// Bearer token for gated repositories (HF_TOKEN), sent only to the origin of `url`, not along redirects elsewhere.
    package var token: String?

    package init(url: String, destination: String, expectedSHA256: String? = nil, token: String? = nil) {
        self.url = url
        self.destination = destination
        self.expectedSHA256 = expectedSHA256?.lowercased()
        self.token = token
    }

    /// The download URL of FILE in a Hugging Face repository ORG/NAME at `revision`.
    package static func hubURL(repo: String, file: String, revision: String = "main", endpoint: String = "https://huggingface.co") throws -> String {
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && !$0.contains("..") }), !file.isEmpty, !file.hasPrefix("/"),
              !file.split(separator: "/").contains("..") else {
            throw DownloadError.badSource("\(repo) \(file)")
        }
        let encodedFile = file.split(separator: "/").map { $0.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? String($0) }
        return "\(endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint)/\(repo)/resolve/\(revision)/\(encodedFile.joined(separator: "/"))"
    }

    package struct Progress: Sendable {
        package var received: Int64
        package var total: Int64?
    }

    package enum Outcome: Sendable, Equatable {
        case alreadyPresent(sha256: String)
        /// `resumedFrom`: bytes that were already in DEST.part; `checkedAgainst`: where the expected sha256 came from.
        case downloaded(sha256: String, resumedFrom: Int64, checkedAgainst: String?)
    }

    package var partPath: String { destination + ".part" }

    package func run(progress: @escaping @Sendable (Progress) -> Void = { _ in }) async throws -> Outcome {
        let files = FileManager.default
        if files.fileExists(atPath: destination) {
            let actual = try sha256Hex(ofFile: destination)
            if let expected = expectedSHA256, expected != actual {
                throw QuantizerError.checksumMismatch(path: destination, expected: expected, actual: actual)
            }
            return .alreadyPresent(sha256: actual)
        }
        try files.createDirectory(atPath: (destination as NSString).deletingLastPathComponent.isEmpty ? "." : (destination as NSString).deletingLastPathComponent,
                                  withIntermediateDirectories: true)
        let offset = Int64((try? files.attributesOfItem(atPath: partPath)[.size] as? Int) ?? 0)

        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: .seconds(30), read: .seconds(60))
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        do {
            let outcome = try await transfer(client, offset: offset, progress: progress)
            try await client.shutdown()
            return outcome
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func transfer(_ client: HTTPClient, offset start: Int64, progress: @escaping @Sendable (Progress) -> Void) async throws -> Outcome {
        let files = FileManager.default
        var offset = start
        let resumedFrom = start
        var current = url
        var hubSHA256: String?
        var response: HTTPClientResponse!
        for _ in 0...10 {
            var request = HTTPClientRequest(url: current)
            request.headers.add(name: "User-Agent", value: "tally")
            if offset > 0 { request.headers.add(name: "Range", value: "bytes=\(offset)-") }
            if let token, Self.origin(current) == Self.origin(url) { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
            response = try await client.execute(request, timeout: .seconds(60))
            if let etag = response.headers.first(name: "X-Linked-Etag").map(Self.unquoted), Self.isSHA256(etag) { hubSHA256 = etag }
            guard (300...399).contains(response.status.code), let location = response.headers.first(name: "Location") else { break }
            _ = try? await response.body.collect(upTo: 1 << 20)
            guard let next = URL(string: location, relativeTo: URL(string: current))?.absoluteString else { throw DownloadError.badRedirect(location) }
            current = next
        }
        switch response.status.code {
        case 200:
            offset = 0  // the server sent the whole file: start over
        case 206:
            // Content-Range: bytes START-END/TOTAL; anything but our offset means the part is unusable.
            let start = response.headers.first(name: "Content-Range").flatMap { $0.split(separator: " ").last?.split(separator: "-").first }.flatMap { Int64($0) }
            guard start == offset else { throw DownloadError.http(status: 206, url: current, hint: "the server resumed at the wrong offset; delete \(partPath) and pull again") }
        case 416 where offset > 0:
            break  // the part already holds every byte; check it below
        case 401, 403:
            throw DownloadError.http(status: Int(response.status.code), url: current, hint: "the repository may be gated or private: set HF_TOKEN to a token that may read it")
        case 404:
            throw DownloadError.http(status: 404, url: current, hint: "no such repository, revision or file; check the names (they are case-sensitive)")
        default:
            throw DownloadError.http(status: Int(response.status.code), url: current, hint: "try again later")
        }

        if response.status.code != 416 {
            let total = response.headers.first(name: "Content-Length").flatMap(Int64.init).map { $0 + offset }
            if offset == 0 { files.createFile(atPath: partPath, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partPath))
            defer { try? handle.close() }
            try handle.truncate(atOffset: UInt64(offset))
            try handle.seek(toOffset: UInt64(offset))
            var received = offset
            var lastReport = ContinuousClock.now
            do {
                for try await chunk in response.body {
                    try handle.write(contentsOf: Data(chunk.readableBytesView))
                    received += Int64(chunk.readableBytes)
                    if ContinuousClock.now - lastReport > .milliseconds(200) {
                        progress(Progress(received: received, total: total))
                        lastReport = .now
                    }
                }
            } catch {
                throw DownloadError.incomplete(received: received, total: total, part: partPath, reason: "\(error)")
            }
            progress(Progress(received: received, total: total))
            if let total, received != total {
                throw DownloadError.incomplete(received: received, total: total, part: partPath, reason: "the connection closed early")
            }
        }

        let actual = try sha256Hex(ofFile: partPath)
        let expected = expectedSHA256 ?? hubSHA256
        if let expected, expected != actual {
            try? files.removeItem(atPath: partPath)
            throw QuantizerError.checksumMismatch(path: current, expected: expected, actual: actual)
        }
        guard Foundation.rename(partPath, destination) == 0 else {
            throw DownloadError.cannotPlace(destination, String(cString: strerror(errno)))
        }
        return .downloaded(sha256: actual, resumedFrom: resumedFrom,
                           checkedAgainst: expectedSHA256 != nil ? "--sha256" : hubSHA256 != nil ? "the hub's X-Linked-Etag" : nil)
    }

    /// Scheme, host and port: where a token may be sent.
    static func origin(_ url: String) -> String? {
        guard let u = URLComponents(string: url) else { return nil }
        return "\(u.scheme ?? "")://\(u.host ?? ""):\(u.port.map(String.init) ?? "")"
    }

    static func unquoted(_ s: String) -> String {
        var t = s.hasPrefix("W/") ? String(s.dropFirst(2)) : s
        t = t.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return t.lowercased()
    }

    static func isSHA256(_ s: String) -> Bool { s.count == 64 && s.allSatisfy(\.isHexDigit) }
}

package enum DownloadError: Error, CustomStringConvertible {
    case badSource(String)
    case badRedirect(String)
    case http(status: Int, url: String, hint: String)
    case incomplete(received: Int64, total: Int64?, part: String, reason: String)
    case cannotPlace(String, String)

    package var description: String {
        switch self {
        case .badSource(let s): return "\(s) is not a model source; give ORG/REPO FILE (a Hugging Face repository and a file in it) or an http(s) URL"
        case .badRedirect(let location): return "the server redirected to \(location), which is not a URL"
        case .http(let status, let url, let hint): return "HTTP \(status) from \(url): \(hint)"
        case .incomplete(let received, let total, let part, let reason):
            return "the transfer stopped after \(received) of \(total.map(String.init) ?? "?") bytes (\(reason)); they are kept in \(part): run the same pull again to resume"
        case .cannotPlace(let path, let reason): return "cannot move the download to \(path): \(reason)"
        }
    }
}
