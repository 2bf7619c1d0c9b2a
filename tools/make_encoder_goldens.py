#!/usr/bin/env python3
"""Make the reference data of sat2cap's encoder parity tests (tests/data/encoders/).

Reference versions: see tools/requirements.txt (transformers 5.24.0 + tokenizers 0.23.3,
torch 2.15.0, pillow 12.3.0, clip-anytorch 2.6.0 + ftfy 6.3.1).

The defaults follow Sat2Cap's evaluation data path (mvrl/Sat2Cap `sat2cap/multidata.py`,
`valid_img_transforms` / `valid_imo_transforms`: `Resize((224, 224))` on the PIL image, a
no-op `CenterCrop(224)`, `ToTensor`, `Normalize`) and the text path of transformers'
CLIPTokenizerFast; the options (CLIP's own resize + crop, an overhead centre crop, OpenAI's
simple_tokenizer with ftfy) have their own reference data.

Writes:
  clip_vit_b32_params.txt   name + shape of every tensor of transformers' CLIPModel with its
                            default config (= openai/clip-vit-base-patch32), no weights
  tokenizer.json            tricky strings -> 77 ids from OpenAI's simple_tokenizer WITH ftfy
                            (the `TextNorm::Ftfy` reference), ftfy.fix_text's output, and the
                            reason for the few documented known divergences
  tokenizer_hf.json         the same strings -> 77 ids from transformers' CLIPTokenizerFast
                            (the `TextNorm::HfFast` reference, the default), built offline from
                            a vocab.json + merges.txt written from clip-anytorch's
                            bpe_simple_vocab_16e6.txt.gz (padded to 77 with 49407, the HF pad
                            token), and its normaliser's output
  images/*.png              test images (gradients, noise, non-square, small, grey, RGBA,
                            640 x 480 and 480 x 640 "photos", a 256 x 256 "tile")
  pixels_224/*.png          the 8-bit 224 x 224 images before normalisation, per image:
                              ground_<name>           PIL resize to 224 x 224 bilinear (default)
                              ground_clipcrop_<name>  CLIPImageProcessor (shortest side 224
                                                      bicubic, centre crop 224)
                              overhead_<name>         PIL resize to 224 x 224 bilinear (default)
                              overhead_crop100_<name> centred crop of side min(100, w) x
                                                      min(100, h) (never padded), then resize
  tiny/clip/model.safetensors     tiny random CLIPModel (f16 tensors, + logit_scale), 64 px
  tiny/sat2cap/model.safetensors  tiny random overhead tower + GeoNet, made by running
                                  tools/convert_sat2cap_ckpt.py on a fake Lightning checkpoint
  goldens.safetensors       reference pixel tensors (64 px) and UNnormalised embeddings of
                            the tiny models, rows in the order of goldens.json:
                              ground_pixels / ground_embeds                  squash (default)
                              ground_pixels_clip_crop / ground_embeds_clip_crop
                              overhead_pixels / overhead_embeds              whole tile (default)
                              overhead_pixels_crop48 / overhead_embeds_crop48
                              geo_features, geo_out, fused_embeds            metas, whole tile
                              text_embeds       from tokenizer_hf.json's ids (default)
                              text_embeds_ftfy  from tokenizer.json's ids
                              wall_geo_features GeoNet inputs of goldens.json "wall_clock"
  goldens.json              the inputs (strings, images, metadata, wall-clock times) behind
                            goldens.safetensors

Usage: python tools/make_encoder_goldens.py   (from the repository root; deterministic)

Differential check of the default text normalisation on many strings (ignored test
`hf_fast_matches_the_fast_tokenizer_on_random_cases` in tests/encoders_tokenizer.rs):

    python tools/ftfy_cases.py /tmp/ftfy_cases.json 5000
    python tools/make_encoder_goldens.py --hf-cases /tmp/ftfy_cases.json /tmp/hf_cases.json
    SAT2CAP_HF_CASES=/tmp/hf_cases.json cargo test --test encoders_tokenizer -- --ignored
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is built from local files

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPConfig, CLIPImageProcessorPil as CLIPImageProcessor, CLIPModel, CLIPVisionConfig, CLIPVisionModelWithProjection
from transformers import CLIPTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "encoders"
TINY_IMAGE = 64
CONTEXT = 77

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
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
    # ---- where the two normalisations (ftfy vs the fast tokenizer's) part ----
    "“Golden Gate” at ‘dusk’, it’s foggy",  # curly quotes: ftfy straightens them
    "Fish &amp; chips caf&eacute; &lt;harbour&gt;",  # entities: decoded by ftfy + html.unescape only
    "ＦＵＬＬ　ｗｉｄｔｈ",  # full width: ftfy folds it (NFKC), NFC keeps it
    "ΣΑΣ ΟΔΟΣ",  # final sigma: Python's str.lower gives ς, the fast tokenizer σ
    "St.\u00a0Paul's\u00a0Cathedral, London",  # no-break spaces
    "\tharbour\t\twith\n\nboats\r\n",  # tabs and newlines, leading and trailing
    "cafe\u0301 de\u0301cor",  # combining accent (NFC composes it)
    "sunset 🌅 over the bay 🏖️ with 🚤🚤",  # emoji
    "<|STARTOFTEXT|> upper-case <|EndOfText|> markers",  # markers not written in lower case
    "it'ſ the ſtreet",  # long s: `'s` matches it only case-insensitively
    "iota subscript x\u0345y",  # U+0345, a mark that case-folds to a letter
    "the end.<|endoftext|>(more)",  # a marker right after punctuation
    "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch railway station",  # long word
    "pneumonoultramicroscopicsilicovolcanoconiosis" * 5,  # one 225-letter word
]

# Strings whose reference tokenisation (simple_tokenizer with ftfy) we knowingly do not
# reproduce (docs/ENCODERS.md, "Tokenizer option `TextNorm::Ftfy`"): text -> (the step that
# differs, why). The tests require these to still differ.
KNOWN_DIVERGENT = {
    "РџСЂРёРІРµС‚ РјРёСЂ": ("fix_text", "mojibake through Windows-1251 is not repaired"),
    "iota subscript x\u0345y": ("pre-tokenisation",
                                "U+0345 under the case-insensitive pattern: Python's regex module "
                                "matches it with no alternative (it is dropped), ours takes it "
                                "into the letter run"),
}

# Plain strings that must give identical ids in simple_tokenizer and the fast tokenizer
# (checks that the vocab.json + merges.txt written here are the embedded vocabulary).
PLAIN = [
    "a photo of a dog",
    "an aerial view of a harbour with fishing boats",
    "it's they're we've 12345",
    "supercalifragilisticexpialidocious",
]


def pad_ids(ids, eot):
    """[sot] + ids + [eot] -> 77: truncated keeping the end token, padded with eot."""
    if len(ids) > CONTEXT:
        ids = ids[:CONTEXT]
        ids[-1] = eot
    return ids + [eot] * (CONTEXT - len(ids))


def write_rows(path, rows):
    path.write_text("[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n")


def tokenizer_goldens(st):
    import ftfy

    tok = st.SimpleTokenizer()
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    rows = []
    for text in TRICKY:
        row = {"text": text, "ids": pad_ids([sot] + tok.encode(text) + [eot], eot), "ftfy": ftfy.fix_text(text)}
        if text in KNOWN_DIVERGENT:
            row["divergent_step"], row["known_divergence"] = KNOWN_DIVERGENT[text]
        rows.append(row)
    write_rows(OUT / "tokenizer.json", rows)
    return tok, rows


def fast_tokenizer(tok):
    """transformers' CLIPTokenizerFast, built offline from a vocab.json + merges.txt written
    from simple_tokenizer's vocabulary (clip-anytorch's bpe_simple_vocab_16e6.txt.gz, the
    file embedded in the crate): the 49,408 ids of openai/clip-vit-base-patch32."""
    d = Path(tempfile.mkdtemp(prefix="clip_vocab_"))
    try:
        (d / "vocab.json").write_text(json.dumps(tok.encoder, ensure_ascii=False))
        merges = sorted(tok.bpe_ranks, key=tok.bpe_ranks.get)
        (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
        hf = CLIPTokenizerFast.from_pretrained(str(d))
    finally:
        shutil.rmtree(d)
    assert len(hf) == 49408 and hf.pad_token_id == hf.eos_token_id == 49407 and hf.bos_token_id == 49406
    return hf


def fast_tokenizer_goldens(tok, hf):
    sot, eot = tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]
    for text in PLAIN:
        a = hf(text, padding="max_length", max_length=CONTEXT, truncation=True)["input_ids"]
        assert a == pad_ids([sot] + tok.encode(text) + [eot], eot), text
    rows = []
    for text in TRICKY:
        ids = hf(text, padding="max_length", max_length=CONTEXT, truncation=True)["input_ids"]
        assert len(ids) == CONTEXT and ids[0] == sot and eot in ids, text
        rows.append({"text": text, "ids": ids, "normalized": hf.backend_tokenizer.normalizer.normalize_str(text)})
    write_rows(OUT / "tokenizer_hf.json", rows)
    return rows


def photo(w, h, phase):
    """A smooth 'photo' with structure: sky gradient, a wavy horizon, rings, stripes."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    horizon = h * 0.55 + h * 0.06 * np.sin(x / (w / 9.0) + phase)
    ground = y > horizon
    r = np.where(ground, 90 + 60 * np.sin(x / 13.0 + y / 29.0 + phase), 120 + 100 * y / h)
    g = np.where(ground, 110 + 70 * np.cos(y / 7.0 - phase) * np.sin(x / 41.0), 160 + 80 * y / h)
    rings = np.hypot(x - w * 0.7, y - h * 0.3)
    b = np.where(ground, 60 + 40 * ((x // 24 + y // 24) % 2), 230 - 60 * y / h)
    sun = rings < min(w, h) * 0.12
    r, g, b = np.where(sun, 250, r), np.where(sun, 220 - 50 * np.sin(rings / 3.0), g), np.where(sun, 90, b)
    img = np.stack([r, g, b], -1)
    return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")


def tile(n):
    """A 'satellite tile': fields in a few colours, two roads, a river, fine texture."""
    y, x = np.mgrid[0:n, 0:n]
    palette = np.array([[96, 128, 64], [150, 140, 90], [70, 100, 50], [180, 170, 120], [120, 110, 100]], np.float64)
    field = palette[(x // 37 + (y // 29) * 3 + (x * y) // 5000) % 5]
    field += (8 * np.sin(x * 0.9) * np.cos(y * 1.3))[..., None]
    road = (np.abs(x - 0.6 * y - 40) < 3) | (np.abs(y - 170) < 2)
    field[road] = (200, 200, 195)
    river = np.abs(x - (180 + 20 * np.sin(y / 20.0))) < 6
    field[river] = (40, 70, 120)
    return Image.fromarray(np.clip(np.round(field), 0, 255).astype(np.uint8), "RGB")


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
    # No random numbers below (the images above stay as they were).
    imgs["photo_640x480"] = photo(640, 480, 0.0)
    imgs["photo_480x640"] = photo(480, 640, 1.3)
    imgs["tile_256x256"] = tile(256)
    for name, im in imgs.items():
        im.save(d / f"{name}.png")
    # Reload as the Rust side will see them (decoded file -> RGB, alpha dropped).
    loaded = {n: Image.open(d / f"{n}.png") for n in imgs}
    # The reference resizes the decoded PIL image and converts it to RGB after; for a grey
    # image that is the same as converting first (each channel is resized alike).
    grey = loaded["grey_120x150"]
    assert grey.mode == "L"
    assert np.array_equal(np.asarray(grey.resize((224, 224), Image.BILINEAR).convert("RGB")),
                          np.asarray(grey.convert("RGB").resize((224, 224), Image.BILINEAR)))
    return {n: im.convert("RGB") for n, im in loaded.items()}


# ---- image preprocessing (references) ----

def squash_8bit(im, size):
    """torchvision `Resize((size, size))` on a PIL image = PIL resize, bilinear. Sat2Cap's
    valid_img_transforms and valid_imo_transforms (its CenterCrop(224) then is a no-op)."""
    return im.resize((size, size), Image.BILINEAR)


def centre_window(im, c):
    """The no-pad centred crop: a window of min(c, w) x min(c, h) at torchvision's
    center_crop offsets, int(round((w - cw) / 2)) (round half to even)."""
    w, h = im.size
    cw, ch = min(c, w), min(c, h)
    left, top = int(round((w - cw) / 2.0)), int(round((h - ch) / 2.0))
    return im.crop((left, top, left + cw, top + ch))


def overhead_8bit(im, size, crop=None):
    """Overhead: the whole tile (or the centred window of side `crop`) resized to size x size."""
    if crop:
        im = centre_window(im, crop)
    return squash_8bit(im, size)


def to_tensor_normalize(im8, mean, std):
    """torchvision ToTensor + Normalize: float32 v / 255, then (v - mean) / std."""
    a = np.asarray(im8, dtype=np.float32) / np.float32(255.0)
    a = (a - np.array(mean, np.float32)) / np.array(std, np.float32)
    return torch.from_numpy(a.transpose(2, 0, 1).copy())


def ground_processor(size):
    return CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def clipcrop_8bit(im, size):
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


def preprocess_meta(json_row):
    """mvrl/Sat2Cap sat2cap/utils/preprocess.py Preprocess.preprocess_meta (as
    multidata.py do_valid_transforms): `date_taken` is split at the space and parsed with
    strptime('%Y-%m-%d') and strptime('%H:%M:%S.%f'); no time zone is looked at."""
    lat = json_row["latitude"]
    long = json_row["longitude"]
    lat_long_encode = torch.tensor([np.sin(np.pi * lat / 90), np.cos(np.pi * lat / 90), np.sin(np.pi * long / 180),
                                    np.cos(np.pi * long / 180)])
    date_time = json_row["date_taken"]
    date_obj = datetime.strptime(date_time.split(" ")[0], "%Y-%m-%d")
    time_obj = datetime.strptime(date_time.split(" ")[1], "%H:%M:%S.%f")
    max_year, min_year = 2015, 2000
    year = (date_obj.year - max_year) / (max_year - min_year)
    month, day, hour = date_obj.month, date_obj.day, time_obj.hour
    date_encode = torch.tensor([np.sin(2 * np.pi * year), np.cos(2 * np.pi * year), np.sin(2 * np.pi * month / 12),
                                np.cos(2 * np.pi * month / 12), np.sin(2 * np.pi * day / 31),
                                np.cos(2 * np.pi * day / 31)])
    time_encode = torch.tensor([np.sin(2 * np.pi * hour / 23), np.cos(2 * np.pi * hour / 23)])
    return torch.cat([lat_long_encode, date_encode, time_encode]).to(dtype=torch.float32)


# Times written with a UTC offset. The reference's date_taken (YFCC's "2012-06-15
# 01:30:00.0") is the local wall clock, and it never applies an offset: GeoNet is given the
# date and hour as written, while the instant (UTC) is what time filters use.
WALL_CLOCK = [
    dict(time="2012-06-15T01:30:00+05:00", lat=28.6139, lon=77.209),
    dict(time="2012-06-15T23:00:00-03:00", lat=-23.5505, lon=-46.6333),
    dict(time="2015-12-31T23:30:00-05:00", lat=40.7128, lon=-74.006),
    dict(time="2008-03-01T00:15:00+09:30", lat=-12.4634, lon=130.8456),
    dict(time="2011-01-01T05:45:00+05:45", lat=27.7172, lon=85.324),
    dict(time="2014-02-28 22:00:00-08:00", lat=37.7749, lon=-122.4194),
    dict(time="2010-07-04T12:00:00Z", lat=51.5, lon=-0.12),
]


def wall_clock_cases():
    rows, feats = [], []
    for c in WALL_CLOCK:
        dt = datetime.fromisoformat(c["time"].replace("Z", "+00:00"))
        utc = dt.astimezone(timezone.utc)
        date_taken = dt.strftime("%Y-%m-%d %H:%M:%S") + ".0"  # the wall clock as written
        rows.append(dict(c, date_taken=date_taken, unix=int(utc.timestamp()),
                         utc=utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         wall=dict(year=dt.year, month=dt.month, day=dt.day, hour=dt.hour)))
        feats.append(preprocess_meta({"latitude": c["lat"], "longitude": c["lon"], "date_taken": date_taken}))
    return rows, torch.stack(feats)


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
    hf_rows = fast_tokenizer_goldens(tok, fast_tokenizer(tok))

    images = make_images()
    names = list(images)
    shutil.rmtree(OUT / "pixels_224", ignore_errors=True)
    (OUT / "pixels_224").mkdir()
    for name, im in images.items():
        save = lambda img, kind: img.save(OUT / "pixels_224" / f"{kind}_{name}.png", optimize=True)
        save(squash_8bit(im, 224), "ground")
        save(clipcrop_8bit(im, 224), "ground_clipcrop")
        save(overhead_8bit(im, 224), "overhead")
        save(overhead_8bit(im, 224, crop=100), "overhead_crop100")

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

    def text_embeds(rows):
        ids = torch.tensor([r["ids"] for r in rows], dtype=torch.long)
        with torch.no_grad():
            return clip.text_projection(clip.text_model(input_ids=ids).pooler_output)

    tensors["text_embeds"] = text_embeds(hf_rows)
    tensors["text_embeds_ftfy"] = text_embeds(tok_rows)

    def ground(pixels):
        with torch.no_grad():
            return clip.visual_projection(clip.vision_model(pixel_values=pixels).pooler_output)

    squash_px = torch.stack([to_tensor_normalize(squash_8bit(images[n], TINY_IMAGE), CLIP_MEAN, CLIP_STD)
                             for n in names])
    gp = ground_processor(TINY_IMAGE)
    clipcrop_px = torch.cat([torch.from_numpy(gp(images[n], return_tensors="np")["pixel_values"])
                             for n in names]).float()
    tensors["ground_pixels"] = squash_px
    tensors["ground_embeds"] = ground(squash_px)
    tensors["ground_pixels_clip_crop"] = clipcrop_px
    tensors["ground_embeds_clip_crop"] = ground(clipcrop_px)

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
    tmp = Path(tempfile.gettempdir()) / "sat2cap_fake.ckpt"
    torch.save({"state_dict": ckpt_sd, "epoch": 0}, tmp)
    (OUT / "tiny" / "sat2cap").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "tools" / "convert_sat2cap_ckpt.py"), str(tmp),
                    str(OUT / "tiny" / "sat2cap" / "model.safetensors")], check=True)
    tmp.unlink()

    def overhead_px(crop):
        return torch.stack([to_tensor_normalize(overhead_8bit(images[n], TINY_IMAGE, crop), OVERHEAD_MEAN,
                                                OVERHEAD_STD) for n in names])

    whole_px, crop_px = overhead_px(None), overhead_px(48)
    tensors["overhead_pixels"] = whole_px
    tensors["overhead_pixels_crop48"] = crop_px
    metas = [
        dict(lat=40.7128, lon=-74.006, year=2012, month=6, day=15, hour=14),
        dict(lat=-33.8688, lon=151.2093, year=2008, month=12, day=31, hour=0),
        dict(lat=89.9, lon=-179.9, year=2015, month=1, day=1, hour=23),
        dict(lat=0.0, lon=0.0, year=2000, month=2, day=29, hour=12),
        dict(lat=-90.0, lon=180.0, year=2021, month=7, day=4, hour=7),
        dict(lat=51.5, lon=-0.12, year=2010, month=3, day=10, hour=18),
        dict(lat=48.8566, lon=2.3522, year=2013, month=4, day=30, hour=9),
        dict(lat=35.6762, lon=139.6503, year=2005, month=11, day=3, hour=21),
        dict(lat=-1.2921, lon=36.8219, year=2016, month=8, day=20, hour=5),
    ]
    assert len(metas) == len(names)
    feats = torch.stack([geo_features(m) for m in metas])
    tensors["geo_features"] = feats
    with torch.no_grad():
        img = over(pixel_values=whole_px).image_embeds
        tensors["overhead_embeds_crop48"] = over(pixel_values=crop_px).image_embeds
        g = geo(feats)
        fused = g + img  # geomoco.py: geo_embeddings + unnormalized_overhead_img_embeddings
    tensors["overhead_embeds"] = img
    tensors["geo_out"] = g
    tensors["fused_embeds"] = fused
    wall_rows, wall_feats = wall_clock_cases()
    tensors["wall_geo_features"] = wall_feats
    save_file({k: v.detach().float().contiguous() for k, v in tensors.items()}, OUT / "goldens.safetensors")
    meta = {
        "reference": {
            "transformers": __import__("transformers").__version__,
            "tokenizers": __import__("tokenizers").__version__,
            "torch": torch.__version__,
            "pillow": __import__("PIL").__version__,
            "tokenizer_hf": "transformers CLIPTokenizerFast (the default, TextNorm::HfFast)",
            "tokenizer": "openai simple_tokenizer (clip-anytorch 2.6.0) with ftfy " + __import__("ftfy").__version__
                         + " (TextNorm::Ftfy)",
        },
        "texts": [r["text"] for r in hf_rows],
        "images": names,
        "metas": metas,
        "wall_clock": wall_rows,
        "tiny_image_size": TINY_IMAGE,
        "overhead_crop_tiny": 48,
        "overhead_crop_224": 100,
        "note": "embeddings are UNnormalised (image_embeds / text_embeds / geo + image); tests normalise",
    }
    (OUT / "goldens.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    print("wrote", OUT)


def hf_cases(cases_in, cases_out):
    """The fast tokenizer's 77 ids for the "text" of every row of `cases_in` (a JSON list,
    e.g. tools/ftfy_cases.py's output) -> `cases_out` ([{"text", "ids"}])."""
    hf = fast_tokenizer(simple_tokenizer().SimpleTokenizer())
    texts = [c["text"] for c in json.loads(Path(cases_in).read_text())]
    ids = hf(texts, padding="max_length", max_length=CONTEXT, truncation=True)["input_ids"]
    write_rows(Path(cases_out), [{"text": t, "ids": i} for t, i in zip(texts, ids)])
    print(f"wrote {len(texts)} cases to {cases_out}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--hf-cases"] and len(sys.argv) == 4:
        hf_cases(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 1:
        main()
    else:
        sys.exit("usage: make_encoder_goldens.py [--hf-cases CASES.json OUT.json]")
