#!/usr/bin/python3
"""Train the tiny Gemma 4 model bundled with Whittle (resources/models/whittle-gemma4-tiny).

A 6-layer Gemma 4 text decoder with every architectural feature of E2B (per-layer
embeddings, sliding and full attention with their own head dims and RoPE, KV sharing,
double-wide MLP on the KV-shared layers, layer scalars, q/k/v norms, final logit
softcap, tied embeddings), trained on CPU in one thread on the text of Debian's fortune
packages, with a tokenizer of our own in Gemma 4's exact format.

Usage (Debian 12: apt-get install python3-torch python3-numpy libopenblas0-pthread):

    python3 tools/train_bundled_model.py                 # everything, 45 minutes of training
    python3 tools/train_bundled_model.py --measure 20    # tokens/s over 20 steps, writes nothing
    python3 tools/train_bundled_model.py --resume        # continue an interrupted run
    python3 tools/train_bundled_model.py --finalize-only # redo golden logits, samples, README

Steps: read the fortunes (holding out 2 % of them, chosen by a hash of file and index),
train the tokenizer (byte-fallback BPE, the layout of tools/make_test_tokenizer.py at
8,192 entries), check it against `whittle-cli tokenize` and npm @huggingface/tokenizers
when those are available, encode, train (AdamW, warmup + cosine over the wall-clock
budget, f32, one thread), export bf16 safetensors plus config files (also every few
minutes during training, so a killed run leaves a usable model), then compute held-out
perplexity, golden logits in float64 from the stored bf16 weights, samples and README.md.

The forward pass is tools/gemma4_reference.py.  Intermediate files (tokenizer cache,
encoded corpus, optimizer checkpoint, log) go to build/train-bundled/.
"""

from __future__ import annotations

import os

# One BLAS / OpenMP thread: must be set before numpy and torch are imported.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import torch

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
sys.path.insert(0, str(TOOLS))

import gemma4_reference as g4  # noqa: E402
import make_test_tokenizer as mtt  # noqa: E402

FORTUNES = Path("/usr/share/games/fortunes")
DEFAULT_OUT = REPO / "resources" / "models" / "whittle-gemma4-tiny"
DEFAULT_WORK = REPO / "build" / "train-bundled"
MODEL_NAME = "whittle-gemma4-tiny"

# ---------------------------------------------------------------------------
# Model and tokenizer dimensions
# ---------------------------------------------------------------------------

VOCAB_SIZE = 8192
FIRST_MEDIA_ID = VOCAB_SIZE - len(mtt.MEDIA_TOKENS)  # 8185
MAX_CHARS = 1600  # most frequent characters kept as tokens; the rest use byte fallback
SEQ_LEN = 256  # training context, BOS included

BOS, EOS, PAD, TURN_START, TURN_END = 2, 1, 0, 105, 106


def model_config() -> g4.TextConfig:
    return g4.TextConfig(
        hidden_size=256,
        intermediate_size=1024,
        num_hidden_layers=6,
        layer_types=[g4.SLIDING, g4.SLIDING, g4.SLIDING, g4.FULL, g4.SLIDING, g4.FULL],
        num_kv_shared_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=256,
        global_head_dim=512,
        hidden_size_per_layer_input=32,
        vocab_size=VOCAB_SIZE,
        vocab_size_per_layer_input=VOCAB_SIZE,
        sliding_window=64,
        rms_norm_eps=1e-6,
        final_logit_softcapping=30.0,
        use_double_wide_mlp=True,
        rope_theta_sliding=10000.0,
        rope_theta_full=1000000.0,
        partial_rotary_factor_full=0.25,
    )


# ---------------------------------------------------------------------------
# Corpus: Debian's fortune packages
# ---------------------------------------------------------------------------

ROOT_LANG = {"chinese": "zh", "song100": "zh", "tang300": "zh", "brasil": "pt-BR"}
ROOT_PACKAGE = {
    "chinese": "fortunes-zh", "song100": "fortunes-zh", "tang300": "fortunes-zh",
    "brasil": "fortunes-br",
    "fortunes": "fortunes-min", "literature": "fortunes-min", "riddles": "fortunes-min",
}
LANG_WEIGHT = {"en": 3}  # English is seen three times as often as the other languages
HOLDOUT_MOD = 50  # 1 in 50 fortunes (2 %) is held out
CHAT_MOD = 10  # 1 in 10 training copies is wrapped in the chat format

# Short user requests for the chat-wrapped copies, by language.
CHAT_PROMPTS = {
    "en": ["Tell me a fortune.", "Say something wise.", "Tell me something funny.", "Give me a quote.",
           "What is my fortune today?", "Tell me a joke.", "Share a thought with me.", "Surprise me."],
    "de": ["Erzähl mir etwas.", "Sag mir einen Spruch.", "Erzähl mir einen Witz."],
    "ru": ["Расскажи что-нибудь.", "Скажи мудрую мысль.", "Расскажи анекдот."],
    "es": ["Dime algo.", "Cuéntame un chiste."],
    "it": ["Dimmi qualcosa.", "Raccontami una barzelletta."],
    "pl": ["Powiedz mi coś.", "Opowiedz dowcip."],
    "cs": ["Řekni mi něco.", "Řekni mi vtip."],
    "zh": ["给我讲一句话。", "说点什么吧。"],
    "pt-BR": ["Me diga algo.", "Conte uma piada."],
    "bg": ["Кажи ми нещо."],
    "eo": ["Diru ion al mi."],
    "ga": ["Inis dom rud éigin."],
}


def file_language(rel: str) -> tuple[str, str]:
    parts = rel.split("/")
    if len(parts) == 1:
        return ROOT_LANG.get(parts[0], "en"), ROOT_PACKAGE.get(parts[0], "fortunes")
    return parts[0], "fortunes-" + {"pt-BR": "br"}.get(parts[0], parts[0])


def read_fortunes(root: Path = FORTUNES) -> list[dict]:
    """Every fortune as {file, index, lang, package, text, heldout}.  Skips symlinks,
    *.dat index files, empty files and anything under an `off` (offensive) folder."""
    files = []
    for dp, dns, fns in os.walk(root):
        rel_dir = os.path.relpath(dp, root)
        if "off" in rel_dir.split(os.sep):
            continue
        dns[:] = [d for d in dns if not os.path.islink(os.path.join(dp, d))]
        for fn in fns:
            p = os.path.join(dp, fn)
            if os.path.islink(p) or fn.endswith(".dat") or not os.path.isfile(p):
                continue
            files.append(os.path.relpath(p, root).replace(os.sep, "/"))
    files.sort()
    out = []
    for rel in files:
        with open(root / rel, encoding="utf-8") as f:
            data = f.read()
        if not data.strip():
            continue
        lang, pkg = file_language(rel)
        cur: list[str] = []
        idx = 0
        for line in data.split("\n") + ["%"]:
            if line == "%":
                text = "\n".join(cur).strip("\n")
                if text.strip():
                    key = f"{rel}:{idx}"
                    out.append({
                        "file": rel, "index": idx, "lang": lang, "package": pkg, "text": text + "\n",
                        "heldout": zlib.crc32(key.encode()) % HOLDOUT_MOD == 0,
                    })
                    idx += 1
                cur = []
            else:
                cur.append(line)
    return out


def chat_text(prompt: str, reply: str) -> str:
    return f"<|turn>user\n{prompt.strip()}<turn|>\n<|turn>model\n{reply.strip()}<turn|>\n"


# ---------------------------------------------------------------------------
# Tokenizer (layout and JSON of tools/make_test_tokenizer.py, 8192 entries)
# ---------------------------------------------------------------------------

SP = mtt.SP


def tokenizer_words(fortunes: list[dict], chars: set[str]) -> Counter:
    """Weighted word counts over the training fortunes, split as make_test_tokenizer's
    corpus_words() does; characters outside `chars` (byte fallback) split words."""
    words: Counter = Counter()
    drop = None
    for ft in fortunes:
        if ft["heldout"]:
            continue
        w = LANG_WEIGHT.get(ft["lang"], 1)
        for line in ft["text"].split("\n"):
            for piece in mtt.PIECE_RE.findall(line.replace(" ", SP)):
                if len(piece) >= 2 and set(piece) == {SP}:
                    continue
                if any(ch not in chars for ch in piece):
                    drop = drop or re.compile("[^" + "".join(re.escape(c) for c in sorted(chars)) + "]+")
                    for part in drop.split(piece):
                        if part:
                            words[part] += w
                else:
                    words[piece] += w
    return words


def build_tokenizer(fortunes: list[dict]) -> tuple[dict, dict, dict]:
    template, config, _ = mtt.build()  # the 4096-entry test tokenizer: our JSON template
    prefix = mtt.fixed_prefix()
    vocab: dict[str, int] = {}
    added = []
    for i, (content, special) in enumerate(prefix):
        vocab[content] = i
        added.append(mtt.added_token(i, content, special))
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = mtt.FIRST_BYTE_ID + byte

    char_freq: Counter = Counter()
    for ft in fortunes:
        if ft["heldout"]:
            continue
        w = LANG_WEIGHT.get(ft["lang"], 1)
        for line in ft["text"].split("\n"):
            for ch in line.replace(" ", SP):
                char_freq[ch] += w
    ranked = sorted(char_freq, key=lambda c: (-char_freq[c], c))
    chars = [c for c in ranked if c not in vocab][:MAX_CHARS]
    assert SP in chars
    for ch in chars:
        vocab[ch] = len(vocab)

    words = tokenizer_words(fortunes, set(chars))
    learned = mtt.train_bpe(words, set(vocab), FIRST_MEDIA_ID - len(vocab))
    for a, b in learned:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    assert len(vocab) == FIRST_MEDIA_ID, len(vocab)
    for j, content in enumerate(mtt.MEDIA_TOKENS):
        vocab[content] = FIRST_MEDIA_ID + j
        added.append(mtt.added_token(FIRST_MEDIA_ID + j, content, True))
    merges = mtt.whitespace_merges() + learned

    assert len(vocab) == VOCAB_SIZE and sorted(vocab.values()) == list(range(VOCAB_SIZE))
    for a, b in merges:
        assert a in vocab and b in vocab and a + b in vocab, (a, b)
    assert len(set(merges)) == len(merges)

    tok = json.loads(json.dumps(template))
    tok["added_tokens"] = added
    tok["model"]["vocab"] = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
    tok["model"]["merges"] = [[a, b] for a, b in merges]
    covered = sum(char_freq[c] for c in chars)
    stats = {
        "vocab_size": VOCAB_SIZE,
        "characters": len(chars),
        "distinct_characters_in_corpus": len(char_freq),
        "character_coverage": covered / sum(char_freq.values()),
        "learned_merges": len(learned),
        "whitespace_merges": len(mtt.whitespace_merges()),
        "merges": len(merges),
        "learned_tokens": FIRST_MEDIA_ID - mtt.FIRST_BYTE_ID - 256 - len(chars),
    }
    return tok, config, stats


class Encoder:
    """Encodes text exactly as Hugging Face `tokenizers` does with these files:
    added tokens matched leftmost-longest on the raw text, " " -> "▁", BPE merges by
    rank, byte fallback.  Learned merges never cross a piece of make_test_tokenizer's
    PIECE_RE, so pieces are encoded independently and cached."""

    def __init__(self, tok: dict):
        self.vocab: dict[str, int] = tok["model"]["vocab"]
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.ranks = {(a, b): r for r, (a, b) in enumerate(tok["model"]["merges"])}
        self.added = {t["content"]: t["id"] for t in tok["added_tokens"]}
        self.special_ids = {t["id"] for t in tok["added_tokens"] if t["special"]}
        alts = sorted(self.added, key=lambda s: (-len(s), s))
        self.added_re = re.compile("|".join(re.escape(a) for a in alts))
        self.cache: dict[str, list[int]] = {}

    def _bpe(self, piece: str) -> list[int]:
        hit = self.cache.get(piece)
        if hit is not None:
            return hit
        syms: list[str] = []
        for ch in piece:
            if ch in self.vocab:
                syms.append(ch)
            else:
                syms.extend(f"<0x{b:02X}>" for b in ch.encode("utf-8"))
        # Hugging Face's order: always merge the single pair with the lowest (rank, position);
        # merging every occurrence of the best pair at once differs on long "▁" runs.
        ranks = self.ranks
        while len(syms) > 1:
            best_rank, best_i = None, -1
            for i in range(len(syms) - 1):
                r = ranks.get((syms[i], syms[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best_rank, best_i = r, i
            if best_rank is None:
                break
            syms[best_i:best_i + 2] = [syms[best_i] + syms[best_i + 1]]
        ids = [self.vocab[s] for s in syms]
        if len(self.cache) < 2_000_000:
            self.cache[piece] = ids
        return ids

    def _plain(self, text: str, out: list[int]) -> None:
        for piece in mtt.PIECE_RE.findall(text.replace(" ", SP)):
            out.extend(self._bpe(piece))

    def encode(self, text: str, bos: bool = True) -> list[int]:
        out = [BOS] if bos else []
        pos = 0
        for m in self.added_re.finditer(text):
            if m.start() > pos:
                self._plain(text[pos:m.start()], out)
            out.append(self.added[m.group(0)])
            pos = m.end()
        if pos < len(text):
            self._plain(text[pos:], out)
        return out

    def decode(self, ids: list[int], skip_special: bool = False) -> str:
        parts: list[bytes] = []
        for i in ids:
            if skip_special and i in self.special_ids:
                continue
            t = self.id_to_token[int(i)]
            if re.fullmatch(r"<0x[0-9A-F]{2}>", t):
                parts.append(bytes([int(t[3:5], 16)]))
            else:
                parts.append(t.replace(SP, " ").encode("utf-8"))
        return b"".join(parts).decode("utf-8", errors="replace")


def verify_tokenizer(tok_dir: Path, enc: Encoder, fortunes: list[dict], n_lines: int, log) -> dict:
    """Compare our encoder with `whittle-cli tokenize` and npm @huggingface/tokenizers
    (each only when present) on n_lines corpus lines.  Returns counts."""
    rng = random.Random(1234)
    lines = []
    for ft in fortunes:
        lines.extend(l for l in ft["text"].split("\n") if l)
    rng.shuffle(lines)
    lines = lines[:n_lines] + ["  two  spaces", "tab\there", "emoji 🎉 ok", "<bos> literal", "x" * 300]
    ours = [enc.encode(l) for l in lines]
    result = {"lines": len(lines)}
    tmp = Path(tempfile.mkdtemp(prefix="whittle-tok-"))
    try:
        cli = REPO / "build" / "default" / "app" / "whittle-cli"
        if cli.exists():
            (tmp / "lines.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            r = subprocess.run([str(cli), "tokenize", str(tok_dir / "tokenizer.json"), "--file", str(tmp / "lines.txt")],
                               capture_output=True, text=True, check=True)
            theirs = [[int(x) for x in l.split()] for l in r.stdout.split("\n")[: len(lines)]]
            same = sum(a == b for a, b in zip(ours, theirs))
            result["whittle_cli_identical"] = same
            log(f"tokenizer vs whittle-cli: {same}/{len(lines)} lines identical")
        else:
            log("tokenizer vs whittle-cli: skipped (build/default/app/whittle-cli not built)")
        peers = REPO / "build" / "default" / "npm"
        node = shutil.which("node")
        if node and (peers / "node_modules" / "@huggingface" / "tokenizers").exists():
            # Whole fortunes (newline runs) and chat-formatted text (special tokens) as well.
            docs = [ft["text"] for ft in rng.sample(fortunes, min(1000, len(fortunes)))]
            docs.append(chat_text("Tell me a fortune.", "Beware of <bos> and\n\n\n\tfriends.") + "<|turn>model\n")
            multi = lines + docs
            ours_multi = ours + [enc.encode(d) for d in docs]
            with open(tmp / "in.jsonl", "w", encoding="utf-8") as f:
                for l in multi:
                    f.write(json.dumps(l, ensure_ascii=False) + "\n")
            subprocess.run([node, str(REPO / "tests" / "peers" / "hf_encode.mjs"), str(tok_dir / "tokenizer.json"),
                            str(tok_dir / "tokenizer_config.json"), str(tmp / "in.jsonl"), str(tmp / "out.jsonl")],
                           check=True, env=dict(os.environ, WHITTLE_PEERS_DIR=str(peers)))
            theirs = [json.loads(l) for l in (tmp / "out.jsonl").read_text(encoding="utf-8").splitlines()]
            same = sum(a == b for a, b in zip(ours_multi, theirs))
            result["hf_texts"] = len(multi)
            result["hf_tokenizers_identical"] = same
            log(f"tokenizer vs @huggingface/tokenizers: {same}/{len(multi)} texts identical "
                f"({len(lines)} lines, {len(docs)} whole multi-line fortunes and chat texts)")
        else:
            log("tokenizer vs @huggingface/tokenizers: skipped (node or build/default/npm missing)")
        rt = sum(enc.decode(ids[1:]) == l for ids, l in zip(ours, lines))
        result["round_trip"] = rt
        log(f"tokenizer round trip: {rt}/{len(lines)} lines")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def encode_corpus(fortunes: list[dict], enc: Encoder) -> None:
    """Adds `ids` (plain document: text + <eos>) and, for training copies chosen for the
    chat format, `chat_ids`, to every fortune."""
    for ft in fortunes:
        ft["ids"] = np.array(enc.encode(ft["text"], bos=False) + [EOS], dtype=np.int32)


def training_documents(fortunes: list[dict], enc: Encoder) -> list[np.ndarray]:
    docs = []
    for ft in fortunes:
        if ft["heldout"]:
            continue
        for copy in range(LANG_WEIGHT.get(ft["lang"], 1)):
            key = f"{ft['file']}:{ft['index']}:{copy}".encode()
            h = zlib.crc32(key)
            if h % CHAT_MOD == 0:
                prompts = CHAT_PROMPTS[ft["lang"]]
                text = chat_text(prompts[(h // CHAT_MOD) % len(prompts)], ft["text"])
                docs.append(np.array(enc.encode(text, bos=False), dtype=np.int32))
            else:
                docs.append(ft["ids"])
    return docs


def pack(docs: list[np.ndarray], order) -> np.ndarray:
    """Concatenate documents in `order` and cut into rows of BOS + SEQ_LEN-1 tokens."""
    stream = np.concatenate([docs[i] for i in order])
    n = len(stream) // (SEQ_LEN - 1)
    rows = stream[: n * (SEQ_LEN - 1)].reshape(n, SEQ_LEN - 1)
    return np.concatenate([np.full((n, 1), BOS, dtype=np.int32), rows], axis=1)


# ---------------------------------------------------------------------------
# Loss: softcapped logits + cross-entropy, fused
# ---------------------------------------------------------------------------


class SoftcapCrossEntropy(torch.autograd.Function):
    """mean over rows of -log softmax(cap * tanh(h E^T / cap))[target]; the backward
    pass is written out to avoid autograd's extra passes over the [N, V] logits."""

    @staticmethod
    def forward(ctx, h, E, targets, cap):
        z = h @ E.t()
        t = z.div_(cap).tanh_()  # in place: z becomes tanh(z / cap)
        c = t * cap
        lse = torch.logsumexp(c, dim=-1)
        loss = (lse - c.gather(1, targets[:, None]).squeeze(1)).mean()
        ctx.save_for_backward(h, E, t, lse, targets)
        ctx.cap = cap
        return loss

    @staticmethod
    def backward(ctx, g):
        h, E, t, lse, targets = ctx.saved_tensors
        N = h.shape[0]
        p = (t * ctx.cap).sub_(lse[:, None]).exp_()  # softmax
        p[torch.arange(N), targets] -= 1.0
        dz = p.mul_(1.0 - t * t).mul_(g / N)
        return dz @ E, dz.t() @ h, None, None


def lm_loss(params, cfg, batch: torch.Tensor) -> torch.Tensor:
    h = g4.forward(params, cfg, batch, return_hidden=True)
    H = cfg.hidden_size
    return SoftcapCrossEntropy.apply(h[:, :-1].reshape(-1, H), params["embed_tokens.weight"],
                                     batch[:, 1:].reshape(-1).long(), cfg.final_logit_softcapping)


@torch.no_grad()
def eval_nll(params, cfg, rows: np.ndarray, batch: int = 8) -> tuple[float, int]:
    """Sum of next-token NLL over all rows (every position after BOS) and the count."""
    total, count = 0.0, 0
    for i in range(0, len(rows), batch):
        b = torch.from_numpy(rows[i:i + batch].astype(np.int64))
        logits = g4.forward(params, cfg, b)
        lp = torch.log_softmax(logits[:, :-1].to(torch.float64), dim=-1)
        nll = -lp.gather(2, b[:, 1:, None]).squeeze(2)
        total += float(nll.sum())
        count += nll.numel()
    return total, count


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def config_json(cfg: g4.TextConfig) -> dict:
    media = {t: FIRST_MEDIA_ID + j for j, t in enumerate(mtt.MEDIA_TOKENS)}
    text = {
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attention_k_eq_v": False,
        "bos_token_id": BOS,
        "dtype": "bfloat16",
        "enable_moe_block": False,
        "eos_token_id": EOS,
        "final_logit_softcapping": cfg.final_logit_softcapping,
        "global_head_dim": cfg.global_head_dim,
        "head_dim": cfg.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": cfg.hidden_size,
        "hidden_size_per_layer_input": cfg.hidden_size_per_layer_input,
        "initializer_range": 0.02,
        "intermediate_size": cfg.intermediate_size,
        "layer_types": list(cfg.layer_types),
        "max_position_embeddings": 131072,
        "model_type": "gemma4_text",
        "num_attention_heads": cfg.num_attention_heads,
        "num_global_key_value_heads": None,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_key_value_heads": cfg.num_key_value_heads,
        "num_kv_shared_layers": cfg.num_kv_shared_layers,
        "pad_token_id": PAD,
        "rms_norm_eps": cfg.rms_norm_eps,
        "rope_parameters": {
            "full_attention": {
                "partial_rotary_factor": cfg.partial_rotary_factor_full,
                "rope_theta": cfg.rope_theta_full,
                "rope_type": "proportional",
            },
            "sliding_attention": {"rope_theta": cfg.rope_theta_sliding, "rope_type": "default"},
        },
        "sliding_window": cfg.sliding_window,
        "tie_word_embeddings": True,
        "use_bidirectional_attention": None,
        "use_cache": True,
        "use_double_wide_mlp": cfg.use_double_wide_mlp,
        "vocab_size": cfg.vocab_size,
        "vocab_size_per_layer_input": cfg.vocab_size_per_layer_input,
    }
    return {
        "architectures": ["Gemma4ForConditionalGeneration"],
        "audio_config": None,
        "audio_token_id": media["<|audio|>"],
        "boa_token_id": media["<|audio>"],
        "boi_token_id": media["<|image>"],
        "dtype": "bfloat16",
        "eoa_token_id": media["<audio|>"],
        "eoi_token_id": media["<image|>"],
        "eos_token_id": [EOS, TURN_END],
        "image_token_id": media["<|image|>"],
        "model_type": "gemma4",
        "text_config": text,
        "tie_word_embeddings": True,
        "transformers_version": "5.5.0",
        "video_token_id": media["<|video|>"],
        "vision_config": None,
    }


GENERATION_CONFIG = {
    "bos_token_id": BOS,
    "do_sample": True,
    "eos_token_id": [EOS, TURN_END, 50],
    "pad_token_id": PAD,
    "repetition_penalty": 1.1,
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.95,
    "transformers_version": "5.5.0",
}


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def export_model(out: Path, work: Path, params: dict, cfg: g4.TextConfig) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tensors = {g4.PREFIX + n: t for n, t in params.items()}
    g4.save_safetensors_bf16(out / "model.safetensors", tensors)
    write_json(out / "config.json", config_json(cfg))
    write_json(out / "generation_config.json", GENERATION_CONFIG)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(work / name, out / name)
    shutil.copyfile(REPO / "resources" / "tokenizers" / "tiny-tokenizer" / "chat_template.jinja", out / "chat_template.jinja")
    write_licence_files(out)


# ---------------------------------------------------------------------------
# Licence files for the weights
# ---------------------------------------------------------------------------

CORPUS_PACKAGES = [
    # package, languages, licence of the fortune texts as stated in /usr/share/doc/PKG/copyright
    ("fortunes", "English", "BSD-3-Clause (fortune-mod; the data files are distributed under the package's BSD licence)"),
    ("fortunes-min", "English", "BSD-3-Clause (same source package as `fortunes`)"),
    ("fortunes-bg", "Bulgarian", "GPL-1.0-or-later (Anton Zinoviev, 2004)"),
    ("fortunes-br", "Brazilian Portuguese", "GPL-2.0-or-later"),
    ("fortunes-cs", "Czech", "GPL-3.0-or-later (license text: \"either version 3 of the License, or (at your option) any later version\")"),
    ("fortunes-de", "German", "GPL-2.0-or-later"),
    ("fortunes-eo", "Esperanto", "public domain (L. L. Zamenhof, died 1917); the computerized version by Eric Lesh under the GPL"),
    ("fortunes-es", "Spanish", "texts presumed public domain; packaging GPL-2.0-or-later"),
    ("fortunes-ga", "Irish", "BSD (proverbs from the GAELIC-L mailing list)"),
    ("fortunes-it", "Italian", "public domain (\"Consider this package freeware (public domain)\")"),
    ("fortunes-pl", "Polish", "GPL-2.0-or-later"),
    ("fortunes-ru", "Russian", "GPL-2 in the `Files: *` stanza; the licence paragraph (\"GPL-2 or GPL-2+\") grants \"version 2 of the License, or (at your option) any later version\""),
    ("fortunes-zh", "Chinese", "GPL-3.0-or-later"),
]


def package_version(pkg: str) -> str:
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() or "?"
    except OSError:
        return "?"


def write_licence_files(out: Path) -> None:
    gpl = Path("/usr/share/common-licenses/GPL-3")
    header = (
        "The weights, tokenizer and golden data in this folder (whittle-gemma4-tiny) are licensed under the\n"
        "GNU General Public License, version 3 or (at your option) any later version (GPL-3.0-or-later).\n"
        "They were trained on the text of Debian's fortune packages; see NOTICE.md for the packages and\n"
        "their licences.  The rest of Whittle (its source code) is licensed separately under Apache-2.0\n"
        "(see LICENSE at the top of the repository).\n\n"
        "-------------------------------------------------------------------------------------------\n\n"
    )
    body = gpl.read_text(encoding="utf-8") if gpl.exists() else "See https://www.gnu.org/licenses/gpl-3.0.txt\n"
    write_text(out / "LICENSE", header + body)
    rows = "\n".join(f"| `{p}` | {package_version(p)} | {lang} | {lic} |" for p, lang, lic in CORPUS_PACKAGES)
    write_text(out / "NOTICE.md", f"""# NOTICE: whittle-gemma4-tiny weights

**Licence of this folder's weights, tokenizer and data files: GPL-3.0-or-later** (full text in `LICENSE`).
Whittle's source code is Apache-2.0 and is not affected; this model is a separate work that ships with it.

## Training data

The model and its tokenizer were trained only on the text of these Debian 12 packages (the fortune files
under `/usr/share/games/fortunes`, without the `off/` offensive sets, symlinks and `.dat` index files).
Copyright holders and exact terms are in each package's `/usr/share/doc/PACKAGE/copyright`.

| package | version | language | licence of the texts (from its copyright file) |
|---|---|---|---|
{rows}

The weights are a statistical model of these texts, not a copy of them, but they can reproduce short
passages.  Distributing them under GPL-3.0-or-later is compatible with every licence above: the BSD and
public-domain texts allow it, and the GPL texts are all "version N or (at your option) any later version"
(N = 1, 2 or 3).  Uncertain points, stated as found: `fortunes-ru`'s `Files: *` stanza says `GPL-2` while
its licence paragraph is headed "GPL-2 or GPL-2+" and grants "any later version"; `fortunes-eo` names "the
GPL" without a version for the computerized edition of public-domain proverbs; `fortunes-es` presumes the
texts public domain.

`heldout.txt` is a sample of held-out fortunes (the same sources, same licences) kept for evaluation.
No data from Google's Gemma checkpoints or tokenizer is used: only the architecture and file formats are
followed.
""")


# ---------------------------------------------------------------------------
# Generation (no KV cache: full forward per token; contexts here are short)
# ---------------------------------------------------------------------------


@torch.no_grad()
def generate(params, cfg, prompt_ids: list[int], n: int, sample: bool = False, seed: int = 0,
             temperature: float = 0.8, top_k: int = 40, top_p: float = 0.95, rep_penalty: float = 1.1,
             stop: tuple = (EOS, TURN_END, 50), stop_on_eos: bool = True):
    """Returns (new ids, per-step margin between the best and second-best logit)."""
    g = torch.Generator().manual_seed(seed)
    ids = list(prompt_ids)
    margins = []
    for _ in range(n):
        ctx = ids[-4096:]
        logits = g4.forward(params, cfg, torch.tensor([ctx]))[0, -1].to(torch.float64)
        top2 = torch.topk(logits, 2).values
        margins.append(float(top2[0] - top2[1]))
        if not sample:
            nxt = int(torch.argmax(logits))
        else:
            lg = logits.clone()
            seen = torch.tensor(sorted(set(ids)))
            v = lg[seen]
            lg[seen] = torch.where(v > 0, v / rep_penalty, v * rep_penalty)
            lg = lg / temperature
            kth = torch.topk(lg, top_k).values[-1]
            lg[lg < kth] = float("-inf")
            probs = torch.softmax(lg, dim=-1)
            sp, si = torch.sort(probs, descending=True)
            cum = torch.cumsum(sp, dim=0)
            remove = cum - sp > top_p  # keep the smallest set whose mass reaches top_p
            sp[remove] = 0.0
            nxt = int(si[torch.multinomial(sp / sp.sum(), 1, generator=g)])
        ids.append(nxt)
        if stop_on_eos and nxt in stop:
            break
    return ids[len(prompt_ids):], margins


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


class Logger:
    def __init__(self, path: Path | None):
        self.f = open(path, "a", encoding="utf-8") if path else None

    def __call__(self, msg: str) -> None:
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        if self.f:
            self.f.write(line + "\n")
            self.f.flush()


def lr_at(step: int, frac: float, peak: float, warmup: int, final_frac: float = 0.1) -> float:
    """Linear warmup over `warmup` steps, then cosine from peak to final_frac*peak over
    the fraction `frac` of the wall-clock budget already used."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min(max(frac, 0.0), 1.0)
    return peak * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * frac)))


def train(args, cfg, docs, heldout_rows, work: Path, out: Path, log: Logger, measure: int = 0) -> dict:
    torch.manual_seed(args.seed)
    params = g4.init_params(cfg, seed=args.seed)
    for t in params.values():
        t.requires_grad_(True)
    decay = [t for n, t in params.items() if t.dim() >= 2]
    no_decay = [t for n, t in params.items() if t.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    # elapsed: wall clock of the training loop (evaluations and checkpoints included), which the
    # budget counts; step_time: time inside training steps only, for the tokens/s figure.
    state = {"step": 0, "epoch": 0, "row": 0, "elapsed": 0.0, "step_time": 0.0, "tokens": 0, "losses": [],
             "evals": []}
    ckpt = work / "checkpoint.pt"
    if args.resume and ckpt.exists() and not measure:
        saved = torch.load(ckpt)
        with torch.no_grad():
            for n, t in params.items():
                t.copy_(saved["params"][n])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        log(f"resumed from {ckpt}: step {state['step']}, {state['tokens']} tokens, {state['elapsed']:.0f} s")

    budget = args.minutes * 60.0
    rows = None
    last_ckpt = time.time()
    last_eval = time.time()
    ema = None
    t_log = time.time()
    tok_log = 0

    def epoch_rows(epoch: int) -> np.ndarray:
        order = np.random.default_rng(args.seed + 1000 * epoch).permutation(len(docs))
        return pack(docs, order)

    def save_checkpoint() -> None:
        tmp = work / "checkpoint.pt.tmp"
        torch.save({"params": {n: t.detach() for n, t in params.items()}, "opt": opt.state_dict(), "state": state}, tmp)
        os.replace(tmp, ckpt)
        export_model(out, work, {n: t.detach() for n, t in params.items()}, cfg)
        write_json(work / "train_state.json", {k: v for k, v in state.items() if k != "losses"} |
                   {"last_losses": state["losses"][-50:]})

    rows = epoch_rows(state["epoch"])
    log(f"epoch {state['epoch']}: {len(rows)} rows of {SEQ_LEN} tokens")
    t_step0 = time.time()
    elapsed0 = state["elapsed"]
    while True:
        state["elapsed"] = elapsed0 + (time.time() - t_step0)
        if measure and state["step"] >= measure:
            break
        if not measure and state["elapsed"] >= budget - 15.0:  # leave time for the last step and save
            break
        t0 = time.time()
        if state["row"] + args.batch > len(rows):
            state["epoch"] += 1
            state["row"] = 0
            rows = epoch_rows(state["epoch"])
            log(f"epoch {state['epoch']}: {len(rows)} rows")
        batch = torch.from_numpy(rows[state["row"]:state["row"] + args.batch].astype(np.int64))
        state["row"] += args.batch
        lr = lr_at(state["step"], state["elapsed"] / budget, args.lr, args.warmup)
        for grp in opt.param_groups:
            grp["lr"] = lr
        loss = lm_loss(params, cfg, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(list(params.values()), args.clip)
        opt.step()
        lv = float(loss)
        if not math.isfinite(lv):
            raise SystemExit(f"loss is {lv} at step {state['step']}")
        state["step"] += 1
        state["tokens"] += batch.numel()
        state["losses"].append(lv)
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        state["step_time"] += time.time() - t0
        tok_log += batch.numel()
        if state["step"] % args.log_every == 0 or (measure and state["step"] == measure):
            dt = time.time() - t_log
            log(f"step {state['step']:5d}  loss {lv:.4f}  ema {ema:.4f}  lr {lr:.2e}  gnorm {float(gn):.2f}  "
                f"{tok_log / dt:.0f} tok/s  tokens {state['tokens']}  train time {state['elapsed'] / 60:.1f} min")
            t_log, tok_log = time.time(), 0
        if not measure and time.time() - last_eval > args.eval_every * 60:
            with torch.no_grad():
                nll, cnt = eval_nll({n: t.detach() for n, t in params.items()}, cfg, heldout_rows[:32])
            state["evals"].append({"step": state["step"], "tokens": state["tokens"], "heldout_loss": nll / cnt})
            log(f"held-out (first 32 rows) loss {nll / cnt:.4f}  ppl {math.exp(nll / cnt):.2f}")
            last_eval = time.time()
            t_log, tok_log = time.time(), 0
        if not measure and time.time() - last_ckpt > args.checkpoint_every * 60:
            save_checkpoint()
            log(f"checkpoint: {ckpt} and {out}/model.safetensors")
            last_ckpt = time.time()
            t_log, tok_log = time.time(), 0
    wall = time.time() - t_step0
    if measure:
        return {"steps": state["step"], "tokens": state["tokens"], "seconds": state["step_time"],
                "tokens_per_s": state["tokens"] / state["step_time"], "wall": wall}
    state["elapsed"] = elapsed0 + (time.time() - t_step0)
    save_checkpoint()
    log(f"training done: {state['step']} steps, {state['tokens']} tokens, {state['elapsed'] / 60:.1f} min wall "
        f"({state['step_time'] / 60:.1f} min in training steps)")
    return state


# ---------------------------------------------------------------------------
# Golden logits, held-out evaluation, samples, README
# ---------------------------------------------------------------------------

GOLDEN_PROMPTS = [
    ("english", "The quick brown fox", "all"),
    ("german", "Ich bin ein Berliner.", "all"),
    ("russian", "Лучше поздно, чем никогда.", "all"),
]
CHAT_USER = (
    "I have been reading old fortune cookies all afternoon. Some of them were funny, some were wise, "
    "and a few made no sense at all. One said that a journey of a thousand miles begins with a single "
    "step, another said that I would meet a tall stranger, and the last one simply said: help, I am "
    "trapped in a fortune cookie factory. Which of them do you like best, and can you tell me a new "
    "fortune of your own for tomorrow morning?"
)
GREEDY_PROMPTS = ["The meaning of life is", "Once upon a time, there was a"]
SAMPLE_PROMPTS = ["The meaning of life is", "A computer scientist walks into a bar", "Love is"]


def fmt7(x: float) -> float:
    return float(f"{x:.7g}")


def heldout_sample(fortunes: list[dict], limit: int = 200_000) -> tuple[str, list[dict]]:
    held = [ft for ft in fortunes if ft["heldout"]]
    order = list(range(len(held)))
    random.Random(42).shuffle(order)
    parts, used, size = [], [], 0
    for i in order:
        piece = held[i]["text"] + "%\n"
        b = len(piece.encode("utf-8"))
        if size + b > limit:
            continue
        parts.append(piece)
        used.append(held[i])
        size += b
    return "".join(parts), used


def chunk_ids(ids: list[int]) -> list[list[int]]:
    """The held-out file's evaluation windows: ids = BOS + tokens; window k is
    BOS + tokens[255k : 255(k+1)] (the last one may be shorter)."""
    body = ids[1:]
    return [[BOS] + body[i:i + SEQ_LEN - 1] for i in range(0, len(body), SEQ_LEN - 1)]


def finalize(args, cfg, fortunes, enc: Encoder, work: Path, out: Path, log: Logger, tok_stats: dict,
             tok_verify: dict, corpus_stats: dict) -> None:
    torch.set_flush_denormal(False)
    p64 = g4.load_params(out, torch.float64)
    p32 = {n: t.to(torch.float32) for n, t in p64.items()}
    # Self-check: the stored bf16 weights equal the checkpoint rounded to bf16.
    ck = torch.load(work / "checkpoint.pt")
    worst = max(float((g4.round_to_bf16(ck["params"][n]) - p32[n]).abs().max()) for n in p32)
    assert worst == 0.0, f"stored weights differ from the checkpoint by {worst}"
    state = ck["state"]
    nparams = sum(t.numel() for t in p64.values())

    # Held-out perplexity over every held-out fortune, packed as in training (f32).
    held_docs = [ft["ids"] for ft in fortunes if ft["heldout"]]
    rows = pack(held_docs, range(len(held_docs)))
    torch.set_flush_denormal(True)
    nll, cnt = eval_nll(p32, cfg, rows)
    en_docs = [ft["ids"] for ft in fortunes if ft["heldout"] and ft["lang"] == "en"]
    en_rows = pack(en_docs, range(len(en_docs)))
    nll_en, cnt_en = eval_nll(p32, cfg, en_rows)
    torch.set_flush_denormal(False)
    log(f"held-out: {cnt} tokens, loss {nll / cnt:.4f}, ppl {math.exp(nll / cnt):.2f}; "
        f"English {cnt_en} tokens, ppl {math.exp(nll_en / cnt_en):.2f}")

    # heldout.txt and its float64 evaluation.
    text, used = heldout_sample(fortunes)
    write_text(out / "heldout.txt", text)
    ids = enc.encode(text)
    windows = chunk_ids(ids)
    win_nll = []
    with torch.no_grad():
        for w in windows:
            t = torch.tensor([w])
            lp = torch.log_softmax(g4.forward(p64, cfg, t)[0, :-1], dim=-1)
            win_nll.append(float(-lp.gather(1, t[0, 1:, None]).sum()))
    hf_tokens = len(ids) - 1
    hf_nll = sum(win_nll) / hf_tokens
    log(f"heldout.txt: {len(text.encode('utf-8'))} bytes, {len(used)} fortunes, {hf_tokens} tokens, "
        f"ppl {math.exp(hf_nll):.3f} (float64, stored weights)")

    # Golden logits in float64 from the stored bf16 weights.
    golden = {
        "model": MODEL_NAME,
        "description": "Logits of the stored bf16 weights converted to float64, forward pass in float64 "
                       "(tools/gemma4_reference.py). Logits are after the final softcap, rounded to 7 significant "
                       "digits. 'positions' lists the positions whose full logits rows are stored; 'summary' "
                       "gives for EVERY position the argmax id, the max logit and log-sum-exp of the logits.",
        "weights_dtype": "bfloat16",
        "compute_dtype": "float64",
        "sliding_window": cfg.sliding_window,
        "kv_sources": {str(l): cfg.kv_source(l) for l in range(cfg.num_hidden_layers)},
        "prompts": [],
        "greedy": [],
    }
    prompts = [(name, enc.encode(text), "all", text) for name, text, _ in GOLDEN_PROMPTS]
    chat = f"<bos><|turn>user\n{CHAT_USER.strip()}<turn|>\n<|turn>model\n"
    prompts.append(("chat", enc.encode(chat, bos=False), "last4", chat))
    with torch.no_grad():
        for name, pids, which, text in prompts:
            logits = g4.forward(p64, cfg, torch.tensor([pids]))[0]
            T = len(pids)
            pos = list(range(T)) if which == "all" else list(range(T - 4, T))
            golden["prompts"].append({
                "name": name,
                "text": text,
                "add_bos": name != "chat",
                "ids": pids,
                "positions": pos,
                "logits": [[fmt7(v) for v in logits[p].tolist()] for p in pos],
                "summary": [{"argmax": int(torch.argmax(logits[p])), "max": fmt7(float(logits[p].max())),
                             "logsumexp": fmt7(float(torch.logsumexp(logits[p], 0)))} for p in range(T)],
            })
            log(f"golden prompt {name}: {T} tokens")
        assert max(len(p[1]) for p in prompts) >= 100
        for text in GREEDY_PROMPTS:
            pids = enc.encode(text)
            new, margins = generate(p64, cfg, pids, 32, sample=False, stop_on_eos=False)
            golden["greedy"].append({"prompt": text, "prompt_ids": pids, "new_ids": new,
                                     "text": enc.decode(new), "min_top2_margin": min(margins),
                                     "top2_margins": [fmt7(m) for m in margins]})
            log(f"greedy {text!r} -> {enc.decode(new)!r} (min margin {min(margins):.3g})")
    golden["heldout"] = {
        "file": "heldout.txt",
        "procedure": "ids = tokenize(file) with BOS; window k = [BOS] + ids[1 + 255k : 1 + 255(k+1)]; each window "
                     "scored on its own from position 0; NLL summed over every predicted token (natural log)",
        "tokens_scored": hf_tokens,
        "windows": len(windows),
        "nll_per_token": hf_nll,
        "perplexity": math.exp(hf_nll),
        "first_window_nll_sums": win_nll[:4],
    }
    write_text(out / "golden_logits.json", json.dumps(golden, ensure_ascii=False, separators=(",", ":")) + "\n")
    log(f"golden_logits.json: {(out / 'golden_logits.json').stat().st_size} bytes")

    # Samples for the README (float32 from the stored weights).
    samples = []
    torch.set_flush_denormal(True)
    for text in SAMPLE_PROMPTS:
        pids = enc.encode(text)
        gnew, _ = generate(p32, cfg, pids, 48, sample=False)
        snew, _ = generate(p32, cfg, pids, 64, sample=True, seed=7)
        samples.append((text, enc.decode(gnew, skip_special=True), enc.decode(snew, skip_special=True)))
        log(f"sample {text!r}\n  greedy:  {samples[-1][1]!r}\n  sampled: {samples[-1][2]!r}")
    chat_ids = enc.encode("<bos><|turn>user\nTell me a fortune.<turn|>\n<|turn>model\n", bos=False)
    cnew, _ = generate(p32, cfg, chat_ids, 80, sample=True, seed=11)
    chat_reply = enc.decode(cnew, skip_special=True)
    log(f"chat sample: {chat_reply!r}")

    facts = {
        "parameters": nparams,
        "steps": state["step"],
        "tokens_seen": state["tokens"],
        "train_minutes": state["elapsed"] / 60,
        "tokens_per_s": state["tokens"] / max(state["step_time"], 1e-9),
        "final_train_loss": float(np.mean(state["losses"][-50:])),
        "heldout_tokens": cnt,
        "heldout_ppl": math.exp(nll / cnt),
        "heldout_en_ppl": math.exp(nll_en / cnt_en),
        "heldout_txt_ppl": math.exp(hf_nll),
        "heldout_txt_tokens": hf_tokens,
    }
    write_json(work / "facts.json", facts | {"tokenizer": tok_stats, "tokenizer_verify": tok_verify,
                                             "corpus": corpus_stats, "args": vars(args) | {"out": str(args.out), "work": str(args.work)}})
    write_readme(out, cfg, facts, tok_stats, tok_verify, corpus_stats, samples, chat_reply, golden, args)
    log(f"README written; folder size {sum(f.stat().st_size for f in out.iterdir())} bytes")


def write_readme(out, cfg, facts, tok_stats, tok_verify, corpus_stats, samples, chat_reply, golden, args) -> None:
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    sizes = "\n".join(f"| `{f}` | {(out / f).stat().st_size:,} |" for f in files if f != "README.md")
    langs = ", ".join(f"{k} {v:,}" for k, v in corpus_stats["fortunes_by_language"].items())

    def q(s: str) -> str:
        return "\n".join("> " + l for l in s.strip().split("\n"))

    sample_md = "\n\n".join(
        f"**Prompt:** `{p}`\n\n*Greedy:*\n\n{q(p + g)}\n\n*Sampled (temperature 0.8, top-k 40, top-p 0.95, "
        f"repetition penalty 1.1, seed 7):*\n\n{q(p + s)}" for p, g, s in samples[:3])
    ver = []
    if "whittle_cli_identical" in tok_verify:
        ver.append(f"`whittle-cli tokenize` gives identical ids on {tok_verify['whittle_cli_identical']:,} of "
                   f"{tok_verify['lines']:,} lines")
    if "hf_tokenizers_identical" in tok_verify:
        ver.append(f"npm `@huggingface/tokenizers` on {tok_verify['hf_tokenizers_identical']:,} of "
                   f"{tok_verify['hf_texts']:,} texts (the same lines plus whole multi-line fortunes)")
    ver.append(f"decode(encode(line)) == line on {tok_verify['round_trip']:,} of {tok_verify['lines']:,}")
    layer_rows = "\n".join(
        f"| {l} | {'sliding' if cfg.is_sliding(l) else 'full'} | {cfg.hd(l)} | "
        f"{'own' if cfg.owns_kv(l) else 'layer ' + str(cfg.kv_source(l))} | {cfg.ffn(l)} |"
        for l in range(cfg.num_hidden_layers))
    text = f"""# whittle-gemma4-tiny

A tiny Gemma 4 language model trained for Whittle: the E2B architecture with every feature it has, scaled
down to {facts['parameters'] / 1e6:.2f} M parameters ({(out / 'model.safetensors').stat().st_size / 1e6:.1f} MB of
bf16), trained from scratch in {facts['train_minutes']:.0f} minutes on one CPU core on the text of Debian's
fortune packages (12 languages).  It writes fortune-cookie-like text: grammatical-looking and often
funny, rarely meaningful.  It is the default model of the app and the reference for its tests.

It is a `Gemma4ForConditionalGeneration` checkpoint (multimodal `config.json` with `text_config`, tensors
under `model.language_model.`) with text weights only: no vision or audio tower.

## Architecture

| field | value |
|---|---|
| hidden size | {cfg.hidden_size} |
| layers | {cfg.num_hidden_layers} (sliding, sliding, sliding, full, sliding, full) |
| attention | {cfg.num_attention_heads} query heads, {cfg.num_key_value_heads} KV head (MQA), scale 1.0, q/k norms with weights, v norm without |
| head dim | {cfg.head_dim} sliding, {cfg.global_head_dim} full |
| RoPE | sliding: default, theta 10,000 over all 256 dims; full: proportional, theta 1,000,000, partial_rotary_factor 0.25 (64 of 256 pairs rotate) |
| sliding window | {cfg.sliding_window} (current token and 63 before it) |
| KV sharing | last {cfg.num_kv_shared_layers} layers (4 reads layer 2, 5 reads layer 3) |
| FFN | {cfg.intermediate_size}, {2 * cfg.intermediate_size} on the KV-shared layers (`use_double_wide_mlp`), GELU (tanh) gate |
| per-layer embeddings (PLE) | width {cfg.hidden_size_per_layer_input}, table {cfg.vocab_size_per_layer_input} x {cfg.num_hidden_layers * cfg.hidden_size_per_layer_input} |
| vocabulary | {cfg.vocab_size}, tied input/output embedding |
| final logit softcap | {cfg.final_logit_softcapping} |
| layer scalars | learned, one per layer |
| training context | {SEQ_LEN} tokens |

| layer | type | head dim | K/V | FFN |
|---|---|---|---|---|
{layer_rows}

## Files

| file | bytes |
|---|---|
{sizes}

- `golden_logits.json`: for four prompts (English, German, Russian, and a {len(golden['prompts'][-1]['ids'])}-token
  chat prompt that passes the sliding window so that the window and KV sharing matter) the token ids,
  full logits rows (all {cfg.vocab_size}; every position of the three short prompts, the last 4 of the chat
  prompt) and, for every position, argmax / max / log-sum-exp; two 32-token greedy continuations with the
  top-2 margin of every step; and the perplexity of `heldout.txt` with its exact procedure.  All computed
  in float64 from the stored bf16 weights by `tools/gemma4_reference.py`.
- `heldout.txt`: {facts['heldout_txt_tokens']:,} tokens of held-out fortunes (fortune-file format, `%` lines
  between them) never seen in training; perplexity {facts['heldout_txt_ppl']:.2f} (float64, windows of
  {SEQ_LEN}, see `golden_logits.json`).

## Tokenizer

Our own byte-fallback BPE in exactly the format of Google's Gemma 4 `tokenizer.json` (layout of
`tools/make_test_tokenizer.py`): {tok_stats['vocab_size']:,} entries; Gemma 4's special ids (0-5, 46-52, 98,
100, 101, 105, 106), newline runs from 107, "▁" runs from 138, byte tokens `<0x00>`-`<0xFF>` at 238-493,
the {tok_stats['characters']:,} most frequent characters of the corpus (covering
{100 * tok_stats['character_coverage']:.2f} % of its characters; the rest fall back to bytes), then
{tok_stats['learned_tokens']:,} learned tokens ({tok_stats['learned_merges']:,} learned plus
{tok_stats['whitespace_merges']} whitespace merges), and the media tokens at {FIRST_MEDIA_ID}-{VOCAB_SIZE - 1}.
Digits are never merged.  Checked when it was built: {'; '.join(ver)}.
Chat format: `chat_template.jinja` (Gemma 4's turn markers); generation stops at `<eos>`, `<turn|>` or
`<|tool_response>`.

## Training

| | |
|---|---|
| corpus | Debian 12 fortune packages, {corpus_stats['fortunes']:,} fortunes ({corpus_stats['bytes'] / 1e6:.1f} MB): {langs} |
| held out | {corpus_stats['heldout']:,} fortunes (1 in {HOLDOUT_MOD}, chosen by CRC-32 of file and index) |
| mix | English counted {LANG_WEIGHT['en']}x; 1 in {CHAT_MOD} training copies wrapped in the chat format with a short request ("Tell me a fortune.") as the user turn |
| sequences | {SEQ_LEN} tokens: `<bos>` + 255 tokens of shuffled fortunes, each ending in `<eos>` |
| optimizer | AdamW (beta 0.9/0.95, weight decay {args.weight_decay} on matrices), peak lr {args.lr}, {args.warmup} warmup steps, cosine to 10 % over the wall-clock budget, grad clip {args.clip}, batch {args.batch} x {SEQ_LEN} tokens, float32 |
| hardware | one CPU thread (PyTorch {torch.__version__}, OpenBLAS) |
| throughput | {facts['tokens_per_s']:,.0f} tokens/s |
| steps / tokens seen | {facts['steps']:,} / {facts['tokens_seen']:,} |
| training time | {facts['train_minutes']:.1f} min of wall clock (evaluations and checkpoints included) |
| final train loss | {facts['final_train_loss']:.3f} (mean of the last 50 steps) |
| held-out perplexity | {facts['heldout_ppl']:.2f} over {facts['heldout_tokens']:,} tokens (all languages); English only {facts['heldout_en_ppl']:.2f} |

## Samples

{sample_md}

**Chat** (`Tell me a fortune.`, sampled, seed 11):

{q(chat_reply) if chat_reply.strip() else '> (empty reply)'}

## Retraining

    sudo apt-get install python3-torch python3-numpy libopenblas0-pthread fortunes fortunes-min \\
        fortunes-bg fortunes-br fortunes-cs fortunes-de fortunes-eo fortunes-es fortunes-ga \\
        fortunes-it fortunes-pl fortunes-ru fortunes-zh
    python3 tools/train_bundled_model.py            # --minutes N to change the budget

The script trains the tokenizer, checks it against `whittle-cli tokenize` and `@huggingface/tokenizers`
when they are built, trains for the wall-clock budget (checkpointing every few minutes; `--resume`
continues), and writes this folder, golden logits and this README.  The forward pass is
`tools/gemma4_reference.py`, written from the project's Gemma 4 spec.  Results are not bit-reproducible
(the schedule follows wall-clock time).

## Licence

GPL-3.0-or-later for the weights, tokenizer and data in this folder (`LICENSE`, `NOTICE.md`), because of the
training texts; Whittle's code is Apache-2.0.
"""
    write_text(out / "README.md", text)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--minutes", type=float, default=45.0, help="training wall-clock budget")
    ap.add_argument("--measure", type=int, default=0, help="only time this many training steps")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--finalize-only", action="store_true")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--eval-every", type=float, default=10.0, help="minutes")
    ap.add_argument("--checkpoint-every", type=float, default=5.0, help="minutes")
    ap.add_argument("--verify-lines", type=int, default=5000)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormals in softmax outputs slow OpenBLAS down 50x
    work, out = args.work, args.out
    work.mkdir(parents=True, exist_ok=True)
    log = Logger(None if args.measure else work / "train.log")
    cfg = model_config()
    assert [cfg.kv_source(l) for l in range(6)] == [0, 1, 2, 3, 2, 3]

    fortunes = read_fortunes()
    by_lang = Counter(ft["lang"] for ft in fortunes)
    corpus_stats = {
        "fortunes": len(fortunes),
        "heldout": sum(ft["heldout"] for ft in fortunes),
        "bytes": sum(len(ft["text"].encode("utf-8")) for ft in fortunes),
        "fortunes_by_language": dict(by_lang.most_common()),
        "packages": dict(Counter(ft["package"] for ft in fortunes).most_common()),
    }
    log(f"corpus: {corpus_stats}")

    tok_path = work / "tokenizer.json"
    stats_path = work / "tokenizer_stats.json"
    if tok_path.exists() and stats_path.exists():
        tok = json.loads(tok_path.read_text(encoding="utf-8"))
        tstats = json.loads(stats_path.read_text(encoding="utf-8"))
        tok_stats, tok_verify = tstats["stats"], tstats["verify"]
        log(f"tokenizer: reusing {tok_path}")
    else:
        t0 = time.time()
        tok, tconfig, tok_stats = build_tokenizer(fortunes)
        write_text(tok_path, json.dumps(tok, ensure_ascii=False, indent=2) + "\n")
        write_text(work / "tokenizer_config.json", json.dumps(tconfig, ensure_ascii=False, indent=2) + "\n")
        log(f"tokenizer trained in {time.time() - t0:.0f} s: {tok_stats}")
        enc = Encoder(tok)
        tok_verify = verify_tokenizer(work, enc, fortunes, args.verify_lines, log)
        write_json(stats_path, {"stats": tok_stats, "verify": tok_verify})
    enc = Encoder(tok)

    t0 = time.time()
    encode_corpus(fortunes, enc)
    docs = training_documents(fortunes, enc)
    held_docs = [ft["ids"] for ft in fortunes if ft["heldout"]]
    heldout_rows = pack(held_docs, np.random.default_rng(5).permutation(len(held_docs)))
    ntok = sum(len(d) for d in docs)
    corpus_stats["training_tokens_per_epoch"] = ntok
    corpus_stats["heldout_tokens"] = sum(len(d) for d in held_docs)
    log(f"encoded in {time.time() - t0:.0f} s: {len(docs)} training documents, {ntok} tokens per epoch "
        f"(English x{LANG_WEIGHT['en']}), held out {corpus_stats['heldout_tokens']} tokens")

    if args.measure:
        r = train(args, cfg, docs, heldout_rows, work, out, log, measure=args.measure)
        log(f"measure: {r['steps']} steps, {r['tokens']} tokens in {r['seconds']:.1f} s: {r['tokens_per_s']:.0f} tokens/s")
        return 0
    if not args.finalize_only:
        train(args, cfg, docs, heldout_rows, work, out, log)
    finalize(args, cfg, fortunes, enc, work, out, log, tok_stats, tok_verify, corpus_stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
