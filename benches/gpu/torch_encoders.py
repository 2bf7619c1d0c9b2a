#!/usr/bin/env python3
"""PyTorch anchor for sat2cap's encoder throughput (benches/gpu/run.sh).

CLIPVisionModelWithProjection / CLIPTextModelWithProjection built from the default
CLIPConfig (= openai/clip-vit-base-patch32 shapes) with random weights, eager attention,
torch.inference_mode, on one device. Per (dtype, batch): 3 warm-up batches, then the mean
of 10 timed batches (torch.cuda.synchronize around each). Images: random 224 px pixel
tensors (no preprocessing); texts: 77 random token ids with the end token last.
Prints the same table as benches/encoders.rs (`cargo run --release -p sat2cap-bench --features encoders --bin bench_encoders`).

    python benches/gpu/torch_encoders.py [--device cuda] [--dtypes f32,f16] [--batches 1,32,256] [--threads N]
"""
import argparse
import time

import torch
from transformers import CLIPConfig, CLIPTextModelWithProjection, CLIPVisionModelWithProjection

DTYPES = {"f32": torch.float32, "f16": torch.float16}


def timed(fn, device, warmup, iters):
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtypes", default="f32,f16")
    ap.add_argument("--batches", default="1,32,256")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    batches = [int(b) for b in a.batches.split(",")]
    cfg = CLIPConfig()
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}, transformers {__import__('transformers').__version__}, {name}")
    print(f"## PyTorch throughput (warm-up {a.warmup}, mean of {a.iters} timed batches)\n")
    print("| device | precision | batch | images/s (224 px, model only) | texts/s (77 tokens) |")
    print("|---|---|---|---|---|")
    for dname in a.dtypes.split(","):
        dtype = DTYPES[dname]
        vcfg, tcfg = cfg.vision_config, cfg.text_config
        vcfg._attn_implementation = "eager"
        tcfg._attn_implementation = "eager"
        vision = CLIPVisionModelWithProjection(vcfg).to(device, dtype).eval()
        text = CLIPTextModelWithProjection(tcfg).to(device, dtype).eval()
        for b in batches:
            pixels = torch.randn(b, 3, vcfg.image_size, vcfg.image_size, device=device, dtype=dtype)
            ids = torch.randint(0, tcfg.vocab_size - 2, (b, tcfg.max_position_embeddings), device=device)
            ids[:, 0] = tcfg.bos_token_id
            ids[:, -1] = tcfg.eos_token_id
            with torch.inference_mode():
                si = timed(lambda: vision(pixel_values=pixels).image_embeds, device, a.warmup, a.iters)
                st = timed(lambda: text(input_ids=ids).text_embeds, device, a.warmup, a.iters)
            print(f"| {name} (torch) | {dname} | {b} | {b / si:.1f} | {b / st:.1f} |")
        del vision, text
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
