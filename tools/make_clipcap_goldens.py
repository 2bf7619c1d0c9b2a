#!/usr/bin/env python3
"""Make the reference data of sat2cap's ClipCap parity tests (tests/data/clipcap/).

Reference: rmokady/CLIP_prefix_caption (HEAD 1ad805a) `predict.py` / `train.py`: the
`MLP` and `TransformerMapper` mapping networks, `ClipCaptionModel`, `generate2` (greedy)
and `generate_beam`, copied below as they are except where marked; GPT-2 is transformers'
`GPT2LMHeadModel` (transformers 5.24.0, torch 2.15.0, eager attention) with tiny random
weights instead of `from_pretrained('gpt2')`.

Writes (deterministic):
  vocab.json, merges.txt      a tiny GPT-2 vocabulary: the 256 byte tokens (GPT-2's own
                              ids 0..255), 43 two-character merges, <|endoftext|> (300 ids)
  config.json                 the tiny MLP model's ClipCapConfig
  model.safetensors           tiny ClipCap, MLP mapper (prefix 4 over 512-d embeddings,
                              GPT-2 of width 64, 2 layers, 4 heads, 128 positions), f16
  coco_like.pt                the same weights as the published coco_weights.pt are laid
                              out: torch.save(state_dict) of transformers 4.10's model, f32,
                              with the buffers it saved (attn.bias, attn.masked_bias) and
                              gpt.lm_head.weight sharing wte's storage
  transformer.safetensors     the clip_project.* tensors of a tiny transformer mapper
                              (prefix_size 32, prefix 6, clip_length 5, 2 layers) over the
                              same GPT-2 (gpt.* of model.safetensors; the tests join the two), f16
  transformer_config.json     its ClipCapConfig
  goldens.safetensors         inputs and reference outputs (rows as in goldens.json)
  goldens.json                generated ids (greedy, beam 5, beam 1), scores, decoded text,
                              decode cases
  clipcap_mlp_params.txt      name, dtype and shape of every tensor of the published MLP
                              checkpoints' layout (ClipCaptionModel(10) over GPT-2 small, as
                              transformers 4.10 saved it)

Weights are rounded to f16 before anything is computed, so the f16 files hold them exactly.

Usage: /work/venv-goldens/bin/python tools/make_clipcap_goldens.py  (from the repository root)
"""
import json
import os
from collections import OrderedDict
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as nnf
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

OUT = "tests/data/clipcap"
torch.manual_seed(2021)
np.random.seed(2021)


# --- openai/gpt-2 encoder.py (also transformers 4.x tokenization_gpt2.py) ----------------
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    cs = [chr(n) for n in cs]
    return dict(zip(bs, cs))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}
BYTE_TOKENS = list(BYTE_ENCODER.values())  # GPT-2's ids 0..255, in this order


def clean_up_tokenization(out_string: str) -> str:
    # transformers PreTrainedTokenizerBase.clean_up_tokenization (4.x and 5.x)
    return (
        out_string.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",")
        .replace(" ' ", "'").replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s")
        .replace(" 've", "'ve").replace(" 're", "'re")
    )


class SlowGpt2Decode:
    """transformers 4.11 GPT2Tokenizer.decode(ids) with its defaults
    (clean_up_tokenization_spaces=True): convert_ids_to_tokens, convert_tokens_to_string
    (bytearray(...).decode("utf-8", errors="replace")), clean_up_tokenization."""

    def __init__(self, vocab):
        self.decoder = {v: k for k, v in vocab.items()}

    def decode(self, ids):
        text = "".join(self.decoder[int(i)] for i in ids)
        text = bytearray([BYTE_DECODER[c] for c in text]).decode("utf-8", errors="replace")
        return clean_up_tokenization(text)


# --- the tiny vocabulary -------------------------------------------------------------------
MERGES = ["Ġ t", "h e", "Ġ a", "i n", "r e", "o n", "e r", "Ġ s", "a t", "e n", "o r", "Ġ w",
          "Ġ o", "e s", "i s", "a n", "Ġ b", "i t", "Ġ c", "a r", "Ġ f", "Ġ m", "Ġ p", "e d",
          "l e", "Ġ d", "a l", "o u", "Ġ h", "i c", "Ġ l", "Ġ g", "r o", "Ġ .", "' s", "n '",
          "Ġ '", "Ġ ,", "Ġ ?", "Ġ !", "Ġ n", "Ġ r", "Ġ e"]
assert len(MERGES) == 43
VOCAB = {t: i for i, t in enumerate(BYTE_TOKENS)}
for m in MERGES:
    VOCAB[m.replace(" ", "")] = len(VOCAB)
VOCAB["<|endoftext|>"] = len(VOCAB)
assert len(VOCAB) == 300
DECODE = SlowGpt2Decode(VOCAB)
STOP = VOCAB["."]  # tokenizer.encode('.')[0]
assert STOP == 13


class FakeTokenizer:
    """What generate2 / generate_beam call: encode(stop_token)[0] and decode(ids). decode
    returns the ids themselves, so the goldens keep the exact token ids."""

    def __init__(self, stop_id):
        self.stop_id = stop_id

    def encode(self, _text):
        return [self.stop_id]

    def decode(self, ids):
        return [int(i) for i in ids]


# --- ClipCap (rmokady/CLIP_prefix_caption train.py, HEAD 1ad805a) ---------------------------
class MLP(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def __init__(self, sizes: Tuple[int, ...], bias=True, act=nn.Tanh):
        super(MLP, self).__init__()
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=bias))
            if i < len(sizes) - 2:
                layers.append(act())
        self.model = nn.Sequential(*layers)


class MlpTransformer(nn.Module):
    def __init__(self, in_dim, h_dim, out_d: Optional[int] = None, act=nnf.relu, dropout=0.):
        super().__init__()
        out_d = out_d if out_d is not None else in_dim
        self.fc1 = nn.Linear(in_dim, h_dim)
        self.act = act
        self.fc2 = nn.Linear(h_dim, out_d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.dropout(x)
        x = self.fc2(x)
        x = self.dropout(x)
        return x


class MultiHeadAttention(nn.Module):
    def __init__(self, dim_self, dim_ref, num_heads, bias=True, dropout=0.):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim_self // num_heads
        self.scale = head_dim ** -0.5
        self.to_queries = nn.Linear(dim_self, dim_self, bias=bias)
        self.to_keys_values = nn.Linear(dim_ref, dim_self * 2, bias=bias)
        self.project = nn.Linear(dim_self, dim_self)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, y=None, mask=None):
        y = y if y is not None else x
        b, n, c = x.shape
        _, m, d = y.shape
        queries = self.to_queries(x).reshape(b, n, self.num_heads, c // self.num_heads)
        keys_values = self.to_keys_values(y).reshape(b, m, 2, self.num_heads, c // self.num_heads)
        keys, values = keys_values[:, :, 0], keys_values[:, :, 1]
        attention = torch.einsum('bnhd,bmhd->bnmh', queries, keys) * self.scale
        if mask is not None:
            if mask.dim() == 2:
                mask = mask.unsqueeze(1)
            attention = attention.masked_fill(mask.unsqueeze(3), float("-inf"))
        attention = attention.softmax(dim=2)
        out = torch.einsum('bnmh,bmhd->bnhd', attention, values).reshape(b, n, c)
        out = self.project(out)
        return out, attention


class TransformerLayer(nn.Module):
    def forward(self, x, y=None, mask=None):
        x = x + self.attn(self.norm1(x), y, mask)[0]
        x = x + self.mlp(self.norm2(x))
        return x

    def __init__(self, dim_self, dim_ref, num_heads, mlp_ratio=4., bias=False, dropout=0., act=nnf.relu,
                 norm_layer: nn.Module = nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim_self)
        self.attn = MultiHeadAttention(dim_self, dim_ref, num_heads, bias=bias, dropout=dropout)
        self.norm2 = norm_layer(dim_self)
        self.mlp = MlpTransformer(dim_self, int(dim_self * mlp_ratio), act=act, dropout=dropout)


class Transformer(nn.Module):
    def forward(self, x, y=None, mask=None):
        for i, layer in enumerate(self.layers):
            if i % 2 == 0 and self.enc_dec:  # cross
                x = layer(x, y)
            elif self.enc_dec:  # self
                x = layer(x, x, mask)
            else:  # self or cross
                x = layer(x, y, mask)
        return x

    def __init__(self, dim_self: int, num_heads: int, num_layers: int, dim_ref: Optional[int] = None,
                 mlp_ratio: float = 2., act=nnf.relu, norm_layer: nn.Module = nn.LayerNorm, enc_dec: bool = False):
        super(Transformer, self).__init__()
        dim_ref = dim_ref if dim_ref is not None else dim_self
        self.enc_dec = enc_dec
        if enc_dec:
            num_layers = num_layers * 2
        layers = []
        for i in range(num_layers):
            if i % 2 == 0 and enc_dec:  # cross
                layers.append(TransformerLayer(dim_self, dim_ref, num_heads, mlp_ratio, act=act, norm_layer=norm_layer))
            elif enc_dec:  # self
                layers.append(TransformerLayer(dim_self, dim_self, num_heads, mlp_ratio, act=act, norm_layer=norm_layer))
            else:  # self or cross
                layers.append(TransformerLayer(dim_self, dim_ref, num_heads, mlp_ratio, act=act, norm_layer=norm_layer))
        self.layers = nn.ModuleList(layers)


class TransformerMapper(nn.Module):
    def forward(self, x):
        x = self.linear(x).view(x.shape[0], self.clip_length, -1)
        prefix = self.prefix_const.unsqueeze(0).expand(x.shape[0], *self.prefix_const.shape)
        prefix = torch.cat((x, prefix), dim=1)
        out = self.transformer(prefix)[:, self.clip_length:]
        return out

    def __init__(self, dim_clip: int, dim_embedding: int, prefix_length: int, clip_length: int, num_layers: int = 8):
        super(TransformerMapper, self).__init__()
        self.clip_length = clip_length
        self.transformer = Transformer(dim_embedding, 8, num_layers)
        self.linear = nn.Linear(dim_clip, clip_length * dim_embedding)
        self.prefix_const = nn.Parameter(torch.randn(prefix_length, dim_embedding), requires_grad=True)


class ClipCaptionModel(nn.Module):
    # CHANGED: `gpt` is given (tiny random weights) instead of from_pretrained('gpt2').
    def __init__(self, gpt, prefix_length: int, clip_length: Optional[int] = None, prefix_size: int = 512,
                 num_layers: int = 8, mapping_type: str = "mlp"):
        super(ClipCaptionModel, self).__init__()
        self.prefix_length = prefix_length
        self.gpt = gpt
        self.gpt_embedding_size = self.gpt.transformer.wte.weight.shape[1]
        if mapping_type == "mlp":
            self.clip_project = MLP((prefix_size, (self.gpt_embedding_size * prefix_length) // 2,
                                     self.gpt_embedding_size * prefix_length))
        else:
            self.clip_project = TransformerMapper(prefix_size, self.gpt_embedding_size, prefix_length,
                                                  clip_length, num_layers)


# --- generation (predict.py, HEAD 1ad805a) ------------------------------------------------
def generate_beam(model, tokenizer, beam_size: int = 5, prompt=None, embed=None,
                  entry_length=67, temperature=1., stop_token: str = '.'):
    model.eval()
    stop_token_index = tokenizer.encode(stop_token)[0]
    tokens = None
    scores = None
    device = next(model.parameters()).device
    seq_lengths = torch.ones(beam_size, device=device)
    is_stopped = torch.zeros(beam_size, device=device, dtype=torch.bool)
    with torch.no_grad():
        if embed is not None:
            generated = embed
        else:
            if tokens is None:
                tokens = torch.tensor(tokenizer.encode(prompt))
                tokens = tokens.unsqueeze(0).to(device)
                generated = model.gpt.transformer.wte(tokens)
        for i in range(entry_length):
            outputs = model.gpt(inputs_embeds=generated)
            logits = outputs.logits
            logits = logits[:, -1, :] / (temperature if temperature > 0 else 1.0)
            logits = logits.softmax(-1).log()
            if scores is None:
                scores, next_tokens = logits.topk(beam_size, -1)
                generated = generated.expand(beam_size, *generated.shape[1:])
                next_tokens, scores = next_tokens.permute(1, 0), scores.squeeze(0)
                if tokens is None:
                    tokens = next_tokens
                else:
                    tokens = tokens.expand(beam_size, *tokens.shape[1:])
                    tokens = torch.cat((tokens, next_tokens), dim=1)
            else:
                logits[is_stopped] = -float(np.inf)
                logits[is_stopped, 0] = 0
                scores_sum = scores[:, None] + logits
                seq_lengths[~is_stopped] += 1
                scores_sum_average = scores_sum / seq_lengths[:, None]
                scores_sum_average, next_tokens = scores_sum_average.view(-1).topk(beam_size, -1)
                next_tokens_source = next_tokens // scores_sum.shape[1]
                seq_lengths = seq_lengths[next_tokens_source]
                next_tokens = next_tokens % scores_sum.shape[1]
                next_tokens = next_tokens.unsqueeze(1)
                tokens = tokens[next_tokens_source]
                tokens = torch.cat((tokens, next_tokens), dim=1)
                generated = generated[next_tokens_source]
                scores = scores_sum_average * seq_lengths
                is_stopped = is_stopped[next_tokens_source]
            next_token_embed = model.gpt.transformer.wte(next_tokens.squeeze()).view(generated.shape[0], 1, -1)
            generated = torch.cat((generated, next_token_embed), dim=1)
            is_stopped = is_stopped + next_tokens.eq(stop_token_index).squeeze()
            if is_stopped.all():
                break
    scores = scores / seq_lengths
    output_list = tokens.cpu().numpy()
    output_texts = [tokenizer.decode(output[:int(length)]) for output, length in zip(output_list, seq_lengths)]
    order = scores.argsort(descending=True)
    output_texts = [output_texts[i] for i in order]
    # CHANGED: also return the scores, in the same order.
    return output_texts, [float(scores[i]) for i in order]


def generate2(model, tokenizer, tokens=None, prompt=None, embed=None, entry_count=1,
              entry_length=67, top_p=0.8, temperature=1., stop_token: str = '.'):
    model.eval()
    generated_list = []
    stop_token_index = tokenizer.encode(stop_token)[0]
    filter_value = -float("Inf")
    with torch.no_grad():
        for entry_idx in range(entry_count):  # CHANGED: range instead of tqdm's trange
            if embed is not None:
                generated = embed
            else:
                if tokens is None:
                    tokens = torch.tensor(tokenizer.encode(prompt))
                    tokens = tokens.unsqueeze(0)
                generated = model.gpt.transformer.wte(tokens)
            for i in range(entry_length):
                outputs = model.gpt(inputs_embeds=generated)
                logits = outputs.logits
                logits = logits[:, -1, :] / (temperature if temperature > 0 else 1.0)
                sorted_logits, sorted_indices = torch.sort(logits, descending=True)
                cumulative_probs = torch.cumsum(nnf.softmax(sorted_logits, dim=-1), dim=-1)
                sorted_indices_to_remove = cumulative_probs > top_p
                sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
                sorted_indices_to_remove[..., 0] = 0
                indices_to_remove = sorted_indices[sorted_indices_to_remove]
                logits[:, indices_to_remove] = filter_value
                next_token = torch.argmax(logits, -1).unsqueeze(0)
                next_token_embed = model.gpt.transformer.wte(next_token)
                if tokens is None:
                    tokens = next_token
                else:
                    tokens = torch.cat((tokens, next_token), dim=1)
                generated = torch.cat((generated, next_token_embed), dim=1)
                if stop_token_index == next_token.item():
                    break
            output_list = list(tokens.squeeze(0).cpu().numpy())  # CHANGED: squeeze(0), for 1-token outputs
            output_text = tokenizer.decode(output_list)
            generated_list.append(output_text)
    return generated_list[0]


# --- the models ----------------------------------------------------------------------------
def tiny_gpt():
    cfg = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=300, n_positions=128,
                     initializer_range=0.25, attn_implementation="eager")
    gpt = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in gpt.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                # LayerNorms not 1 / 0, so that weight vs bias mistakes show.
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.3 * torch.randn_like(p))
    return gpt


def round_f16(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def st_dict(model, dtype):
    # lm_head.weight is wte's (tied): left out, as save_pretrained does.
    return {k: v.detach().to(dtype).contiguous().clone() for k, v in model.state_dict().items()
            if k != "gpt.lm_head.weight"}


def legacy_state_dict(model, n_positions):
    """The state dict as transformers 4.10's ClipCaptionModel saved it."""
    sd = OrderedDict()
    for k, v in model.state_dict().items():
        m = k.split(".")
        if k.endswith("attn.c_attn.weight"):
            pre = k[: -len("c_attn.weight")]
            sd[pre + "bias"] = torch.tril(torch.ones((n_positions, n_positions), dtype=torch.uint8)).view(
                1, 1, n_positions, n_positions)
            sd[pre + "masked_bias"] = torch.tensor(-1e4)
        sd[k] = v.detach()
        del m
    assert sd["gpt.lm_head.weight"].data_ptr() == sd["gpt.transformer.wte.weight"].data_ptr()
    return sd


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(f"{OUT}/vocab.json", "w") as f:
        json.dump(VOCAB, f, ensure_ascii=False)
    with open(f"{OUT}/merges.txt", "w") as f:
        f.write("#version: 0.2\n" + "\n".join(MERGES) + "\n")

    # MLP model (the published kind), prefix 4 over 512-d embeddings.
    P = 4
    gpt = tiny_gpt()
    model = round_f16(ClipCaptionModel(gpt, P)).eval()
    save_file(st_dict(model, torch.float16), f"{OUT}/model.safetensors")
    torch.save(legacy_state_dict(model, 128), f"{OUT}/coco_like.pt")
    config = {"mapping_type": "mlp", "prefix_length": P, "prefix_size": 512,
              "gpt2": {"vocab_size": 300, "n_positions": 128, "n_embd": 64, "n_layer": 2, "n_head": 4}}
    with open(f"{OUT}/config.json", "w") as f:
        json.dump(config, f, indent=1)

    # Transformer mapper over the same GPT-2 (frozen in the reference: ClipCaptionPrefix).
    tmodel = round_f16(ClipCaptionModel(gpt, 6, clip_length=5, prefix_size=32, num_layers=2,
                                        mapping_type="transformer")).eval()
    save_file({k: v for k, v in st_dict(tmodel, torch.float16).items() if k.startswith("clip_project.")},
              f"{OUT}/transformer.safetensors")
    tconfig = {"mapping_type": "transformer", "prefix_length": 6, "clip_length": 5, "num_layers": 2,
               "prefix_size": 32, "normalize_prefix": True,
               "gpt2": {"vocab_size": 300, "n_positions": 128, "n_embd": 64, "n_layer": 2, "n_head": 4}}
    with open(f"{OUT}/transformer_config.json", "w") as f:
        json.dump(tconfig, f, indent=1)

    # Inputs: raw-CLIP-like norms (~10), a unit vector (what the database stores), a large one.
    emb = torch.randn(4, 512) * 0.45
    emb[1] = emb[1] / emb[1].norm()
    emb[3] = emb[3] * 3.0
    temb = torch.randn(2, 32)

    out = {}
    cases = []
    with torch.no_grad():
        prefixes = model.clip_project(emb).view(-1, P, 64)
        out["embeddings"] = emb
        out["prefix"] = prefixes.reshape(4, -1)
        for i in range(4):
            pe = prefixes[i:i + 1]
            greedy = generate2(model, FakeTokenizer(STOP), embed=pe)
            beams5, scores5 = generate_beam(model, FakeTokenizer(STOP), beam_size=5, embed=pe)
            beams1, scores1 = generate_beam(model, FakeTokenizer(STOP), beam_size=1, embed=pe)
            # Stop tokens that do occur: the 4th token of the greedy / best beam without a
            # stop token (-1 never matches).
            free = generate2(model, FakeTokenizer(-1), embed=pe)
            s_g = free[3]
            greedy_s = generate2(model, FakeTokenizer(s_g), embed=pe)
            free_b, _ = generate_beam(model, FakeTokenizer(-1), beam_size=5, embed=pe)
            s_b = free_b[0][3]
            beams_s, scores_s = generate_beam(model, FakeTokenizer(s_b), beam_size=5, embed=pe)
            short, short_scores = generate_beam(model, FakeTokenizer(STOP), beam_size=3, embed=pe, entry_length=7)
            # Logits after the prefix and after each of the first 5 greedy tokens, by running
            # the whole sequence (as the reference does at every step).
            seq = torch.cat([pe, model.gpt.transformer.wte(torch.tensor([greedy[:5]]))], dim=1)
            logits = model.gpt(inputs_embeds=seq).logits[0, P - 1:]
            out[f"logits_{i}"] = logits
            cases.append({
                "embedding": i, "logits_tokens": greedy[:5],
                "greedy": greedy, "greedy_text": DECODE.decode(greedy),
                "beam5": beams5, "beam5_scores": scores5,
                "beam5_texts": [DECODE.decode(b) for b in beams5],
                "beam1": beams1, "beam1_scores": scores1,
                "stop_greedy": s_g, "greedy_stopped": greedy_s,
                "stop_beam": s_b, "beam5_stopped": beams_s, "beam5_stopped_scores": scores_s,
                "beam3_max7": short, "beam3_max7_scores": short_scores,
            })
        # The transformer mapper (normalize_prefix: the transformer notebook's
        # `prefix / prefix.norm(2, -1).item()`).
        tcases = []
        for i in range(2):
            x = temb[i:i + 1]
            x = x / x.norm(2, -1).item()
            pe = tmodel.clip_project(x).reshape(1, 6, -1)
            out[f"transformer_prefix_{i}"] = pe.reshape(-1)
            greedy = generate2(tmodel, FakeTokenizer(STOP), embed=pe)
            beams, scores = generate_beam(tmodel, FakeTokenizer(STOP), beam_size=4, embed=pe)
            tcases.append({"embedding": i, "greedy": greedy, "beam4": beams, "beam4_scores": scores})
        out["transformer_embeddings"] = temb

    # Decoding: hand-made cases (clean-up, invalid UTF-8, merges, <|endoftext|>) and the
    # generated ids, by the 4.11 slow path above and by transformers 5.24's GPT2Tokenizer.
    V = VOCAB
    hand = [
        [V["Ġ"], V["."]], [V["d"], V["o"], V["g"], V["Ġ'"], V["s"]], [V["Ġn"], V["'"], V["t"]],
        [V["a"], V["Ġ,"], V["Ġ?"], V["Ġ!"], V["Ġ'"], V["Ġ"], V["x"]],
        [BYTE_TOKENS.index(BYTE_ENCODER[0xC3])], [BYTE_TOKENS.index(BYTE_ENCODER[b]) for b in [0xC3, 0xA9, 0x41]],
        [BYTE_TOKENS.index(BYTE_ENCODER[b]) for b in [0xE2, 0x82, 0x41, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xC0, 0xAF]],
        [BYTE_TOKENS.index(BYTE_ENCODER[b]) for b in [0xED, 0xA0, 0x80, 0xF4, 0x90, 0x80, 0x80]],
        [V["<|endoftext|>"], V["Ġthe"] if "Ġthe" in V else V["Ġt"], V["he"], V["Ġ."]],
        list(range(256, 300)),
    ]
    decode_cases = [ids for ids in hand] + [c["greedy"] for c in cases] + [b for c in cases for b in c["beam5"]]
    try:
        from transformers import GPT2Tokenizer
        hf = GPT2Tokenizer(vocab=dict(VOCAB), merges=[tuple(m.split()) for m in MERGES])
    except Exception as e:  # noqa: BLE001
        hf = None
        print("no transformers GPT2Tokenizer:", e)
    decoded = []
    for ids in decode_cases:
        slow = DECODE.decode(ids)
        row = {"ids": ids, "text": slow}
        if hf is not None:
            # transformers 5 no longer cleans up BPE output (it ignores
            # clean_up_tokenization_spaces=True for GPT-2): the text without the clean-up.
            row["transformers_5"] = hf.decode(ids)
        decoded.append(row)

    save_file({k: v.detach().float().contiguous() for k, v in out.items()}, f"{OUT}/goldens.safetensors")
    with open(f"{OUT}/goldens.json", "w") as f:
        json.dump({"stop": STOP, "prefix_length": P, "mlp": cases, "transformer": tcases,
                   "decode": decoded}, f, ensure_ascii=False, indent=0)

    # The published MLP layout (names, dtypes, shapes), no weights.
    with torch.device("meta"):
        full = ClipCaptionModel(GPT2LMHeadModel(GPT2Config()), 10)
    lines = []
    for k, v in legacy_meta(full, 1024).items():
        lines.append(f"{k}\t{v[0]}\t{list(v[1])}")
    with open(f"{OUT}/clipcap_mlp_params.txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    n_diff = sum(1 for r in decoded if "transformers_5" in r and r["transformers_5"] != r["text"])
    assert all(clean_up_tokenization(r["transformers_5"]) == r["text"] for r in decoded)
    print(f"wrote {OUT}; {len(decoded)} decode cases, {n_diff} differ between transformers 4.11 "
          "(clean-up on) and 5.24 (no clean-up)")


def legacy_meta(model, n_positions):
    sd = OrderedDict()
    for k, v in model.state_dict().items():
        if k.endswith("attn.c_attn.weight"):
            pre = k[: -len("c_attn.weight")]
            sd[pre + "bias"] = ("uint8", (1, 1, n_positions, n_positions))
            sd[pre + "masked_bias"] = ("float32", ())
        sd[k] = (str(v.dtype).replace("torch.", ""), tuple(v.shape))
    return sd


if __name__ == "__main__":
    main()
