#!/usr/bin/env python3
"""Reference forward pass of the Gemma 4 text decoder (E2B/E4B family), in PyTorch.

Written from the project's spec (core/model/GEMMA4.md §1-§4), not from any
library's Gemma code.  It is used by tools/train_bundled_model.py to train the
bundled tiny model and to compute its golden logits, and it can be imported by
other tools:

    import gemma4_reference as g4
    cfg = g4.TextConfig.from_json("resources/models/whittle-gemma4-tiny/config.json")
    params = g4.load_params("resources/models/whittle-gemma4-tiny", torch.float64)
    logits = g4.forward(params, cfg, torch.tensor([[2, 651, 3277]]))   # [B, T, V]

Everything is computed in the dtype of the parameters (float32 for training,
float64 for golden logits); no mixed precision.  Needs python3-torch (Debian's 1.13
is enough) and python3-numpy.

What the forward does, in order (GEMMA4.md §3):
  * x0 = E[t] * sqrt(H) (exact scale in the working dtype, not the bf16-rounded one);
  * per-layer inputs: ple[l] = (RMSNorm(W_pp x0 * H^-0.5 viewed [L, P]; shared norm)
    + E_ple[t] viewed [L, P] * sqrt(P)) * 2^-0.5;
  * per layer: input_layernorm -> attention -> post_attention_layernorm -> residual;
    pre_feedforward_layernorm -> down(gelu_tanh(gate) * up) -> post_feedforward_layernorm
    -> residual; gelu_tanh(per_layer_input_gate h) * ple[l] -> per_layer_projection ->
    post_per_layer_input_norm -> residual; h *= layer_scalar[l];
  * attention: q/k RMSNorm with weights, v RMSNorm without weight, NeoX (rotate-half)
    RoPE, scale 1.0, GQA, causal mask plus a sliding window (current token and W-1
    earlier ones) on sliding layers; the last num_kv_shared_layers layers reuse the
    K/V of the last KV-owning layer of the same type;
  * RoPE: sliding layers theta 1e4 over all head dims; full layers "proportional":
    inv_freq[i] = theta^(-2i/hd) for i < floor(partial_rotary_factor*hd/2), 0 for the
    rest, pairs (i, i + hd/2);
  * final norm, tied lm_head, logits = cap * tanh(logits / cap).
RMSNorm is x * rsqrt(mean(x^2) + eps) * w (w, not 1 + w).
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PREFIX = "model.language_model."
SLIDING = "sliding_attention"
FULL = "full_attention"


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------


@dataclass
class TextConfig:
    hidden_size: int = 256
    intermediate_size: int = 1024
    num_hidden_layers: int = 6
    layer_types: list = field(default_factory=lambda: [SLIDING, SLIDING, SLIDING, FULL, SLIDING, FULL])
    num_kv_shared_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    head_dim: int = 256
    global_head_dim: int = 512
    hidden_size_per_layer_input: int = 64
    vocab_size: int = 8192
    vocab_size_per_layer_input: int = 8192
    sliding_window: int = 64
    rms_norm_eps: float = 1e-6
    final_logit_softcapping: float | None = 30.0
    use_double_wide_mlp: bool = True
    rope_theta_sliding: float = 10000.0
    rope_theta_full: float = 1000000.0
    partial_rotary_factor_full: float = 0.25

    @staticmethod
    def from_dict(d: dict) -> "TextConfig":
        tc = d.get("text_config", d)
        rp = tc["rope_parameters"]
        fa = rp["full_attention"]
        sa = rp["sliding_attention"]
        assert sa.get("rope_type", "default") == "default", sa
        assert fa.get("rope_type") == "proportional", fa
        return TextConfig(
            hidden_size=tc["hidden_size"],
            intermediate_size=tc["intermediate_size"],
            num_hidden_layers=tc["num_hidden_layers"],
            layer_types=list(tc["layer_types"]),
            num_kv_shared_layers=tc["num_kv_shared_layers"],
            num_attention_heads=tc["num_attention_heads"],
            num_key_value_heads=tc["num_key_value_heads"],
            head_dim=tc["head_dim"],
            global_head_dim=tc["global_head_dim"],
            hidden_size_per_layer_input=tc["hidden_size_per_layer_input"],
            vocab_size=tc["vocab_size"],
            vocab_size_per_layer_input=tc["vocab_size_per_layer_input"],
            sliding_window=tc["sliding_window"],
            rms_norm_eps=tc["rms_norm_eps"],
            final_logit_softcapping=tc["final_logit_softcapping"],
            use_double_wide_mlp=bool(tc.get("use_double_wide_mlp", False)),
            rope_theta_sliding=float(sa["rope_theta"]),
            rope_theta_full=float(fa["rope_theta"]),
            partial_rotary_factor_full=float(fa.get("partial_rotary_factor", 1.0)),
        )

    @staticmethod
    def from_json(path) -> "TextConfig":
        with open(path, encoding="utf-8") as f:
            return TextConfig.from_dict(json.load(f))

    # Derived values -------------------------------------------------------

    @property
    def first_shared(self) -> int:
        return self.num_hidden_layers - self.num_kv_shared_layers

    def is_sliding(self, l: int) -> bool:
        return self.layer_types[l] == SLIDING

    def hd(self, l: int) -> int:
        return self.head_dim if self.is_sliding(l) else self.global_head_dim

    def owns_kv(self, l: int) -> bool:
        return l < self.first_shared

    def kv_source(self, l: int) -> int:
        """Layer whose K/V layer l attends over: itself, or (HF rule) the last
        KV-owning layer of the same type."""
        if self.owns_kv(l):
            return l
        for j in range(self.first_shared - 1, -1, -1):
            if self.layer_types[j] == self.layer_types[l]:
                return j
        raise ValueError(f"layer {l}: no KV-owning layer of type {self.layer_types[l]}")

    def ffn(self, l: int) -> int:
        if self.use_double_wide_mlp and not self.owns_kv(l):
            return 2 * self.intermediate_size
        return self.intermediate_size


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


def param_shapes(cfg: TextConfig) -> dict[str, tuple[int, ...]]:
    """Tensor names (without the `model.language_model.` prefix) and shapes, GEMMA4.md §2."""
    H, L, P = cfg.hidden_size, cfg.num_hidden_layers, cfg.hidden_size_per_layer_input
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    s: dict[str, tuple[int, ...]] = {
        "embed_tokens.weight": (cfg.vocab_size, H),
        "embed_tokens_per_layer.weight": (cfg.vocab_size_per_layer_input, L * P),
        "per_layer_model_projection.weight": (L * P, H),
        "per_layer_projection_norm.weight": (P,),
        "norm.weight": (H,),
    }
    for l in range(L):
        p = f"layers.{l}."
        hd, Fw = cfg.hd(l), cfg.ffn(l)
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                  "post_feedforward_layernorm", "post_per_layer_input_norm"):
            s[p + n + ".weight"] = (H,)
        s[p + "self_attn.q_proj.weight"] = (nh * hd, H)
        s[p + "self_attn.q_norm.weight"] = (hd,)
        if cfg.owns_kv(l):
            s[p + "self_attn.k_proj.weight"] = (nkv * hd, H)
            s[p + "self_attn.v_proj.weight"] = (nkv * hd, H)
            s[p + "self_attn.k_norm.weight"] = (hd,)
        s[p + "self_attn.o_proj.weight"] = (H, nh * hd)
        s[p + "mlp.gate_proj.weight"] = (Fw, H)
        s[p + "mlp.up_proj.weight"] = (Fw, H)
        s[p + "mlp.down_proj.weight"] = (H, Fw)
        s[p + "per_layer_input_gate.weight"] = (P, H)
        s[p + "per_layer_projection.weight"] = (H, P)
        s[p + "layer_scalar"] = (1,)
    return s


def is_norm_or_scalar(name: str) -> bool:
    return name.endswith("norm.weight") or name.endswith("layer_scalar")


def init_params(cfg: TextConfig, seed: int = 0, std: float = 0.02) -> dict[str, torch.Tensor]:
    """Float32 parameters: norms and layer scalars 1, matrices N(0, std) (output
    projections scaled down by sqrt(2 * L), GPT-2 style)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    L = cfg.num_hidden_layers
    for name, shape in param_shapes(cfg).items():
        if is_norm_or_scalar(name):
            t = torch.ones(shape, dtype=torch.float32)
        else:
            sd = std
            if name.endswith(("o_proj.weight", "down_proj.weight", "per_layer_projection.weight")):
                sd = std / math.sqrt(2 * L)
            t = torch.randn(shape, generator=g, dtype=torch.float32) * sd
        out[name] = t
    return out


# ---------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------


def rms_norm(x: torch.Tensor, w: torch.Tensor | None, eps: float) -> torch.Tensor:
    y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return y * w if w is not None else y


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def inv_freq(cfg: TextConfig, sliding: bool, dtype) -> torch.Tensor:
    """[hd/2] inverse frequencies; pair i rotates dims i and i + hd/2."""
    if sliding:
        hd, theta, rotated = cfg.head_dim, cfg.rope_theta_sliding, cfg.head_dim // 2
    else:
        hd, theta = cfg.global_head_dim, cfg.rope_theta_full
        rotated = int(cfg.partial_rotary_factor_full * hd // 2)  # floor(0.25 * 512 / 2) = 64
    i = torch.arange(hd // 2, dtype=torch.float64)
    f = theta ** (-2.0 * i / hd)  # exponent denominator is the FULL head dim
    f[rotated:] = 0.0
    return f.to(dtype)


def rope_cos_sin(cfg: TextConfig, sliding: bool, T: int, dtype, offset: int = 0):
    f = inv_freq(cfg, sliding, dtype)
    pos = torch.arange(offset, offset + T, dtype=dtype)
    ang = pos[:, None] * f[None, :]  # [T, hd/2]
    ang = torch.cat([ang, ang], dim=-1)  # [T, hd]
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, T, heads, hd]; NeoX rotate-half layout."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    rot = torch.cat([-x2, x1], dim=-1)
    return x * cos[None, :, None, :] + rot * sin[None, :, None, :]


def attention_mask(T: int, window: int | None, dtype) -> torch.Tensor:
    """Additive mask [T, T]: 0 where key kv is visible from query q, -inf elsewhere.
    Causal (kv <= q); with a window also q - kv < window."""
    q = torch.arange(T)[:, None]
    kv = torch.arange(T)[None, :]
    ok = kv <= q
    if window is not None:
        ok = ok & (q - kv < window)
    m = torch.zeros(T, T, dtype=dtype)
    m.masked_fill_(~ok, float("-inf"))
    return m


class AttentionCore(torch.autograd.Function):
    """softmax(q k^T + mask) v with scale 1.0 and grouped KV heads (query head j uses
    KV head j // (nh / nkv)).  q [B, T, nh, hd], k and v [B, T, nkv, hd], mask [T, T]
    -> [B, T, nh, hd].  The query heads of a group are folded into the rows of one
    matrix product, and the backward pass is written out with contiguous operands:
    PyTorch 1.13's CPU autograd of the same expression hits slow strided bmm paths."""

    @staticmethod
    def _fold(q, k, v):
        B, T, nh, hd = q.shape
        nkv = k.shape[2]
        g = nh // nkv
        Q = q.reshape(B, T, nkv, g, hd).permute(0, 2, 3, 1, 4).reshape(B * nkv, g * T, hd).contiguous()
        K = k.permute(0, 2, 1, 3).reshape(B * nkv, T, hd).contiguous()
        V = v.permute(0, 2, 1, 3).reshape(B * nkv, T, hd).contiguous()
        return Q, K, V, (B, T, nh, nkv, g, hd)

    @staticmethod
    def _unfold_q(X, dims):
        B, T, nh, nkv, g, hd = dims
        return X.view(B, nkv, g, T, hd).permute(0, 3, 1, 2, 4).reshape(B, T, nh, hd)

    @staticmethod
    def forward(ctx, q, k, v, mask):
        Q, K, V, dims = AttentionCore._fold(q, k, v)
        B, T, nh, nkv, g, hd = dims
        S = torch.bmm(Q, K.transpose(1, 2)).view(B * nkv, g, T, T) + mask
        P = torch.softmax(S, dim=-1).view(B * nkv, g * T, T)
        O = torch.bmm(P, V)
        ctx.save_for_backward(Q, K, V, P)
        ctx.dims = dims
        return AttentionCore._unfold_q(O, dims)

    @staticmethod
    def backward(ctx, dO):
        Q, K, V, P = ctx.saved_tensors
        dims = ctx.dims
        B, T, nh, nkv, g, hd = dims
        dO = dO.reshape(B, T, nkv, g, hd).permute(0, 2, 3, 1, 4).reshape(B * nkv, g * T, hd).contiguous()
        dP = torch.bmm(dO, V.transpose(1, 2).contiguous())
        dV = torch.bmm(P.transpose(1, 2).contiguous(), dO)
        dS = P * (dP - (dP * P).sum(dim=-1, keepdim=True))
        dQ = torch.bmm(dS, K)
        dK = torch.bmm(dS.transpose(1, 2).contiguous(), Q)
        dq = AttentionCore._unfold_q(dQ, dims)
        dk = dK.view(B, nkv, T, hd).permute(0, 2, 1, 3)
        dv = dV.view(B, nkv, T, hd).permute(0, 2, 1, 3)
        return dq, dk, dv, None


def per_layer_inputs(params: dict, cfg: TextConfig, ids: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """[B, T, L, P] per-layer inputs (GEMMA4.md §3.1 steps 2-4)."""
    B, T = ids.shape
    L, P, H = cfg.num_hidden_layers, cfg.hidden_size_per_layer_input, cfg.hidden_size
    dt = x0.dtype
    tok = F.embedding(ids, params["embed_tokens_per_layer.weight"]).view(B, T, L, P) * math.sqrt(P)
    proj = (x0 @ params["per_layer_model_projection.weight"].t()) * (H ** -0.5)
    proj = rms_norm(proj.view(B, T, L, P), params["per_layer_projection_norm.weight"], cfg.rms_norm_eps)
    return (proj + tok) * torch.tensor(2.0 ** -0.5, dtype=dt)


def forward(params: dict, cfg: TextConfig, ids: torch.Tensor, return_hidden: bool = False) -> torch.Tensor:
    """ids [B, T] (position p = index; BOS expected at p = 0) -> logits [B, T, V]
    in the dtype of the parameters."""
    B, T = ids.shape
    H, L = cfg.hidden_size, cfg.num_hidden_layers
    nh, nkv = cfg.num_attention_heads, cfg.num_key_value_heads
    eps = cfg.rms_norm_eps
    E = params["embed_tokens.weight"]
    dt = E.dtype

    x0 = F.embedding(ids, E) * math.sqrt(H)
    ple = per_layer_inputs(params, cfg, ids, x0)

    rope = {s: rope_cos_sin(cfg, s, T, dt) for s in (True, False)}
    masks = {True: attention_mask(T, cfg.sliding_window, dt), False: attention_mask(T, None, dt)}
    kv_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    h = x0
    for l in range(L):
        p = f"layers.{l}."
        sl = cfg.is_sliding(l)
        hd = cfg.hd(l)
        cos, sin = rope[sl]

        # --- attention ---
        r = h
        a = rms_norm(h, params[p + "input_layernorm.weight"], eps)
        q = (a @ params[p + "self_attn.q_proj.weight"].t()).view(B, T, nh, hd)
        q = apply_rope(rms_norm(q, params[p + "self_attn.q_norm.weight"], eps), cos, sin)
        if cfg.owns_kv(l):
            k = (a @ params[p + "self_attn.k_proj.weight"].t()).view(B, T, nkv, hd)
            v = (a @ params[p + "self_attn.v_proj.weight"].t()).view(B, T, nkv, hd)
            k = apply_rope(rms_norm(k, params[p + "self_attn.k_norm.weight"], eps), cos, sin)
            v = rms_norm(v, None, eps)
            kv_cache[l] = (k, v)
        else:
            k, v = kv_cache[cfg.kv_source(l)]
        o = AttentionCore.apply(q, k, v, masks[sl]).reshape(B, T, nh * hd)
        a = o @ params[p + "self_attn.o_proj.weight"].t()
        a = rms_norm(a, params[p + "post_attention_layernorm.weight"], eps)
        h = r + a

        # --- MLP ---
        r = h
        m = rms_norm(h, params[p + "pre_feedforward_layernorm.weight"], eps)
        m = gelu_tanh(m @ params[p + "mlp.gate_proj.weight"].t()) * (m @ params[p + "mlp.up_proj.weight"].t())
        m = m @ params[p + "mlp.down_proj.weight"].t()
        m = rms_norm(m, params[p + "post_feedforward_layernorm.weight"], eps)
        h = r + m

        # --- per-layer input ---
        r = h
        gt = gelu_tanh(h @ params[p + "per_layer_input_gate.weight"].t())
        gt = gt * ple[:, :, l, :]
        gt = gt @ params[p + "per_layer_projection.weight"].t()
        gt = rms_norm(gt, params[p + "post_per_layer_input_norm.weight"], eps)
        h = r + gt

        h = h * params[p + "layer_scalar"]

    h = rms_norm(h, params["norm.weight"], eps)
    if return_hidden:
        return h
    return logits_from_hidden(h, E, cfg)


def logits_from_hidden(h: torch.Tensor, E: torch.Tensor, cfg: TextConfig) -> torch.Tensor:
    logits = h @ E.t()
    cap = cfg.final_logit_softcapping
    if cap:
        logits = cap * torch.tanh(logits / cap)
    return logits


# ---------------------------------------------------------------------------
# Safetensors (bf16) I/O without the safetensors package
# ---------------------------------------------------------------------------


def f32_to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """Round float32 to bfloat16 (nearest, ties to even); returns uint16 bit patterns."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((u >> 16) & 1) + 0x7FFF
    return ((u + rounding) >> 16).astype(np.uint16)


def bf16_bits_to_f32(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << 16).view(np.float32)


def round_to_bf16(t: torch.Tensor) -> torch.Tensor:
    """float32 tensor -> the float32 values of its bf16 rounding."""
    bits = f32_to_bf16_bits(t.detach().to(torch.float32).cpu().numpy())
    return torch.from_numpy(bf16_bits_to_f32(bits).reshape(t.shape).copy())


def save_safetensors_bf16(path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Write tensors as BF16 in the reference layout: sorted by name (all have the
    same alignment), compact JSON header padded with spaces to a multiple of 8."""
    names = sorted(tensors)
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    blobs = []
    off = 0
    for n in names:
        t = tensors[n]
        data = f32_to_bf16_bits(t.detach().to(torch.float32).cpu().numpy()).tobytes()
        header[n] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    hj = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_safetensors(path, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Read a safetensors file (BF16, F32 or F64 tensors) into `dtype` tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[base + a:base + b]
        if info["dtype"] == "BF16":
            arr = bf16_bits_to_f32(np.frombuffer(buf, dtype="<u2"))
        elif info["dtype"] == "F32":
            arr = np.frombuffer(buf, dtype="<f4")
        elif info["dtype"] == "F64":
            arr = np.frombuffer(buf, dtype="<f8")
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {info['dtype']}")
        out[name] = torch.from_numpy(arr.astype(np.float64).reshape(info["shape"])).to(dtype)
    return out


def load_params(model_dir, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """The text-decoder parameters of a checkpoint folder (single model.safetensors),
    prefix stripped, converted to `dtype`.  Dead k/v tensors of shared layers and
    tower tensors are ignored."""
    cfg = TextConfig.from_json(Path(model_dir) / "config.json")
    raw = load_safetensors(Path(model_dir) / "model.safetensors", dtype)
    shapes = param_shapes(cfg)
    out = {}
    for name, shape in shapes.items():
        t = raw[PREFIX + name]
        assert tuple(t.shape) == shape, (name, t.shape, shape)
        out[name] = t
    return out


# ---------------------------------------------------------------------------
# Self-test: python3 tools/gemma4_reference.py
# ---------------------------------------------------------------------------


@torch.no_grad()
def decode_step_by_step(params: dict, cfg: TextConfig, ids: list[int]) -> torch.Tensor:
    """A second, deliberately different implementation for checking forward():
    one token at a time with explicit per-layer K/V caches, per-head loops, the
    sliding window applied by slicing the cache, and RoPE by explicit pair rotation."""
    H, L, P = cfg.hidden_size, cfg.num_hidden_layers, cfg.hidden_size_per_layer_input
    nh, nkv, eps = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.rms_norm_eps
    E = params["embed_tokens.weight"]
    dt = E.dtype
    cache: dict[int, tuple[list, list]] = {l: ([], []) for l in range(L) if cfg.owns_kv(l)}
    out = []

    def rope_vec(x, pos, sliding):  # x [hd]
        hd = x.shape[0]
        half = hd // 2
        f = inv_freq(cfg, sliding, torch.float64)
        y = x.clone()
        for i in range(half):
            a = pos * float(f[i])
            c, s = math.cos(a), math.sin(a)
            y[i] = x[i] * c - x[i + half] * s
            y[i + half] = x[i + half] * c + x[i] * s
        return y

    def norm(x, w):
        y = x / torch.sqrt((x * x).mean() + eps)
        return y * w if w is not None else y

    for pos, t in enumerate(ids):
        x = E[t] * math.sqrt(H)
        tok = params["embed_tokens_per_layer.weight"][t] * math.sqrt(P)
        proj = (params["per_layer_model_projection.weight"] @ x) / math.sqrt(H)
        ple = [(norm(proj[l * P:(l + 1) * P], params["per_layer_projection_norm.weight"]) + tok[l * P:(l + 1) * P])
               / math.sqrt(2.0) for l in range(L)]
        h = x
        for l in range(L):
            p = f"layers.{l}."
            sl = cfg.is_sliding(l)
            hd = cfg.hd(l)
            a = norm(h, params[p + "input_layernorm.weight"])
            q = (params[p + "self_attn.q_proj.weight"] @ a).view(nh, hd)
            if cfg.owns_kv(l):
                k = (params[p + "self_attn.k_proj.weight"] @ a).view(nkv, hd)
                v = (params[p + "self_attn.v_proj.weight"] @ a).view(nkv, hd)
                ks = torch.stack([rope_vec(norm(k[j], params[p + "self_attn.k_norm.weight"]), pos, sl) for j in range(nkv)])
                vs = torch.stack([norm(v[j], None) for j in range(nkv)])
                cache[l][0].append(ks)
                cache[l][1].append(vs)
            K, V = cache[cfg.kv_source(l)]
            lo = max(0, pos - cfg.sliding_window + 1) if sl else 0
            heads = []
            for j in range(nh):
                qj = rope_vec(norm(q[j], params[p + "self_attn.q_norm.weight"]), pos, sl)
                kv = j // (nh // nkv)
                Kj = torch.stack([K[i][kv] for i in range(lo, pos + 1)])
                Vj = torch.stack([V[i][kv] for i in range(lo, pos + 1)])
                w = torch.softmax(Kj @ qj, dim=0)
                heads.append(w @ Vj)
            a = params[p + "self_attn.o_proj.weight"] @ torch.cat(heads)
            h = h + norm(a, params[p + "post_attention_layernorm.weight"])
            m = norm(h, params[p + "pre_feedforward_layernorm.weight"])
            gate = params[p + "mlp.gate_proj.weight"] @ m
            gate = 0.5 * gate * (1 + torch.tanh(math.sqrt(2 / math.pi) * (gate + 0.044715 * gate ** 3)))
            m = params[p + "mlp.down_proj.weight"] @ (gate * (params[p + "mlp.up_proj.weight"] @ m))
            h = h + norm(m, params[p + "post_feedforward_layernorm.weight"])
            g = params[p + "per_layer_input_gate.weight"] @ h
            g = 0.5 * g * (1 + torch.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
            g = params[p + "per_layer_projection.weight"] @ (g * ple[l])
            h = h + norm(g, params[p + "post_per_layer_input_norm.weight"])
            h = h * params[p + "layer_scalar"][0]
        h = norm(h, params["norm.weight"])
        z = E @ h
        if cfg.final_logit_softcapping:
            z = cfg.final_logit_softcapping * torch.tanh(z / cfg.final_logit_softcapping)
        out.append(z)
    return torch.stack(out).to(dt)


def self_test() -> None:
    import tempfile

    torch.manual_seed(0)
    cfg = TextConfig(vocab_size=512, vocab_size_per_layer_input=512, sliding_window=8, hidden_size=64,
                     intermediate_size=96, head_dim=32, global_head_dim=64, hidden_size_per_layer_input=16)
    p32 = init_params(cfg, seed=1, std=0.2)
    for n, t in p32.items():  # non-trivial norm weights and layer scalars
        if is_norm_or_scalar(n):
            t.mul_(0).add_(0.5 + torch.rand(t.shape))
    p64 = {n: t.to(torch.float64) for n, t in p32.items()}
    ids = torch.randint(0, cfg.vocab_size, (2, 30))
    ids[:, 0] = 2
    l64 = forward(p64, cfg, ids)
    l32 = forward(p32, cfg, ids)
    d = float((l64 - l32.double()).abs().max())
    print(f"float32 vs float64 forward: max |diff| {d:.2e} (logit scale {float(l64.abs().max()):.1f})")
    assert d < 1e-3
    ref = decode_step_by_step(p64, cfg, ids[0].tolist())
    d = float((ref - l64[0]).abs().max())
    print(f"batched forward vs step-by-step decoder (float64): max |diff| {d:.2e}")
    assert d < 1e-9
    # RoPE of full layers: only pairs i < 0.25 * hd / 2 rotate.
    f = inv_freq(cfg, False, torch.float64)
    rot = int(cfg.partial_rotary_factor_full * cfg.global_head_dim // 2)
    assert (f[:rot] > 0).all() and (f[rot:] == 0).all() and abs(float(f[1]) - cfg.rope_theta_full ** (-2 / cfg.global_head_dim)) < 1e-15
    # Sharing: the last layers read the last KV-owning layer of their type.
    print("kv sources:", [cfg.kv_source(l) for l in range(cfg.num_hidden_layers)])
    # Save as bf16, reload, compare with the bf16-rounded parameters.
    with tempfile.TemporaryDirectory() as td:
        save_safetensors_bf16(Path(td) / "m.safetensors", {PREFIX + n: t for n, t in p32.items()})
        back = load_safetensors(Path(td) / "m.safetensors", torch.float64)
        rounded = {n: round_to_bf16(t).to(torch.float64) for n, t in p32.items()}
        for n in p32:
            assert torch.equal(back[PREFIX + n], rounded[n]), n
        d = float((forward({n: back[PREFIX + n] for n in p32}, cfg, ids) - forward(rounded, cfg, ids)).abs().max())
        print(f"bf16 save/reload: tensors bit-identical, logits diff {d:.1e}")
        assert d == 0.0
    print("self-test passed")


if __name__ == "__main__":
    self_test()
