#!/usr/bin/env python3
"""Write the PyTorch-format fixtures of tests/encoders_weights.rs (tests/data/encoders/pytorch/)
and the seed corpus of the `pytorch_load` fuzz target (fuzz/corpus/pytorch_load/), with the
reference libraries (torch, transformers, safetensors, numpy: tools/requirements.txt).

    python tools/make_pytorch_fixtures.py

Reads the tiny models of tests/data/encoders/tiny/ (tools/make_encoder_goldens.py) and
writes:

  pytorch/clip/pytorch_model.bin      the tiny CLIP of tiny/clip/model.safetensors, as a
                                      transformers CLIPModel state dict saved with torch.save
                                      (what save_pretrained(safe_serialization=False) wrote
                                      before transformers 5; f16 like the safetensors file),
                                      with the int64 `*.position_ids` buffers older
                                      transformers versions saved
  pytorch/sat2cap/sat2cap_geomoco.ckpt  the tiny overhead tower + GeoNet of
                                      tiny/sat2cap/model.safetensors as a (fake) PyTorch
                                      Lightning checkpoint of Sat2Cap's GeoMoCo: its
                                      `state_dict` with the reference prefixes
                                      (imo_encoder.vision_model.vision_model.*, ...,
                                      geo_encoder.*) plus non-model entries (img_encoder.*,
                                      text_model.*, queue, queue_ptr, temp_layer.*), and
                                      hyper_parameters (an AttributeDict holding an
                                      argparse.Namespace, a custom class instance, numpy
                                      scalars and arrays, paths, dates, sets, dtypes,
                                      devices), optimizer_states (int keys, bf16 and
                                      transposed tensors), lr_schedulers, callbacks (one keyed
                                      by a class), loops, epoch, global_step,
                                      pytorch-lightning_version
  pytorch/other/*.pt                  valid files: dtypes.pt (f32 / f16 / bf16 / f64 / i64 /
                                      bool and a view at a storage offset), the same re-packed
                                      deflated, with zip64 records, without CRCs; dtypes_v3.pt
                                      (uint16 / float8 / uint32: torch's _rebuild_tensor_v3)
  pytorch/hostile/*                   files that must be clean errors (truncated, storages too
                                      short, offsets out of range, os.system calls, legacy
                                      format, zip bombs, ...); hparams_os_system.ckpt must
                                      LOAD, with its os.system / eval / Popen calls not run
  fuzz/corpus/pytorch_load/           seeds: a state dict and a Lightning checkpoint of the
                                      fuzz target's 8-wide models (as files, and their bare
                                      data.pkl), a deflated f16 state dict, the small hostile
                                      files

Never unpickles a hostile file with weights_only=False.
"""
import argparse
import collections
import datetime
import io
import os
import pathlib
import pickle
import shutil
import struct
import subprocess
import sys
import types
import zipfile
import zlib

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import CLIPConfig, CLIPModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "encoders"
OUT = DATA / "pytorch"
FUZZ = ROOT / "fuzz" / "corpus" / "pytorch_load"
# What the hostile pickles would create if they were ever run.
PWNED = "/tmp/sat2cap-pytorch-fixture-pwned"

TINY_CLIP = CLIPConfig(
    text_config=dict(vocab_size=49408, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                     num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
                     eos_token_id=49407, pad_token_id=49407, hidden_act="quick_gelu"),
    vision_config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       image_size=64, patch_size=32, hidden_act="quick_gelu"),
    projection_dim=512,
)
# src/testing/fuzz/encoders.rs: fuzz_text_config / fuzz_vision_config / fuzz_geo_config.
FUZZ_CLIP = CLIPConfig(
    text_config=dict(vocab_size=64, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                     num_attention_heads=2, max_position_embeddings=8, bos_token_id=62,
                     eos_token_id=63, pad_token_id=63),
    vision_config=dict(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                       image_size=8, patch_size=4),
    projection_dim=8,
)


# ---------------------------------------------------------------------------------------------
# Fake modules, so that the pickles name the classes Lightning / the Sat2Cap code would.

def fake_module(name):
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        sub = ".".join(parts[:i])
        if sub not in sys.modules:
            sys.modules[sub] = types.ModuleType(sub)
    return sys.modules[name]


_parsing = fake_module("pytorch_lightning.utilities.parsing")
_mc = fake_module("pytorch_lightning.callbacks.model_checkpoint")
_cfg = fake_module("geoclip.config")


class AttributeDict(dict):
    """pytorch_lightning.utilities.parsing.AttributeDict: what Lightning 1.x stores as
    hyper_parameters."""

    def __getattr__(self, key):
        return self[key]


class ModelCheckpoint:
    pass


class TrainConfig:
    """A custom class instance among the hyper-parameters."""

    def __init__(self):
        self.queue_size = 2560
        self.temperature = np.float32(0.07)
        self.data_root = pathlib.PurePosixPath("/data/sat2cap")


for cls, mod in [(AttributeDict, _parsing), (ModelCheckpoint, _mc), (TrainConfig, _cfg)]:
    cls.__module__ = mod.__name__
    setattr(mod, cls.__name__, cls)


class Call:
    """Pickles as `func(*args)` (REDUCE)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def fake_os_system(cmd):  # never called: only its name is pickled
    raise RuntimeError("not to be called")


class OsSystemNamed:
    """While active, `os.system` is a stand-in, so a pickled call names the global
    `os system` (the real os.system pickles as `posix system`)."""

    def __enter__(self):
        self.real = os.system
        fake_os_system.__module__, fake_os_system.__qualname__ = "os", "system"
        fake_os_system.__name__ = "system"
        os.system = fake_os_system
        return fake_os_system

    def __exit__(self, *exc):
        os.system = self.real


# ---------------------------------------------------------------------------------------------
# Writing zips by hand (torch.save's layout) for re-packed and hostile files.

def zip_bytes(entries, *, deflate=False, zip64=False, crc=True, flags=0, method=None, sizes=None):
    """A zip of (name, bytes) entries. `sizes` overrides a name's declared uncompressed size."""
    out = bytearray()
    central = bytearray()
    for name, data in entries:
        n = name.encode()
        c = zlib.crc32(data) if crc else 0
        if deflate:
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            body = co.compress(data) + co.flush()
            m = 8
        else:
            body, m = data, 0
        if method is not None:
            m = method
        usize = (sizes or {}).get(name, len(data))
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, m, 0, 0x21, c, len(body), usize, len(n), 0)
        out += n + body
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, usize, len(body), off)
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, flags, m, 0, 0x21, c,
                                   0xFFFFFFFF, 0xFFFFFFFF, len(n), len(extra), 0, 0, 0, 0, 0xFFFFFFFF)
            central += n + extra
        else:
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, m, 0, 0x21, c,
                                   len(body), usize, len(n), 0, 0, 0, 0, 0, off)
            central += n
    cd_off = len(out)
    out += central
    count = len(entries)
    if zip64:
        rec = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(central), cd_off)
        out += struct.pack("<IIQI", 0x07064B50, 0, rec, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), cd_off, 0)
    return bytes(out)


def torch_entries(pkl, storages, prefix="archive", byteorder=b"little"):
    e = [(f"{prefix}/data.pkl", pkl), (f"{prefix}/byteorder", byteorder)]
    e += [(f"{prefix}/data/{k}", v) for k, v in storages.items()]
    e += [(f"{prefix}/version", b"3\n")]
    return e


def entries_of(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


class Storage:
    def __init__(self, key, numel, kind="FloatStorage"):
        self.key, self.numel, self.kind = key, numel, kind


class Tensor:
    """Pickles as torch's _rebuild_tensor_v2 over a Storage, with any offset/size/stride."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, tuple(self.size), tuple(self.stride), False,
                 collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.kind), obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj):
    b = io.BytesIO()
    TorchPickler(b, protocol=2).dump(obj)
    return b.getvalue()


def f32(n):
    return np.arange(n, dtype="<f4").tobytes()


# ---------------------------------------------------------------------------------------------

def save(obj, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)


def clip_bin(out):
    sd_st = load_file(DATA / "tiny" / "clip" / "model.safetensors")
    model = CLIPModel(TINY_CLIP).eval()
    model.load_state_dict({k: v.float() for k, v in sd_st.items()}, strict=True)
    model = model.half()
    sd = model.state_dict()
    # Older transformers versions kept these buffers in the state dict.
    sd["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    sd["vision_model.embeddings.position_ids"] = torch.arange(5).unsqueeze(0)
    for k, v in sd_st.items():
        assert torch.equal(sd[k], v), k
    save(sd, out / "clip" / "pytorch_model.bin")


def hyper_parameters():
    ns = argparse.Namespace(
        vit="openai/clip-vit-base-patch32", lr=np.float64(5e-5), queue_size=np.int64(2560),
        temperature=np.float32(0.07), max_epochs=100, accelerator="gpu", devices=[0, 1],
        data_dir=pathlib.PurePosixPath("/data/sat2cap"), geo_encode=True, dropout=None)
    return AttributeDict(
        hparams=ns, config=TrainConfig(), mean=np.array([0.3670, 0.3827, 0.3338], dtype=np.float32),
        started=datetime.datetime(2023, 5, 1, 12, 30), tags={"sat2cap", "geomoco"},
        frozen=frozenset({"img_encoder"}), dtype=torch.float16, device=torch.device("cuda", 0),
        magic=b"\x00\xff", big=2 ** 100, inf=float("inf"), nan=float("nan"), z=complex(1, 2))


def lightning_extras(hp, opt_tensors):
    return {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "1.9.4",
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {
            "total": {"ready": 4, "started": 4, "processed": 3, "completed": 3}}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min', 'every_n_train_steps': 0}": {
                "monitor": "val_loss", "best_model_score": torch.tensor(1.2345),
                "best_model_path": "/ckpt/epoch=2.ckpt",
                "best_k_models": {"/ckpt/epoch=2.ckpt": torch.tensor(1.2345)},
                "dirpath": "/ckpt", "last_model_path": ""},
            ModelCheckpoint: {"best_model_score": torch.tensor(1.5)},
        },
        "optimizer_states": [{
            "state": {0: {"step": torch.tensor(1200.0), "exp_avg": opt_tensors[0],
                          "exp_avg_sq": opt_tensors[1]},
                      1: {"step": torch.tensor(1200.0), "exp_avg": opt_tensors[2],
                          "exp_avg_sq": opt_tensors[2]}},
            "param_groups": [{"lr": 5e-5, "betas": (0.9, 0.98), "eps": 1e-6, "weight_decay": 0.2,
                              "amsgrad": False, "foreach": None, "maximize": False,
                              "capturable": False, "differentiable": False, "fused": None,
                              "initial_lr": 5e-5, "params": [0, 1]}]}],
        "lr_schedulers": [{"T_max": 100, "eta_min": 0, "base_lrs": [5e-5], "last_epoch": 3,
                           "_step_count": 4, "verbose": False,
                           "_get_lr_called_within_step": False, "_last_lr": [5e-5]}],
        "native_amp_scaling_state": {"scale": torch.tensor(65536.0), "growth_factor": 2.0,
                                     "backoff_factor": 0.5, "growth_interval": 2000,
                                     "_growth_tracker": 17},
        "hparams_name": "hparams",
        "hyper_parameters": hp,
    }


def opt_tensors(gen):
    return [torch.randn(4, 4, generator=gen).to(torch.bfloat16),
            torch.randn(3, 5, generator=gen).t(),  # not contiguous: fine outside the state dict
            torch.zeros(2, dtype=torch.float64)]


def geomoco_state_dict(vision, geo, gen, image_positions, width, queue_rows=512):
    """A GeoMoCo-like state dict around an overhead tower (HF names) and a GeoNet."""
    sd = collections.OrderedDict()
    sd["img_encoder.vision_model.vision_model.embeddings.class_embedding"] = torch.randn(width, generator=gen)
    sd["img_encoder.vision_model.vision_model.embeddings.position_ids"] = torch.arange(image_positions).unsqueeze(0)
    sd["img_encoder.vision_model.visual_projection.weight"] = torch.randn(8, width, generator=gen)
    for k, v in vision.items():
        pre = ("imo_encoder.vision_model.visual_projection." if k.startswith("visual_projection.")
               else "imo_encoder.vision_model.")
        sd[pre + (k[len("visual_projection."):] if k.startswith("visual_projection.") else k)] = v
    sd["imo_encoder.vision_model.vision_model.embeddings.position_ids"] = torch.arange(image_positions).unsqueeze(0)
    for k, v in geo.items():
        sd[k] = v
    sd["text_model.text_model.embeddings.token_embedding.weight"] = torch.randn(6, 4, generator=gen)
    sd["text_model.text_projection.weight"] = torch.randn(8, 4, generator=gen)
    big = torch.nn.functional.normalize(torch.randn(queue_rows, 24, generator=gen), dim=0)
    sd["queue"] = big[:, :16]  # a view: only its own elements matter, and it is dropped anyway
    sd["queue_ptr"] = torch.zeros(1, dtype=torch.long)
    sd["temp_layer.logit_scale"] = torch.tensor(2.6592)
    return sd


def sat2cap_ckpt(out, gen):
    st = load_file(DATA / "tiny" / "sat2cap" / "model.safetensors")
    vision = {k: v for k, v in st.items() if not k.startswith("geo_encoder.")}
    geo = {k: v for k, v in st.items() if k.startswith("geo_encoder.")}
    assert len(geo) == 4
    sd = geomoco_state_dict(vision, geo, gen, 5, 64)
    ckpt = {"state_dict": sd, **lightning_extras(hyper_parameters(), opt_tensors(gen))}
    save(ckpt, out / "sat2cap" / "sat2cap_geomoco.ckpt")


def other_files(out):
    d = out / "other"
    d.mkdir(parents=True, exist_ok=True)
    base = torch.arange(12, dtype=torch.float32) / 4
    sd = collections.OrderedDict(
        f32=base[:6].clone().reshape(2, 3), f16=base[:6].clone().half(), bf16=base[:6].clone().bfloat16(),
        f64=base[:6].clone().double(), i64=torch.arange(3), flag=torch.tensor([True, False]),
        view=base[4:8], scalar=torch.tensor(0.5), empty=torch.zeros(0, 3))
    assert sd["view"].storage_offset() == 4
    save(sd, d / "dtypes.pt")
    # dtypes without a storage class of their own: _rebuild_tensor_v3 over an UntypedStorage.
    save(collections.OrderedDict(u16=torch.arange(4).to(torch.uint16),
                                 f8=torch.zeros(2, 3).to(torch.float8_e4m3fn),
                                 u32=torch.arange(6).to(torch.uint32)[2:5]), d / "dtypes_v3.pt")
    entries = entries_of(d / "dtypes.pt")
    (d / "dtypes_deflate.pt").write_bytes(zip_bytes(entries, deflate=True))
    (d / "dtypes_zip64.pt").write_bytes(zip_bytes(entries, zip64=True))
    (d / "dtypes_no_crc.pt").write_bytes(zip_bytes(entries, crc=False))
    for name in ["dtypes_deflate.pt", "dtypes_zip64.pt", "dtypes_no_crc.pt"]:
        back = torch.load(d / name, weights_only=True)
        for k, v in sd.items():
            assert torch.equal(back[k], v), (name, k)
    return entries


def hostile_files(out, dtypes_entries):
    d = out / "hostile"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)

    def one(name, pkl, storages, **kw):
        (d / name).write_bytes(zip_bytes(torch_entries(pkl, storages), **kw))

    def sd_pickle(**tensors):
        return torch_pickle(collections.OrderedDict(tensors))

    s = Storage("0", 16)
    whole = zip_bytes(dtypes_entries)
    (d / "truncated.pt").write_bytes(whole[: len(whole) * 3 // 5])
    (d / "empty.pt").write_bytes(b"")
    (d / "not_a_zip.bin").write_bytes(b"hello, this is not a PyTorch file\n" * 4)
    one("storage_too_short.pt", sd_pickle(w=Tensor(s, 0, [4, 4], [4, 1])), {"0": f32(2)})
    one("offset_out_of_range.pt", sd_pickle(w=Tensor(s, 10, [8], [1])), {"0": f32(16)})
    one("negative_offset.pt", sd_pickle(w=Tensor(s, -4, [4], [1])), {"0": f32(16)})
    one("huge_shape.pt", sd_pickle(w=Tensor(s, 0, [2 ** 31] * 3, [2 ** 62, 2 ** 31, 1])), {"0": f32(16)})
    one("stride_mismatch.pt", sd_pickle(w=Tensor(s, 0, [4, 4], [1, 4])), {"0": f32(16)})
    one("missing_storage.pt", sd_pickle(w=Tensor(Storage("7", 16), 0, [16], [1])), {"0": f32(16)})
    one("unknown_storage_type.pt", sd_pickle(w=Tensor(Storage("0", 2, "ComplexFloatStorage"), 0, [2], [1])),
        {"0": f32(4)})
    one("not_a_tensor.pt", sd_pickle(w=[1, 2, 3]), {})
    one("int_key.pt", torch_pickle({0: Tensor(s, 0, [16], [1])}), {"0": f32(16)})
    (d / "big_endian.pt").write_bytes(zip_bytes(
        torch_entries(sd_pickle(w=Tensor(s, 0, [16], [1])), {"0": f32(16)}, byteorder=b"big")))
    good = torch_entries(sd_pickle(w=Tensor(s, 0, [16], [1])), {"0": f32(16)})
    bad_crc = zip_bytes(good)
    i = bad_crc.index(f32(16)) + 5
    (d / "crc_mismatch.pt").write_bytes(bad_crc[:i] + bytes([bad_crc[i] ^ 0x40]) + bad_crc[i + 1:])
    (d / "encrypted.pt").write_bytes(zip_bytes(good, flags=1))
    (d / "bzip2.pt").write_bytes(zip_bytes(good, method=12))
    (d / "deflate_bomb.pt").write_bytes(zip_bytes(good, deflate=True, sizes={"archive/data.pkl": 0xFFFFFFF0}))
    (d / "stored_size_lies.pt").write_bytes(zip_bytes(good, sizes={"archive/data.pkl": 1 << 20}))
    # Pickles written by hand.
    hdr = b"\x80\x02"
    one("bad_opcode.pt", hdr + b"}\xff.", {})
    one("no_stop.pt", hdr + b"}(X\x01\x00\x00\x00aK\x01u", {})
    one("stack_underflow.pt", hdr + b"R.", {})
    one("huge_string.pt", hdr + b"X\xf0\xff\xff\xff" + b"x" * 16 + b".", {})
    one("huge_long.pt", hdr + b"\x8b\xff\xff\xff\x7f" + b"\x01" * 8 + b".", {})
    one("memo_missing.pt", hdr + b"h\x05.", {})
    one("ext_opcode.pt", hdr + b"\x82\x01.", {})
    one("duplicate_key.pt", hdr + b"}(X\x01\x00\x00\x00wK\x01X\x01\x00\x00\x00wK\x02u.", {})
    one("protocol_9.pt", b"\x80\x09}.", {})
    # l0 = []; l(i+1) = [l(i), l(i)]: 2**60 leaves if copied; then {"k": l60}.
    bomb = bytearray(hdr + b"]q\x00")
    for i in range(60):
        bomb += b"(h" + bytes([i]) + b"h" + bytes([i]) + b"lq" + bytes([i + 1])
    bomb += b"0}(X\x01\x00\x00\x00kh\x3cu."
    one("memo_bomb.pt", bytes(bomb), {})
    # A memoised list of 2000 pairs turned into 20000 OrderedDicts: past the work budget.
    copy = bytearray(hdr + b"](" + b"X\x01\x00\x00\x00kK\x01\x86" * 2000 + b"e\x94")
    copy += b"ccollections\nOrderedDict\nh\x00\x85R0" * 20000
    copy += b"}."
    one("copy_bomb.pt", bytes(copy), {}, deflate=True)
    # os.system as a state dict value (must not run; an error: not a tensor).
    with OsSystemNamed() as system:
        one("os_system.pt", torch_pickle(collections.OrderedDict(w=Call(system, f"touch {PWNED}"))), {})
    # A legacy (pre-1.6, not zip) file.
    torch.save({"w": torch.zeros(2)}, d / "legacy.pt", _use_new_zipfile_serialization=False)
    # Lightning checkpoints: state_dict not a dict; no model tensors.
    save({"epoch": 1, "state_dict": [1, 2]}, d / "state_dict_list.ckpt")
    save([torch.zeros(2)], d / "list_root.pt")
    # A Lightning checkpoint whose hyper-parameters call os.system / eval / subprocess.Popen
    # when unpickled by Python: ours must load it without running anything.
    with OsSystemNamed() as system:
        hp = AttributeDict(cmd=Call(system, f"touch {PWNED}"),
                           e=Call(eval, f"__import__('os').system('touch {PWNED}')"),
                           p=Call(subprocess.Popen, ["touch", PWNED]))
        buf = io.BytesIO()
        torch.save({"state_dict": collections.OrderedDict(
            [("geo_encoder.fc1.bias", torch.arange(4, dtype=torch.float32)), ("queue", torch.zeros(2, 2))]),
            "hyper_parameters": hp, "epoch": 0}, buf)
    (d / "hparams_os_system.ckpt").write_bytes(buf.getvalue())
    # Sanity: torch's safe loader refuses the hostile globals too, and nothing ran.
    for name in ["hparams_os_system.ckpt", "os_system.pt"]:
        try:
            torch.load(d / name, weights_only=True)
            raise SystemExit(f"{name}: torch.load(weights_only=True) accepted it")
        except pickle.UnpicklingError:
            pass
    assert not os.path.exists(PWNED)


def fuzz_seeds(gen, hostile):
    FUZZ.mkdir(parents=True, exist_ok=True)
    for p in FUZZ.glob("seed-*"):
        p.unlink()
    model = CLIPModel(FUZZ_CLIP).eval()
    sd = model.state_dict()
    b = io.BytesIO()
    torch.save(sd, b)
    seeds = [b.getvalue()]
    vision = {k: v for k, v in sd.items() if k.startswith("vision_model.") or k.startswith("visual_projection.")}
    geo = {"geo_encoder.fc1.weight": torch.randn(4, 12, generator=gen), "geo_encoder.fc1.bias": torch.zeros(4),
           "geo_encoder.fc2.weight": torch.randn(8, 4, generator=gen), "geo_encoder.fc2.bias": torch.zeros(8)}
    ck = geomoco_state_dict(vision, geo, gen, 5, 8, queue_rows=8)
    hp = AttributeDict(hparams=argparse.Namespace(lr=np.float64(1e-4), n=np.int64(3)))
    b = io.BytesIO()
    torch.save({"state_dict": ck, **lightning_extras(hp, opt_tensors(gen))}, b)
    seeds.append(b.getvalue())
    b = io.BytesIO()
    torch.save({k: v.half() for k, v in sd.items()}, b)
    seeds.append(zip_bytes(entries_of(b), deflate=True))
    # Bare pickles: the target wraps them in an archive with the storages they name.
    for s in seeds[:2]:
        seeds.append(next(data for name, data in entries_of(io.BytesIO(s)) if name.endswith("/data.pkl")))
    for p in sorted(hostile.iterdir()):
        if p.stat().st_size <= 4096:
            seeds.append(p.read_bytes())
    for i, s in enumerate(seeds):
        (FUZZ / f"seed-{i:02}").write_bytes(s)
    return len(seeds)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(2024)
    if os.path.exists(PWNED):
        os.unlink(PWNED)
    for sub in ["clip", "sat2cap", "other"]:
        shutil.rmtree(OUT / sub, ignore_errors=True)
    clip_bin(OUT)
    sat2cap_ckpt(OUT, gen)
    dtypes = other_files(OUT)
    hostile_files(OUT, dtypes)
    n = fuzz_seeds(gen, OUT / "hostile")
    # The reference reads the valid files back (weights_only=True refuses the checkpoint's
    # hyper-parameter classes, as it should; it is our fake, so load it fully here).
    back = torch.load(OUT / "clip" / "pytorch_model.bin", weights_only=True)
    assert len(back) == 80, len(back)
    ck = torch.load(OUT / "sat2cap" / "sat2cap_geomoco.ckpt", weights_only=False)
    assert ck["state_dict"]["geo_encoder.fc2.weight"].shape == (512, 64)
    assert not os.path.exists(PWNED)
    total = 0
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            total += p.stat().st_size
            print(f"{p.stat().st_size:>9}  {p.relative_to(ROOT)}")
    print(f"{total:>9}  total; {n} fuzz seeds in {FUZZ.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
