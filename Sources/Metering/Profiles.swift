// Hardware profiles: what a machine or a reference GPU costs per hour and can do, plus the stated GPU
// utilization assumptions. Loaded from a dated JSON file (the shipped one by default); prices become
// integer nano-USD per hour on load.

import Foundation

/// The machine tally runs on; its hourly price times busy time is the local cost.
package struct MachineProfile: Sendable, Equatable, Hashable, Codable {
    package var name: String
    package var description: String
    package var hourlyNanoUSD: Int64
    package var vcpus: Int
    package var source: String

    package init(name: String, description: String, hourlyNanoUSD: Int64, vcpus: Int, source: String = "") {
        self.name = name
        self.description = description
        self.hourlyNanoUSD = hourlyNanoUSD
        self.vcpus = vcpus
        self.source = source
    }
}

/// A reference GPU for the GPU-equivalent cost.
package struct GPUProfile: Sendable, Equatable, Hashable, Codable {
    package var name: String
    package var description: String
    package var hourlyNanoUSD: Int64
    /// Dense BF16 peak, FLOP/s.
    package var peakFLOPS: Double
    /// Memory bandwidth, bytes/s.
    package var memoryBandwidth: Double
    package var source: String
    package var assumptions: GPUAssumptions

    package init(name: String, description: String, hourlyNanoUSD: Int64, peakFLOPS: Double, memoryBandwidth: Double,
                 source: String = "", assumptions: GPUAssumptions) {
        self.name = name
        self.description = description
        self.hourlyNanoUSD = hourlyNanoUSD
        self.peakFLOPS = peakFLOPS
        self.memoryBandwidth = memoryBandwidth
        self.source = source
        self.assumptions = assumptions
    }
}

/// How well a serving stack uses the GPU; printed in every report.
package struct GPUAssumptions: Sendable, Equatable, Hashable, Codable {
    /// Fraction of peak FLOP/s achieved (model FLOPs utilization).
    package var mfu: Double
    /// Fraction of memory bandwidth achieved.
    package var mbu: Double
    /// Requests sharing one decode step, so one read of the weights.
    package var decodeBatch: Int
    /// Bytes per K or V element on the GPU (bf16: 2).
    package var kvBytesPerElement: Int
    package var calibration: String

    package init(mfu: Double, mbu: Double, decodeBatch: Int, kvBytesPerElement: Int, calibration: String = "") {
        self.mfu = mfu
        self.mbu = mbu
        self.decodeBatch = decodeBatch
        self.kvBytesPerElement = kvBytesPerElement
        self.calibration = calibration
    }
}

/// A hardware profile file: its machines and GPUs, with the file's name and date for reports.
package struct HardwareProfiles: Sendable, Equatable {
    package var name: String
    package var asOf: String
    package var source: String
    package var machines: [MachineProfile]
    package var gpus: [GPUProfile]
    package var defaultMachine: MachineProfile
    package var defaultGPU: GPUProfile

    /// The profiles shipped with this build (`Data/Hardware2026_11.swift`).
    package static let shipped: HardwareProfiles = {
        do { return try parse(Data(shipped2026_11JSON.utf8), name: shipped2026_11Name) } catch {
            preconditionFailure("shipped hardware profiles do not parse: \(error)")
        }
    }()

    package static func load(path: String) throws -> HardwareProfiles {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MeteringError.badProfileFile(path: path, reason: "cannot read the file")
        }
        return try parse(data, name: (path as NSString).lastPathComponent)
    }

    package func machine(named name: String) throws -> MachineProfile {
        guard let found = machines.first(where: { $0.name == name }) else {
            throw MeteringError.unknownProfile(kind: "machine profile", name: name, known: machines.map(\.name))
        }
        return found
    }

    package func gpu(named name: String) throws -> GPUProfile {
        guard let found = gpus.first(where: { $0.name == name }) else {
            throw MeteringError.unknownProfile(kind: "GPU profile", name: name, known: gpus.map(\.name))
        }
        return found
    }

    private struct File: Decodable {
        struct Machine: Decodable {
            var name: String, description: String, usd_per_hour: Double, vcpus: Int, source: String?
        }
        struct GPU: Decodable {
            var name: String, description: String, usd_per_hour: Double, bf16_tflops: Double
            var memory_bandwidth_tbps: Double, source: String?
        }
        struct Assumptions: Decodable {
            var mfu: Double, mbu: Double, decode_batch: Int, kv_bytes_per_element: Int, calibration: String?
        }
        var as_of: String, collected_from: String?, default_machine: String, default_gpu: String
        var machines: [Machine], gpus: [GPU], gpu_assumptions: Assumptions
    }

    package static func parse(_ data: Data, name: String) throws -> HardwareProfiles {
        let file: File
        do { file = try JSONDecoder().decode(File.self, from: data) } catch {
            throw MeteringError.badProfileFile(path: name, reason: "\(error)")
        }
        let a = file.gpu_assumptions
        guard a.mfu > 0, a.mfu <= 1, a.mbu > 0, a.mbu <= 1, a.decode_batch > 0 else {
            throw MeteringError.badProfileFile(path: name, reason: "gpu_assumptions need 0 < mfu, mbu <= 1 and decode_batch > 0")
        }
        let assumptions = GPUAssumptions(mfu: a.mfu, mbu: a.mbu, decodeBatch: a.decode_batch,
                                         kvBytesPerElement: a.kv_bytes_per_element, calibration: a.calibration ?? "")
        let machines = file.machines.map {
            MachineProfile(name: $0.name, description: $0.description, hourlyNanoUSD: nanoUSD($0.usd_per_hour),
                           vcpus: $0.vcpus, source: $0.source ?? "")
        }
        let gpus = file.gpus.map {
            GPUProfile(name: $0.name, description: $0.description, hourlyNanoUSD: nanoUSD($0.usd_per_hour),
                       peakFLOPS: $0.bf16_tflops * 1e12, memoryBandwidth: $0.memory_bandwidth_tbps * 1e12,
                       source: $0.source ?? "", assumptions: assumptions)
        }
        guard let machine = machines.first(where: { $0.name == file.default_machine }) else {
            throw MeteringError.badProfileFile(path: name, reason: "default_machine \(file.default_machine) is not listed")
        }
        guard let gpu = gpus.first(where: { $0.name == file.default_gpu }) else {
            throw MeteringError.badProfileFile(path: name, reason: "default_gpu \(file.default_gpu) is not listed")
        }
        return HardwareProfiles(name: name, asOf: file.as_of, source: file.collected_from ?? "", machines: machines,
                                gpus: gpus, defaultMachine: machine, defaultGPU: gpu)
    }
}

/// USD (a decimal from a data file) to integer nano-USD, rounded to the nearest.
package func nanoUSD(_ usd: Double) -> Int64 {
    Int64((usd * 1e9).rounded())
}
