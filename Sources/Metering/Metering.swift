// Metering: usage records, prices, cost model, store, reports (issue 7).
