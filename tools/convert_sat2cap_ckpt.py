#!/usr/bin/env python3
"""Convert a Sat2Cap training checkpoint (PyTorch Lightning .ckpt, GeoMoCo) to the
safetensors file that sat2cap's Rust encoders load as <weights>/sat2cap/model.safetensors.

Renames (everything else in the checkpoint -- the frozen ground-level CLIP `img_encoder.*`,
the MoCo `queue`, `queue_ptr`, `temp_layer.*`, optimizer state -- is dropped):

    imo_encoder.vision_model.vision_model.<rest>      -> vision_model.<rest>
    imo_encoder.vision_model.visual_projection.weight -> visual_projection.weight
    geo_encoder.fc1.{weight,bias}                     -> geo_encoder.fc1.{weight,bias}   (64 x 12, 64)
    geo_encoder.fc2.{weight,bias}                     -> geo_encoder.fc2.{weight,bias}   (512 x 64, 512)

`*.position_ids` buffers are dropped. Tensors keep their dtype unless --dtype is given.

Usage:
    python tools/convert_sat2cap_ckpt.py IN.ckpt OUT/model.safetensors [--dtype f32|f16|bf16]
"""
import argparse
import sys

import torch
from safetensors.torch import save_file

RENAMES = [
    ("imo_encoder.vision_model.vision_model.", "vision_model."),
    ("imo_encoder.vision_model.visual_projection.", "visual_projection."),
    ("geo_encoder.fc1.", "geo_encoder.fc1."),
    ("geo_encoder.fc2.", "geo_encoder.fc2."),
]


def convert(state_dict, dtype=None):
    out = {}
    for key, value in state_dict.items():
        if not torch.is_tensor(value) or key.endswith("position_ids"):
            continue
        for old, new in RENAMES:
            if key.startswith(old):
                t = value.detach().to("cpu")
                if dtype is not None:
                    t = t.to(dtype)
                out[new + key[len(old):]] = t.contiguous()
                break
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt")
    ap.add_argument("out")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default=None)
    args = ap.parse_args(argv)
    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, None: None}[args.dtype]
    ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
    out = convert(sd, dtype)
    if not any(k.startswith("vision_model.") for k in out) or "visual_projection.weight" not in out:
        sys.exit("no imo_encoder.vision_model.* tensors found: is this a Sat2Cap checkpoint?")
    geo = sorted(k for k in out if k.startswith("geo_encoder."))
    if geo and len(geo) != 4:
        sys.exit(f"incomplete geo_encoder tensors: {geo}")
    save_file(out, args.out)
    print(f"wrote {len(out)} tensors to {args.out} (geo_encoder: {'yes' if geo else 'no'})")


if __name__ == "__main__":
    main()
