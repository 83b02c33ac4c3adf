// Cost per 1M tokens at the throughput a run measured, from the same cost model as `tally report`
// (Metering.CostModel), in integer nano-USD.
//
//   local  = machine $/hour x the run's wall time / total tokens x 1M   (the machine is paid for busy or idle)
//   GPU    = sum over completed requests of CostModel.gpuSeconds x GPU $/hour / total tokens x 1M
//   API    = CostModel.apiCosts on the run's token totals (cached prompt tokens at cached rates)
//            / total tokens x 1M, standard and batch tier
//
// total tokens = prompt + output tokens of completed requests.

import Foundation
import Metering

/// What a run's cost is computed from: dated profiles and prices, and the served model's shape.
package struct CostInputs: Sendable {
    package var machine: MachineProfile
    package var gpu: GPUProfile
    package var prices: PriceTable
    package var shape: ModelShape
    /// Where the shape came from ("models/x.gguf", "the default model's shape: pass --model-file").
    package var shapeSource: String

    package init(machine: MachineProfile, gpu: GPUProfile, prices: PriceTable, shape: ModelShape, shapeSource: String) {
        self.machine = machine
        self.gpu = gpu
        self.prices = prices
        self.shape = shape
        self.shapeSource = shapeSource
    }

    /// The shipped profiles and prices (the defaults of `tally report`).
    package static func shipped(shape: ModelShape, shapeSource: String) -> CostInputs {
        CostInputs(machine: HardwareProfiles.shipped.defaultMachine, gpu: HardwareProfiles.shipped.defaultGPU,
                   prices: PriceTable.shipped, shape: shape, shapeSource: shapeSource)
    }
}

package struct CostPerMillion: Sendable, Equatable, Codable {
    package var machine: String
    package var localNanoUSD: Int64
    package var gpu: String
    package var gpuNanoUSD: Int64
    package var apis: [APITierCosts]
    package var priceTable: String
    package var shapeSource: String

    init(_ completed: [RequestOutcome], wallMicros: Int64, inputs: CostInputs) {
        var totals = UsageTotals()
        var gpuSeconds = 0.0
        for outcome in completed {
            let record = UsageRecord(
                id: "", timeMicros: 0, model: "", modelShape: inputs.shape, promptTokens: outcome.promptTokens,
                cachedTokens: min(outcome.cachedTokens ?? 0, outcome.promptTokens), generatedTokens: outcome.outputTokens,
                busyShareMicros: 0)
            totals.add(record)
            gpuSeconds += CostModel.gpuSeconds(record, gpu: inputs.gpu)
        }
        let total = Int64(totals.totalTokens)
        func perMillion(_ nano: Int64) -> Int64 { total == 0 ? 0 : CostModel.mulDiv(nano, CostModel.tokensPerMillion, total) }

        machine = inputs.machine.name
        localNanoUSD = perMillion(CostModel.machineCostNanoUSD(wallMicros: wallMicros, machine: inputs.machine))
        gpu = inputs.gpu.name
        gpuNanoUSD = perMillion(Int64((gpuSeconds * Double(inputs.gpu.hourlyNanoUSD) / 3600).rounded()))
        apis = CostModel.apiCosts(CostModel.BilledTokens(totals), prices: inputs.prices).map { $0.map(perMillion) }
        priceTable = "\(inputs.prices.name) (\(inputs.prices.asOf))"
        shapeSource = inputs.shapeSource
    }
}
