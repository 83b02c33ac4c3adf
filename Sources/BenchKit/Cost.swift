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

/// What a run's cost is computed from: the same dated profiles and prices a metered server uses, and the
/// served model's shape.
package struct CostInputs: Sendable {
    package var pricing: Meter.Pricing
    package var shape: ModelShape
    /// Where the shape came from ("models/x.gguf", "the default model's shape: pass --model-file").
    package var shapeSource: String

    package init(pricing: Meter.Pricing, shape: ModelShape, shapeSource: String) {
        self.pricing = pricing
        self.shape = shape
        self.shapeSource = shapeSource
    }

    /// The shipped profiles and prices (the defaults of `tally report`).
    package static func shipped(shape: ModelShape, shapeSource: String) -> CostInputs {
        CostInputs(pricing: Meter.Pricing(), shape: shape, shapeSource: shapeSource)
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
        let pricing = inputs.pricing
        var totals = UsageTotals()
        var gpuSeconds = 0.0
        for outcome in completed {
            let record = UsageRecord(
                id: "", timeMicros: 0, model: "", modelShape: inputs.shape, promptTokens: outcome.promptTokens,
                cachedTokens: min(outcome.cachedTokens ?? 0, outcome.promptTokens), generatedTokens: outcome.outputTokens,
                busyShareMicros: 0)
            totals.add(record)
            gpuSeconds += CostModel.gpuSeconds(record, gpu: pricing.gpu)
        }
        let total = Int64(totals.totalTokens)
        func perMillion(_ nano: Int64) -> Int64 { total == 0 ? 0 : CostModel.mulDiv(nano, CostModel.tokensPerMillion, total) }

        machine = pricing.machine.name
        localNanoUSD = perMillion(CostModel.machineCostNanoUSD(wallMicros: wallMicros, machine: pricing.machine))
        gpu = pricing.gpu.name
        gpuNanoUSD = perMillion(Int64((gpuSeconds * Double(pricing.gpu.hourlyNanoUSD) / 3600).rounded()))
        apis = CostModel.apiCosts(CostModel.BilledTokens(totals), prices: pricing.prices).map { $0.map(perMillion) }
        priceTable = "\(pricing.prices.name) (\(pricing.prices.asOf))"
        shapeSource = inputs.shapeSource
    }
}
