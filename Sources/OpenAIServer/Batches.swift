// /v1/files and /v1/batches in OpenAI's shape: upload a JSONL file of requests (`purpose: batch`), create
// a batch over it, and collect its output file (and error file) when it completes. Each line runs through
// the same handler as the endpoint it names, so its response body is exactly what that endpoint answers;
// it is metered like any request, tagged "batch" with the batch's id as its session.
//
// Lines run in idle capacity: the runner submits one only while no interactive request waits and keeps at
// most `batchSlots` in flight; the engine admits every waiting interactive request before a batch line and
// pauses batch lines while interactive work runs or waits (EngineCore.schedule). Everything is on disk (files, batches, output appended and synced
// line by line), so a batch survives a restart: its finished lines are read back from its output and
// error files and the rest run. A line that was running at a crash runs again (its first run's usage
// record stays: metering is never lost, at worst counted twice for that line).

import Foundation
import Hummingbird
import MultipartKit
import NIOCore
import Synchronization

/// OpenAI's File object, as stored beside the file's bytes.
struct StoredFile: Codable, Sendable {
    var id: String
    var bytes: Int
    var createdAt: Int
    var filename: String
    /// "batch" (uploaded), "batch_output" (a batch's output or error file).
    var purpose: String
    var tenant: String?

    var json: JSON {
        .object([("id", .string(id)), ("object", .string("file")), ("bytes", .int(bytes)), ("created_at", .int(createdAt)),
                 ("filename", .string(filename)), ("purpose", .string(purpose)), ("status", .string("processed")),
                 ("expires_at", .null), ("status_details", .null)])
    }
}

/// OpenAI's Batch object, as stored.
struct StoredBatch: Codable, Sendable {
    var id: String
    var endpoint: String
    var inputFileID: String
    var completionWindow: String
    /// validating, failed, in_progress, finalizing, completed, expired, cancelling, cancelled.
    var status: String
    var tenant: String?
    var outputFileID: String?
    var errorFileID: String?
    var createdAt: Int
    var expiresAt: Int
    var times: [String: Int] = [:]  // in_progress_at, finalizing_at, completed_at, failed_at, cancelling_at, cancelled_at, expired_at
    var total = 0
    var completed = 0
    var failed = 0
    /// Validation errors (the batch failed before running): line number and message.
    var errors: [LineError] = []
    var metadata: [String: String]?
    /// Summed from the output file when the batch ends (JSON text of OpenAI's `usage`, with tally's cost).
    var usage: String?

    struct LineError: Codable, Sendable {
        var code: String
        var message: String
        var line: Int?
    }

    var isActive: Bool { ["validating", "in_progress", "finalizing", "cancelling"].contains(status) }

    var json: JSON {
        func time(_ key: String) -> JSON { times[key].map(JSON.int) ?? .null }
        let errorList: JSON = errors.isEmpty ? .null : .object([("object", .string("list")), ("data", .array(errors.map {
            .object([("code", .string($0.code)), ("message", .string($0.message)), ("param", .null), ("line", $0.line.map(JSON.int) ?? .null)])
        }))])
        return .object([
            ("id", .string(id)), ("object", .string("batch")), ("endpoint", .string(endpoint)), ("errors", errorList),
            ("input_file_id", .string(inputFileID)), ("completion_window", .string(completionWindow)), ("status", .string(status)),
            ("output_file_id", .optional(outputFileID)), ("error_file_id", .optional(errorFileID)), ("created_at", .int(createdAt)),
            ("in_progress_at", time("in_progress_at")), ("expires_at", .int(expiresAt)), ("finalizing_at", time("finalizing_at")),
            ("completed_at", time("completed_at")), ("failed_at", time("failed_at")), ("expired_at", time("expired_at")),
            ("cancelling_at", time("cancelling_at")), ("cancelled_at", time("cancelled_at")),
            ("request_counts", .object([("total", .int(total)), ("completed", .int(completed)), ("failed", .int(failed))])),
            ("metadata", metadata.map { .object($0.sorted { $0.key < $1.key }.map { ($0.key, JSON.string($0.value)) }) } ?? .null),
            ("usage", usage.flatMap { try? JSON(parsing: Array($0.utf8)) } ?? .null),
        ])
    }
}

/// Files and batches on disk, under one folder: `files/ID.json` (the File object) and `files/ID.jsonl`
/// (its bytes), `batches/ID.json`. Objects are rewritten whole (write to a temporary file, then rename);
/// output lines are appended and synced one by one.
actor BatchStore {
    let root: URL
    private let lockFD: Int32
    private var files: [String: StoredFile] = [:]
    private var batches: [String: StoredBatch] = [:]

    /// Another server already runs batches from this folder.
    struct FolderInUse: Error, CustomStringConvertible {
        let path: String
        var description: String { "another tally server holds \(path) (give each server its own --batch-dir)" }
    }

    /// Takes the folder for this process (an exclusive lock on `lock`, held until exit): two servers
    /// running the same batches would answer their lines twice.
    init(root: URL) throws {
        self.root = root
        let fm = FileManager.default
        for sub in ["files", "batches"] {
            try fm.createDirectory(at: root.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let lockPath = root.appendingPathComponent("lock").path
        let fd = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if fd >= 0 { close(fd) }
            throw FolderInUse(path: root.path)
        }
        lockFD = fd
        let decoder = JSONDecoder()
        for name in try fm.contentsOfDirectory(atPath: root.appendingPathComponent("files").path) where name.hasSuffix(".json") {
            if let data = fm.contents(atPath: root.appendingPathComponent("files/" + name).path),
               let file = try? decoder.decode(StoredFile.self, from: data) { files[file.id] = file }
        }
        for name in try fm.contentsOfDirectory(atPath: root.appendingPathComponent("batches").path) where name.hasSuffix(".json") {
            if let data = fm.contents(atPath: root.appendingPathComponent("batches/" + name).path),
               let batch = try? decoder.decode(StoredBatch.self, from: data) { batches[batch.id] = batch }
        }
    }

    /// Lets another store take the folder (the server never does: it holds it until exit).
    func unlock() {
        flock(lockFD, LOCK_UN)
        close(lockFD)
    }

    private func objectURL(_ kind: String, _ id: String) -> URL { root.appendingPathComponent("\(kind)/\(id).json") }
    func contentURL(_ id: String) -> URL { root.appendingPathComponent("files/\(id).jsonl") }

    private func save<T: Encodable>(_ value: T, _ kind: String, _ id: String) throws {
        try JSONEncoder().encode(value).write(to: objectURL(kind, id), options: .atomic)
    }

    // MARK: Files

    func addFile(_ bytes: [UInt8], filename: String, purpose: String, tenant: String?) throws -> StoredFile {
        let file = StoredFile(id: "file-" + CompletionService.randomID(), bytes: bytes.count, createdAt: Int(Date().timeIntervalSince1970),
                              filename: filename, purpose: purpose, tenant: tenant)
        try Data(bytes).write(to: contentURL(file.id), options: .atomic)
        try save(file, "files", file.id)
        files[file.id] = file
        return file
    }

    /// A file the tenant may see (another tenant's is as absent as a missing one).
    func file(_ id: String, tenant: String?) -> StoredFile? {
        guard let file = files[id], file.tenant == tenant else { return nil }
        return file
    }

    func files(tenant: String?) -> [StoredFile] { files.values.filter { $0.tenant == tenant }.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) } }

    func content(_ id: String) -> [UInt8]? { FileManager.default.contents(atPath: contentURL(id).path).map { Array($0) } }

    func deleteFile(_ id: String) throws {
        files[id] = nil
        try? FileManager.default.removeItem(at: contentURL(id))
        try FileManager.default.removeItem(at: objectURL("files", id))
    }

    /// Appends one line to a batch's output or error file (made on first use), synced before it returns.
    func append(_ line: String, batchID: String, error: Bool) throws {
        guard var batch = batches[batchID] else { return }
        var id = error ? batch.errorFileID : batch.outputFileID
        if id == nil {
            let file = try addFile([], filename: "\(batchID)_\(error ? "error" : "output").jsonl", purpose: "batch_output", tenant: batch.tenant)
            id = file.id
            if error { batch.errorFileID = file.id } else { batch.outputFileID = file.id }
        }
        let handle = try FileHandle(forWritingTo: contentURL(id!))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((line + "\n").utf8))
        try handle.synchronize()
        if error { batch.failed += 1 } else { batch.completed += 1 }
        try put(batch)
    }

    /// The complete lines of a batch's output or error file, cutting a last line a crash left unfinished.
    func lines(of fileID: String?) throws -> [String] {
        guard let fileID, var bytes = content(fileID) else { return [] }
        if let end = bytes.lastIndex(of: 0x0A), end + 1 < bytes.count {
            bytes = Array(bytes[...end])
            try Data(bytes).write(to: contentURL(fileID), options: .atomic)
        } else if !bytes.isEmpty && bytes.last != 0x0A {
            bytes = []
            try Data().write(to: contentURL(fileID), options: .atomic)
        }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    // MARK: Batches

    func put(_ batch: StoredBatch) throws {
        // The output and error files' sizes follow their content.
        for id in [batch.outputFileID, batch.errorFileID].compactMap({ $0 }) {
            guard var file = files[id] else { continue }
            file.bytes = (try? FileManager.default.attributesOfItem(atPath: contentURL(id).path)[.size] as? Int) ?? 0
            files[id] = file
            try save(file, "files", id)
        }
        try save(batch, "batches", batch.id)
        batches[batch.id] = batch
    }

    /// Changes a batch in one step (no other change can come between reading and writing it); returns it
    /// as changed, nil if there is no such batch.
    @discardableResult
    func update(_ id: String, _ change: @Sendable (inout StoredBatch) -> Void) throws -> StoredBatch? {
        guard var batch = batches[id] else { return nil }
        change(&batch)
        try put(batch)
        return batch
    }

    func batch(_ id: String, tenant: String?) -> StoredBatch? {
        guard let batch = batches[id], batch.tenant == tenant else { return nil }
        return batch
    }

    func batch(_ id: String) -> StoredBatch? { batches[id] }

    func batches(tenant: String?) -> [StoredBatch] { batches.values.filter { $0.tenant == tenant }.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) } }

    /// The oldest batch with work left (in_progress or cancelling, or finalizing after a crash).
    func nextActive() -> StoredBatch? { batches.values.filter(\.isActive).min { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) } }
}

/// One batch input line, checked.
struct BatchLine: Sendable {
    var number: Int
    var customID: String
    var body: [UInt8]

    /// Every line of an input file, or the errors that fail the batch (OpenAI's validation: a JSON object
    /// with a unique `custom_id`, `method` POST, `url` the batch's endpoint, and a `body` object).
    static func parse(_ bytes: [UInt8], endpoint: String, maxLines: Int) -> (lines: [BatchLine], errors: [StoredBatch.LineError]) {
        var lines: [BatchLine] = [], errors: [StoredBatch.LineError] = [], seen = Set<String>()
        let texts = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        for (i, text) in texts.enumerated() where !text.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
            let number = i + 1
            func fail(_ message: String) { errors.append(.init(code: "invalid_request", message: message, line: number)) }
            guard let value = try? JSON(parsing: Array(text)), case .object = value else { fail("line \(number) is not a JSON object"); continue }
            guard case .string(let customID)? = value["custom_id"], !customID.isEmpty, customID.utf8.count <= 512 else {
                fail("line \(number) needs a custom_id string of 1-512 bytes"); continue
            }
            guard seen.insert(customID).inserted else { fail("line \(number) repeats custom_id \(customID.debugDescription.prefix(64))"); continue }
            guard value["method"] == .string("POST") else { fail("line \(number): method must be POST"); continue }
            guard value["url"] == .string(endpoint) else { fail("line \(number): url must be the batch's endpoint \(endpoint)"); continue }
            guard let body = value["body"], case .object = body else { fail("line \(number) needs a body object"); continue }
            lines.append(BatchLine(number: number, customID: customID, body: Array(body.serialized.utf8)))
        }
        if lines.isEmpty && errors.isEmpty { errors.append(.init(code: "empty_file", message: "the input file has no requests", line: nil)) }
        if lines.count > maxLines { errors.append(.init(code: "too_many_requests", message: "the input file has \(lines.count) requests but at most \(maxLines) are allowed", line: nil)) }
        return (lines, Array(errors.prefix(100)))
    }
}

/// Runs batches one at a time, oldest first, each line through its endpoint's handler at batch priority.
final class BatchRunner: Sendable {
    static let endpoints = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]
    /// OpenAI's limit of requests per batch.
    static let maxLines = 50_000

    let store: BatchStore
    let service: CompletionService
    /// Batch lines in flight at once.
    let slots: Int
    init(store: BatchStore, service: CompletionService, slots: Int) {
        self.store = store
        self.service = service
        self.slots = max(1, slots)
    }

    /// Runs until cancelled: the oldest active batch, else a look again in 200 ms.
    func run() async {
        while !Task.isCancelled {
            guard let batch = await store.nextActive() else {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            do {
                try await process(batch.id)
            } catch {
                service.config.logger.error("batch \(batch.id) stopped: \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func now() -> Int { Int(Date().timeIntervalSince1970) }

    private func process(_ id: String) async throws {
        guard let batch = await store.batch(id) else { return }
        let input = await store.content(batch.inputFileID) ?? []
        let (lines, errors) = BatchLine.parse(input, endpoint: batch.endpoint, maxLines: Self.maxLines)
        let start = now()
        try await store.update(id) { b in
            guard b.status == "validating" else { return }
            if errors.isEmpty {
                b.total = lines.count
                b.status = "in_progress"
                b.times["in_progress_at"] = start
            } else {
                b.errors = errors
                b.status = "failed"
                b.times["failed_at"] = start
            }
        }
        guard errors.isEmpty else { return }
        // Lines already answered (before a restart) are not run again, and are what the counts start from.
        let answered = try await store.lines(of: batch.outputFileID), refused = try await store.lines(of: batch.errorFileID)
        var done = Set<String>()
        for line in answered + refused {
            if case .string(let customID)? = (try? JSON(parsing: Array(line.utf8)))?["custom_id"] { done.insert(customID) }
        }
        let (completed, failed) = (answered.count, refused.count)
        try await store.update(id) { b in
            b.completed = completed
            b.failed = failed
        }

        let pending = lines.filter { !done.contains($0.customID) }
        let tenant = batch.tenant, endpoint = batch.endpoint, expiresAt = batch.expiresAt
        var expired = false
        await withTaskGroup(of: Void.self) { group in
            var inFlight = 0
            lines: for line in pending {
                // Idle capacity only: at most `slots` lines in flight, none while an interactive request waits.
                while true {
                    if await store.batch(id)?.status != "in_progress" || Task.isCancelled { break lines }
                    if now() > expiresAt { expired = true; break lines }
                    if inFlight >= slots {
                        _ = await group.next()
                        inFlight -= 1
                    } else if service.engine.snapshot().waiting == 0 {
                        break
                    } else {
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
                inFlight += 1
                group.addTask { await self.runLine(line, batchID: id, tenant: tenant, endpoint: endpoint) }
            }
            await group.waitForAll()
        }
        guard let current = await store.batch(id) else { return }
        let usage = try await usage(of: current).serialized, end = now(), timedOut = expired
        try await store.update(id) { b in
            if timedOut && b.status == "in_progress" {
                b.status = "expired"
                b.times["expired_at"] = end
            } else if b.status == "cancelling" {
                b.status = "cancelled"
                b.times["cancelled_at"] = end
            } else if b.status == "in_progress" || b.status == "finalizing" {
                b.times["finalizing_at"] = b.times["finalizing_at"] ?? end
                b.status = "completed"
                b.times["completed_at"] = end
            } else {
                return
            }
            b.usage = usage
        }
    }

    /// Runs one line; its answer goes to the output file (2xx) or the error file.
    private func runLine(_ line: BatchLine, batchID: String, tenant: String?, endpoint: String) async {
        let origin = CompletionService.Origin.batch(tenant: tenant, batchID: batchID)
        var status = 200
        var body: JSON
        do {
            let response: Response
            switch endpoint {
            case "/v1/completions": response = try await service.completions(body: line.body, arrival: .now, from: origin)
            case "/v1/embeddings": response = try await service.embeddings(body: line.body, arrival: .now, from: origin)
            default: response = try await service.chatCompletions(body: line.body, arrival: .now, from: origin)
            }
            status = Int(response.status.code)
            let bytes = try await Self.collect(response)
            body = try JSON(parsing: Array(bytes.readableBytesView))
        } catch let error as APIError {
            status = Int(error.status.code)
            body = error.envelope
        } catch {
            status = 500
            body = APIError.internalError(error).envelope
        }
        let requestID: JSON = body["id"] ?? .string("req_" + CompletionService.randomID())
        let ok = (200..<300).contains(status)
        let record = JSON.object([
            ("id", .string("batch_req_" + CompletionService.randomID())), ("custom_id", .string(line.customID)),
            ("response", .object([("status_code", .int(status)), ("request_id", requestID), ("body", body)])),
            ("error", ok ? .null : .object([("code", body["error"]?["code"] ?? .null), ("message", body["error"]?["message"] ?? .null)])),
        ])
        do {
            try await store.append(record.serialized, batchID: batchID, error: !ok)
        } catch {
            service.config.logger.error("batch \(batchID): cannot write the answer to line \(line.number): \(error)")
        }
    }

    static func collect(_ response: Response) async throws -> ByteBuffer {
        let box = Collected()
        try await response.body.write(Collector(box: box))
        return box.buffer.withLock { $0 }
    }

    final class Collected: Sendable { let buffer = Mutex(ByteBuffer()) }
    struct Collector: ResponseBodyWriter {
        let box: Collected
        mutating func write(_ buffer: ByteBuffer) async throws {
            var buffer = buffer
            box.buffer.withLock { _ = $0.writeBuffer(&buffer) }
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    /// OpenAI's batch `usage`, summed over the output file, with tally's cost: local, GPU-equivalent, and
    /// each API's batch tier (what the same work would have cost as an API batch).
    private func usage(of batch: StoredBatch) async throws -> JSON {
        var input = 0, output = 0, cached = 0, local = 0.0, gpu = 0.0
        var apis: [(String, Double)] = []
        for line in try await store.lines(of: batch.outputFileID) {
            guard let usage = (try? JSON(parsing: Array(line.utf8)))?["response"]?["body"]?["usage"] else { continue }
            if case .int(let n)? = usage["prompt_tokens"] { input += n }
            if case .int(let n)? = usage["completion_tokens"] { output += n }
            if case .int(let n)? = usage["prompt_tokens_details"]?["cached_tokens"] { cached += n }
            guard let cost = usage["cost"] else { continue }
            local += cost["local"]?.number ?? 0
            gpu += cost["gpu_equivalent"]?.number ?? 0
            if case .object(let members)? = cost["api_equivalent"] {
                for (model, tiers) in members {
                    let usd = tiers["batch"]?.number ?? 0
                    if let i = apis.firstIndex(where: { $0.0 == model }) { apis[i].1 += usd } else { apis.append((model, usd)) }
                }
            }
        }
        var members: [(String, JSON)] = [
            ("input_tokens", .int(input)), ("input_tokens_details", .object([("cached_tokens", .int(cached))])),
            ("output_tokens", .int(output)), ("output_tokens_details", .object([("reasoning_tokens", .int(0))])),
            ("total_tokens", .int(input + output)),
        ]
        if service.config.meter != nil {
            members.append(("cost", .object([("currency", .string("USD")), ("local", .double(local)), ("gpu_equivalent", .double(gpu)),
                                             ("api_batch_equivalent", .object(apis.map { ($0.0, JSON.double($0.1)) }))])))
        }
        return .object(members)
    }
}

extension JSON {
    /// A number's value (nil for anything else).
    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        case .float(let f): Double(f)
        default: nil
        }
    }
}

// MARK: Routes

extension CompletionService {
    /// POST /v1/files: multipart form with `purpose` ("batch") and `file` (JSONL).
    func uploadFile(_ request: Request, _ context: ServerRequestContext, batches: BatchStore) async throws -> Response {
        guard let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundary = contentType.split(separator: ";").lazy.map({ $0.trimmingCharacters(in: .whitespaces) })
                .first(where: { $0.lowercased().hasPrefix("boundary=") }).map({ String($0.dropFirst("boundary=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) })
        else {
            throw APIError.invalid("send the file as multipart/form-data with the fields purpose and file", param: "file")
        }
        let body = try await readBody(request, limit: config.maxFileBytes)
        let parts: [MultipartPart]
        do {
            parts = try Self.multipartParts(body, boundary: boundary)
        } catch {
            throw APIError.invalid("the multipart body could not be read (\(error)); send the fields purpose and file", param: "file")
        }
        let purpose = parts.first { $0.name == "purpose" }.map { String(buffer: $0.body) }
        guard purpose == "batch" else {
            throw APIError.invalid("purpose must be \"batch\" (the only purpose this server stores files for)", param: "purpose")
        }
        guard let part = parts.first(where: { $0.name == "file" }) else { throw APIError.invalid("file is required", param: "file") }
        let disposition = part.headers.first(name: "Content-Disposition") ?? ""
        let filename = disposition.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix("filename=") }.map { String($0.dropFirst("filename=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) } ?? "upload.jsonl"
        let file = try await batches.addFile(Array(part.body.readableBytesView), filename: String(filename.prefix(255)), purpose: "batch",
                                             tenant: tenant(of: context))
        return jsonResponse(file.json)
    }

    /// The parts of a multipart/form-data body.
    static func multipartParts(_ body: [UInt8], boundary: String) throws -> [MultipartPart] {
        let parser = MultipartParser(boundary: boundary)
        var parts: [MultipartPart] = [], headers = HTTPHeaders(), content = ByteBuffer()
        parser.onHeader = { name, value in headers.add(name: name, value: value) }
        parser.onBody = { chunk in content.writeBuffer(&chunk) }
        parser.onPartComplete = {
            parts.append(MultipartPart(headers: headers, body: content))
            headers = HTTPHeaders()
            content = ByteBuffer()
        }
        try parser.execute(body)
        return parts
    }

    func fileNotFound(_ id: String) -> APIError {
        APIError(status: .notFound, message: "no file with id \(id.debugDescription.prefix(80))", type: "invalid_request_error", param: nil, code: "file_not_found")
    }

    func batchNotFound(_ id: String) -> APIError {
        APIError(status: .notFound, message: "no batch with id \(id.debugDescription.prefix(80))", type: "invalid_request_error", param: nil, code: "batch_not_found")
    }

    /// POST /v1/batches.
    func createBatch(_ request: Request, _ context: ServerRequestContext, batches: BatchStore) async throws -> Response {
        struct Wire: Decodable {
            var inputFileID: String
            var endpoint: String
            var completionWindow: String
            var metadata: [String: String]?
            enum CodingKeys: String, CodingKey { case inputFileID = "input_file_id", endpoint, completionWindow = "completion_window", metadata }
        }
        let wire = try decodeRequest(Wire.self, from: try await readBody(request))
        guard BatchRunner.endpoints.contains(wire.endpoint) else {
            throw APIError.invalid("endpoint must be one of \(BatchRunner.endpoints.joined(separator: ", "))", param: "endpoint")
        }
        guard wire.completionWindow == "24h" else { throw APIError.invalid("completion_window must be \"24h\"", param: "completion_window") }
        if let metadata = wire.metadata, metadata.count > 16 || metadata.contains(where: { $0.key.count > 64 || $0.value.count > 512 }) {
            throw APIError.invalid("metadata holds at most 16 pairs, keys of up to 64 and values of up to 512 characters", param: "metadata")
        }
        let tenant = tenant(of: context)
        guard let file = await batches.file(wire.inputFileID, tenant: tenant), file.purpose == "batch" else {
            throw APIError(status: .notFound, message: "no batch input file with id \(wire.inputFileID.debugDescription.prefix(80))",
                           type: "invalid_request_error", param: "input_file_id", code: "file_not_found")
        }
        let now = Int(Date().timeIntervalSince1970)
        let batch = StoredBatch(id: "batch_" + Self.randomID(), endpoint: wire.endpoint, inputFileID: file.id, completionWindow: "24h",
                                status: "validating", tenant: tenant, createdAt: now, expiresAt: now + 86_400, metadata: wire.metadata)
        try await batches.put(batch)
        return jsonResponse(batch.json)
    }

    func cancelBatch(_ id: String, _ context: ServerRequestContext, batches: BatchStore) async throws -> Response {
        guard await batches.batch(id, tenant: tenant(of: context)) != nil else { throw batchNotFound(id) }
        let now = Int(Date().timeIntervalSince1970)
        let batch = try await batches.update(id) { b in
            guard b.status == "validating" || b.status == "in_progress" else { return }
            b.status = "cancelling"
            b.times["cancelling_at"] = now
        }
        guard let batch else { throw batchNotFound(id) }
        return jsonResponse(batch.json)
    }

    /// OpenAI's list: `data`, `first_id`, `last_id`, `has_more`; `after` and `limit` page through it.
    func list(_ items: [(id: String, json: JSON)], request: Request) throws -> Response {
        let limit = request.uri.queryParameters.get("limit", as: Int.self) ?? 20
        guard (1...100).contains(limit) else { throw APIError.invalid("limit must be between 1 and 100", param: "limit") }
        var rest = items[...]
        if let after = request.uri.queryParameters.get("after"), let i = items.firstIndex(where: { $0.id == after }) {
            rest = items[(i + 1)...]
        }
        let page = Array(rest.prefix(limit))
        return jsonResponse(.object([("object", .string("list")), ("data", .array(page.map(\.json))),
                                     ("first_id", .optional(page.first?.id)), ("last_id", .optional(page.last?.id)),
                                     ("has_more", .bool(rest.count > limit))]))
    }
}

/// Adds the files and batches routes, and starts the runner (for the server's lifetime).
func addBatchRoutes(to v1: RouterGroup<ServerRequestContext>, service: CompletionService, directory: URL, slots: Int) throws {
    let store: BatchStore
    do {
        store = try BatchStore(root: directory)
    } catch let error as BatchStore.FolderInUse {
        service.config.logger.warning("no batch API: \(error)")
        return
    }
    let runner = BatchRunner(store: store, service: service, slots: slots)
    Task.detached(priority: .utility) { await runner.run() }
    v1.post("files") { request, context -> Response in try await service.uploadFile(request, context, batches: store) }
    v1.get("files") { request, context -> Response in
        try service.list(await store.files(tenant: service.tenant(of: context)).map { ($0.id, $0.json) }, request: request)
    }
    v1.get("files/:id") { _, context -> Response in
        let id = try context.parameters.require("id")
        guard let file = await store.file(id, tenant: service.tenant(of: context)) else { throw service.fileNotFound(id) }
        return jsonResponse(file.json)
    }
    v1.get("files/:id/content") { _, context -> Response in
        let id = try context.parameters.require("id")
        guard await store.file(id, tenant: service.tenant(of: context)) != nil, let bytes = await store.content(id) else { throw service.fileNotFound(id) }
        return Response(status: .ok, headers: [.contentType: "application/jsonl"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
    v1.delete("files/:id") { _, context -> Response in
        let id = try context.parameters.require("id")
        guard await store.file(id, tenant: service.tenant(of: context)) != nil else { throw service.fileNotFound(id) }
        try await store.deleteFile(id)
        return jsonResponse(.object([("id", .string(id)), ("object", .string("file")), ("deleted", .bool(true))]))
    }
    v1.post("batches") { request, context -> Response in try await service.createBatch(request, context, batches: store) }
    v1.get("batches") { request, context -> Response in
        try service.list(await store.batches(tenant: service.tenant(of: context)).map { ($0.id, $0.json) }, request: request)
    }
    v1.get("batches/:id") { _, context -> Response in
        let id = try context.parameters.require("id")
        guard let batch = await store.batch(id, tenant: service.tenant(of: context)) else { throw service.batchNotFound(id) }
        return jsonResponse(batch.json)
    }
    v1.post("batches/:id/cancel") { _, context -> Response in
        try await service.cancelBatch(try context.parameters.require("id"), context, batches: store)
    }
}
