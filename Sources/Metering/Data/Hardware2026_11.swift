// Dated data: machine and GPU hourly prices, GPU peak figures and the GPU utilization assumptions, collected
// 2026-11-22 from shared/reference/cost-anchors.md. Embedded like the price table; never edited once shipped.

extension HardwareProfiles {
    package static let shipped2026_11Name = "hardware-2026-11.json (shipped)"

    package static let shipped2026_11JSON = #"""
{
 "format": "machines and GPUs with on-demand USD per hour; GPU peaks dense (no sparsity); see cost-anchors.md",
 "as_of": "2026-11-22",
 "collected_from": "shared/reference/cost-anchors.md: AWS us-east-1 on-demand public price tables (2026), instances.vantage.sh derived table (2026-01-21), RunPod and GPU price indexes (May 2026), NVIDIA datasheets for peak figures",
 "default_machine": "aws-c7i.large",
 "default_gpu": "h100-sxm-aws",
 "machines": [
  {
   "name": "aws-c7i.large",
   "description": "AWS c7i.large, 2 vCPU, 4 GiB",
   "usd_per_hour": 0.08925,
   "vcpus": 2,
   "source": "AWS us-east-1 on-demand, public price tables, 2026"
  },
  {
   "name": "aws-m7i.large",
   "description": "AWS m7i.large, 2 vCPU, 8 GiB",
   "usd_per_hour": 0.1008,
   "vcpus": 2,
   "source": "AWS us-east-1 on-demand, public price tables, 2026"
  },
  {
   "name": "aws-c7g.large",
   "description": "AWS c7g.large (Graviton3), 2 vCPU",
   "usd_per_hour": 0.0725,
   "vcpus": 2,
   "source": "AWS us-east-1 on-demand, public price tables, 2026"
  },
  {
   "name": "aws-c7i.4xlarge",
   "description": "AWS c7i.4xlarge, 16 vCPU, 32 GiB",
   "usd_per_hour": 0.714,
   "vcpus": 16,
   "source": "AWS us-east-1 on-demand, public price tables, 2026"
  },
  {
   "name": "hetzner-cx23",
   "description": "Hetzner cx23, 2 vCPU, 4 GB (EUR 0.006/h)",
   "usd_per_hour": 0.0065,
   "vcpus": 2,
   "source": "Hetzner price list, 2026"
  }
 ],
 "gpus": [
  {
   "name": "h100-sxm-aws",
   "description": "NVIDIA H100 SXM 80GB, AWS p5.4xlarge (1 GPU)",
   "usd_per_hour": 6.88,
   "bf16_tflops": 989,
   "memory_bandwidth_tbps": 3.35,
   "source": "instances.vantage.sh derived table, 2026-01-21; NVIDIA H100 datasheet"
  },
  {
   "name": "h100-sxm-market",
   "description": "NVIDIA H100 SXM 80GB, specialty-cloud market median",
   "usd_per_hour": 2.95,
   "bf16_tflops": 989,
   "memory_bandwidth_tbps": 3.35,
   "source": "RunPod and GPU price indexes, May 2026; NVIDIA H100 datasheet"
  },
  {
   "name": "a100-80gb-aws",
   "description": "NVIDIA A100 80GB, AWS p4de (per GPU)",
   "usd_per_hour": 3.43,
   "bf16_tflops": 312,
   "memory_bandwidth_tbps": 2.0,
   "source": "instances.vantage.sh derived table, 2026-01-21; NVIDIA A100 datasheet"
  },
  {
   "name": "l4-aws",
   "description": "NVIDIA L4 24GB, AWS g6.xlarge",
   "usd_per_hour": 0.8048,
   "bf16_tflops": 121,
   "memory_bandwidth_tbps": 0.3,
   "source": "instances.vantage.sh derived table, 2026-01-21; NVIDIA L4 datasheet"
  }
 ],
 "gpu_assumptions": {
  "mfu": 0.078,
  "mbu": 0.5,
  "decode_batch": 64,
  "kv_bytes_per_element": 2,
  "calibration": "mfu reproduces vLLM 0.19 serving Qwen3-0.6B on one H100 (random 512 in / 128 out, 500 prompts, unlimited rate: 94.91 requests/s) under tally's FLOP count; mbu and decode_batch are assumptions for a busy server (decode reads the weights once per step shared by the batch)"
 }
}
"""#
}
