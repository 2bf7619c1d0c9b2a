#!/usr/bin/env python3
"""Make the reference data of sat2cap's encoder parity tests (tests/data/encoders/).

Reference versions: see tools/requirements.txt (transformers 5.24.0, torch 2.15.0,
pillow 13.0.0, clip-anytorch 2.6.0 + ftfy 6.3.1).

Writes:
  clip_vit_b32_params.txt   name + shape of every tensor of transformers' CLIPModel with its
                            default config (= openai/clip-vit-base-patch32), no weights
  tokenizer.json            tricky strings -> 77 ids from OpenAI's simple_tokenizer (the
                            reference, WITH ftfy), ftfy.fix_text's output, and the reason
                            for the few documented known divergences
  images/*.png              small test images (gradients, noise, non-square, small, grey, RGBA)
  pixels_224/*.png          the 8-bit images after PIL resize + crop at 224 (ground, overhead)
  tiny/clip/model.safetensors     tiny random CLIPModel (f16 tensors, + logit_scale)
  tiny/sat2cap/model.safetensors  tiny random overhead tower + GeoNet, made by running
                                  tools/convert_sat2cap_ckpt.py on a fake Lightning checkpoint
  goldens.safetensors       reference pixel tensors (64 px) and embeddings of the tiny models
  goldens.json              the inputs (strings, token ids, metadata) behind goldens.safetensors

Usage: python tools/make_encoder_goldens.py   (from the repository root; deterministic)
"""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPImageProcessorPil as CLIPImageProcessor, CLIPModel, CLIPVisionConfig, CLIPVisionModelWithProjection

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "encoders"
TINY_IMAGE = 64

OVERHEAD_MEAN = (0.3670, 0.3827, 0.3338)
OVERHEAD_STD = (0.2209, 0.1975, 0.1988)


def param_list():
    with torch.device("meta"):
        model = CLIPModel(CLIPConfig())
    lines = [f"{k} {'x'.join(str(d) for d in v.shape) or 'scalar'}" for k, v in model.state_dict().items()]
    (OUT / "clip_vit_b32_params.txt").write_text("\n".join(sorted(lines)) + "\n")


def simple_tokenizer():
    # Locate the package without importing it (its __init__ needs torchvision / pkg_resources).
    spec_path = Path(importlib.util.find_spec("clip").submodule_search_locations[0]) / "simple_tokenizer.py"
    spec = importlib.util.spec_from_file_location("simple_tokenizer", spec_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TRICKY = [
    "",
    "a photo of a dog",
    "A busy city street lined with skyscrapers",
    "  multiple   spaces\tand\nnewlines  ",
    "UPPER lower MiXeD",
    "café crème brûlée naïve façade",
    "Ελληνικά και Русский текст",
    "日本語のテキスト 中文",
    "emoji 🐶🌍🚀 and 👩‍👩‍👧",
    "punctuation!!! ?? ... --- (brackets) [x] {y}",
    "numbers 12345 3.14159 1,000,000 2nd 21st",
    "it's they're we've I'm you'll he'd don't",
    "html &amp; entities &lt;b&gt; &quot;q&quot; &#39;s &#x41;",
    "<|startoftext|> inside <|endoftext|> text",
    "e-mail@example.com http://x.y/z?q=1&r=2",
    "tabs\tand\u00a0nbsp",
    "aerial view of farmland " * 12,
    "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "straße ǅ ﬁ İstanbul ΣΑΣ",
    # ---- strings ftfy.fix_text changes (or could) ----
    # mojibake: UTF-8 read as Latin-1 / Windows-1252
    "cafÃ© crÃ¨me brÃ»lÃ©e",
    "Itâ€™s a â€œquotedâ€\x9d caption â€” with â€¦ dashes â€“ and bullets â€¢",
    "Ã¼ber die StraÃŸe, costs Â£5",
    "ÐŸÑ€Ð¸Ð²ÐµÑ‚ Ð¼Ð¸Ñ€",
    "æ—¥æœ¬èªž ã‚¿ãƒ¯ãƒ¼",
    "emoji mojibake ðŸ\x90¶ ðŸŒ\x8d",
    "voilÃ  le travail",
    "voilÃ le travail",
    "â€œ like this â€\ufffd",
    "double mojibake: cafÃƒÂ©",
    "mixed: naïve cafÃ© and rÃ©sumÃ©",
    "cafÃ© " * 40,
    # mojibake through Windows-1251 (Cyrillic code page)
    "РџСЂРёРІРµС‚ РјРёСЂ",
    # ligatures, width, quotes, line breaks, control characters, NFC
    "ﬁeld of ﬂowers, ﬀ ﬃ ﬄ ﬅ ﬆ, Ĳssel ĳs, ǄǅǆǇǈǉǊǋǌ ŉ",
    "ＦＵＬＬ　ｗｉｄｔｈ　１２３！ ｶﾀｶﾅ ﾊﾟﾝ ￥￦",
    "‘curly’ “double” quotes ‚low„ ‛reversed‟ ʼn",
    "line\r\nbreaks\rand\u2028separators\u2029and\x85next",
    "control\x00chars\x07here \x1b[31mred\x1b[0m \ufeffbom\x7f \x1c\x1d\x1e\x1f",
    "C1 controls \x80 \x93quoted\x94 \x81 \x9f",
    "decomposed e\u0301 vs é, A\u030a Å, \u1100\u1161",
    "soft\u00adhyphen and\u200bzero width\u2060joiner \u206a\ufff9x\ufffc",
    "\u3000ideographic\u3000space\u3000",
    "   \t\n  ",
    # HTML entities (ftfy's unescape, then html.unescape twice)
    "P&EACUTE;REZ &ntilde; &NTILDE; &hellip; &mdash; &rarr; &check; &frac12; &amp;amp;",
    "&amp no semicolon &copy2024 &eacute; &notin; this&not that &ampx",
    "&#128512; &#x1F600; &#xD83D; &#150; &#0; &#1; &#x110000; &#65",
    "<b>html</b> &amp; &eacute; &lt;kept&gt;",
    "first line &eacute;\nsecond <i> &eacute;\nthird &eacute;",
    # scripts and emoji
    "emoji 👍🏽 🇫🇷 flags ❤️ 🧑‍🚀 ©®™",
    "CJK 北京市 서울 東京タワー 한국어",
    "RTL עברית العربية مرحبا \u200f\u202e",
    "long " + "an aerial photograph of a coastal town with a harbour and fishing boats " * 8,
]

# Strings whose reference tokenisation we knowingly do not reproduce (docs/ENCODERS.md,
# "Tokenizer: known differences"); the tests require these to still differ.
KNOWN_DIVERGENT = {
    "РџСЂРёРІРµС‚ РјРёСЂ": "mojibake through Windows-1251 is not repaired",
}


def tokenizer_goldens(st):
    import ftfy

    tok = st.SimpleTokenizer()
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    rows = []
    for text in TRICKY:
        ids = [sot] + tok.encode(text) + [eot]
        if len(ids) > 77:
            ids = ids[:77]
            ids[-1] = eot
        ids = ids + [eot] * (77 - len(ids))
        row = {"text": text, "ids": ids, "ftfy": ftfy.fix_text(text)}
        if text in KNOWN_DIVERGENT:
            row["known_divergence"] = KNOWN_DIVERGENT[text]
        rows.append(row)
    (OUT / "tokenizer.json").write_text("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n")
    return tok, rows


def make_images():
    rng = np.random.default_rng(0)
    d = OUT / "images"
    d.mkdir(parents=True, exist_ok=True)
    imgs = {}
    y, x = np.mgrid[0:200, 0:300]
    grad = np.stack([x * 255 // 299, y * 255 // 199, (x + y) * 255 // 498], -1).astype(np.uint8)
    imgs["gradient_300x200"] = Image.fromarray(grad, "RGB")
    imgs["noise_97x131"] = Image.fromarray(rng.integers(0, 256, (131, 97, 3), dtype=np.uint8), "RGB")
    imgs["small_50x40"] = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8), "RGB")
    y, x = np.mgrid[0:820, 0:900]
    big = np.stack([(x // 7 * 37) % 256, (y // 5 * 53) % 256, ((x + 2 * y) // 11 * 29) % 256], -1).astype(np.uint8)
    imgs["tiles_900x820"] = Image.fromarray(big, "RGB")
    g = (np.add.outer(np.arange(150), np.arange(120)) * 255 // 268).astype(np.uint8)
    imgs["grey_120x150"] = Image.fromarray(g, "L")
    rgba = rng.integers(0, 256, (60, 70, 4), dtype=np.uint8)
    imgs["rgba_70x60"] = Image.fromarray(rgba, "RGBA")
    for name, im in imgs.items():
        im.save(d / f"{name}.png")
    # Reload as the Rust side will see them (decoded file -> RGB).
    return {n: Image.open(d / f"{n}.png").convert("RGB") for n in imgs}


def torchvision_center_crop(im, c):
    """torchvision.transforms.functional.center_crop on a PIL image (pads with 0)."""
    w, h = im.size
    if w < c or h < c:
        pl, pt = (c - w) // 2 if c > w else 0, (c - h) // 2 if c > h else 0
        nw, nh = max(w, c), max(h, c)
        canvas = Image.new("RGB", (nw, nh), (0, 0, 0))
        canvas.paste(im, (pl, pt))
        im, (w, h) = canvas, (nw, nh)
        if w == c and h == c:
            return im
    top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
    return im.crop((left, top, left + c, top + c))


def overhead_8bit(im, size, crop=800):
    """Sat2Cap overhead: CenterCrop(800) then Resize((size, size)) bilinear (PIL)."""
    if crop:
        im = torchvision_center_crop(im, crop)
    return im.resize((size, size), Image.BILINEAR)


def overhead_pixels(im, size):
    a = np.asarray(overhead_8bit(im, size), dtype=np.float32) / 255.0
    a = (a - np.array(OVERHEAD_MEAN, np.float32)) / np.array(OVERHEAD_STD, np.float32)
    return torch.from_numpy(a.transpose(2, 0, 1).copy())


def ground_processor(size):
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def ground_8bit(im, size):
    """The 8-bit image CLIPImageProcessor normalises (resize + crop, no rescale)."""
    p = ground_processor(size)
    out = p(im, do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"][0]
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8).transpose(1, 2, 0), "RGB")


def randomise(module, gen):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "layer_norm" in name or "layrnorm" in name or "layernorm" in name:
                base = torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p)
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def geo_features(m):
    """geoclip/utils/preprocess.py preprocess_meta, in numpy float64 then float32."""
    lat, lon = m["lat"], m["lon"]
    year = (m["year"] - 2015) / (2015 - 2000)
    f = [np.sin(np.pi * lat / 90), np.cos(np.pi * lat / 90), np.sin(np.pi * lon / 180), np.cos(np.pi * lon / 180),
         np.sin(2 * np.pi * year), np.cos(2 * np.pi * year), np.sin(2 * np.pi * m["month"] / 12),
         np.cos(2 * np.pi * m["month"] / 12), np.sin(2 * np.pi * m["day"] / 31), np.cos(2 * np.pi * m["day"] / 31),
         np.sin(2 * np.pi * m["hour"] / 23), np.cos(2 * np.pi * m["hour"] / 23)]
    return torch.tensor(f, dtype=torch.float64).to(torch.float32)


class GeoNet(torch.nn.Module):
    """geoclip/models/geoencode.py"""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(12, 64)
        self.fc2 = torch.nn.Linear(64, 512)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def main():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    OUT.mkdir(parents=True, exist_ok=True)
    param_list()
    st = simple_tokenizer()
    tok, tok_rows = tokenizer_goldens(st)

    images = make_images()
    (OUT / "pixels_224").mkdir(exist_ok=True)
    for name, im in images.items():
        ground_8bit(im, 224).save(OUT / "pixels_224" / f"ground_{name}.png")
        overhead_8bit(im, 224).save(OUT / "pixels_224" / f"overhead_{name}.png")

    tensors = {}
    # ---- tiny CLIP (text + ground-level vision), stored as f16 ----
    cfg = CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
                         eos_token_id=49407, pad_token_id=49407, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           image_size=TINY_IMAGE, patch_size=32, hidden_act="quick_gelu"),
        projection_dim=512,
    )
    clip = CLIPModel(cfg).eval()
    randomise(clip, gen)
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in clip.state_dict().items()}
    (OUT / "tiny" / "clip").mkdir(parents=True, exist_ok=True)
    save_file(sd, OUT / "tiny" / "clip" / "model.safetensors")
    clip.load_state_dict({k: v.float() for k, v in sd.items()})  # reference on the f16-rounded weights

    texts = [r["text"] for r in tok_rows]
    ids = torch.tensor([r["ids"] for r in tok_rows], dtype=torch.long)
    with torch.no_grad():
        pooled = clip.text_model(input_ids=ids).pooler_output
        text_emb = clip.text_projection(pooled)
    tensors["text_embeds"] = text_emb
    names = list(images)
    gp = ground_processor(TINY_IMAGE)
    ground_px = torch.cat([torch.from_numpy(gp(images[n], return_tensors="np")["pixel_values"]) for n in names])
    tensors["ground_pixels"] = ground_px.float()
    with torch.no_grad():
        tensors["ground_embeds"] = clip.visual_projection(clip.vision_model(pixel_values=ground_px.float()).pooler_output)

    # ---- tiny Sat2Cap overhead tower + GeoNet, through the converter ----
    vcfg = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                            image_size=TINY_IMAGE, patch_size=32, projection_dim=512, hidden_act="quick_gelu")
    over = CLIPVisionModelWithProjection(vcfg).eval()
    randomise(over, gen)
    geo = GeoNet().eval()
    randomise(geo, gen)
    ckpt_sd = {}
    for k, v in over.state_dict().items():
        ckpt_sd["imo_encoder.vision_model." + k] = v
    for k, v in geo.state_dict().items():
        ckpt_sd["geo_encoder." + k] = v
    ckpt_sd["img_encoder.vision_model.visual_projection.weight"] = torch.zeros(512, 64)
    ckpt_sd["queue"] = torch.zeros(512, 8)
    ckpt_sd["queue_ptr"] = torch.zeros(1, dtype=torch.long)
    ckpt_sd["temp_layer.logit_scale"] = torch.tensor(2.6)
    tmp = Path("/tmp/sat2cap_fake.ckpt")
    torch.save({"state_dict": ckpt_sd, "epoch": 0}, tmp)
    (OUT / "tiny" / "sat2cap").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "tools" / "convert_sat2cap_ckpt.py"), str(tmp),
                    str(OUT / "tiny" / "sat2cap" / "model.safetensors")], check=True)

    over_px = torch.stack([overhead_pixels(images[n], TINY_IMAGE) for n in names])
    tensors["overhead_pixels"] = over_px
    metas = [
        dict(lat=40.7128, lon=-74.006, year=2012, month=6, day=15, hour=14),
        dict(lat=-33.8688, lon=151.2093, year=2008, month=12, day=31, hour=0),
        dict(lat=89.9, lon=-179.9, year=2015, month=1, day=1, hour=23),
        dict(lat=0.0, lon=0.0, year=2000, month=2, day=29, hour=12),
        dict(lat=-90.0, lon=180.0, year=2021, month=7, day=4, hour=7),
        dict(lat=51.5, lon=-0.12, year=2010, month=3, day=10, hour=18),
    ]
    assert len(metas) == len(names)
    feats = torch.stack([geo_features(m) for m in metas])
    tensors["geo_features"] = feats
    with torch.no_grad():
        img = over(pixel_values=over_px).image_embeds
        g = geo(feats)
        fused = g + img  # geomoco.py: geo_embeddings + unnormalized_overhead_img_embeddings
    tensors["overhead_embeds"] = img
    tensors["geo_out"] = g
    tensors["fused_embeds"] = fused
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, OUT / "goldens.safetensors")
    meta = {
        "reference": {
            "transformers": __import__("transformers").__version__,
            "torch": torch.__version__,
            "pillow": __import__("PIL").__version__,
            "tokenizer": "openai simple_tokenizer (clip-anytorch 2.6.0) with ftfy " + __import__("ftfy").__version__,
        },
        "texts": texts,
        "images": names,
        "metas": metas,
        "tiny_image_size": TINY_IMAGE,
        "note": "embeddings are UNnormalised (image_embeds / text_embeds / geo + image); tests normalise",
    }
    (OUT / "goldens.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
