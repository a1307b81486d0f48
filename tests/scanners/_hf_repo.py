# ruff: noqa: E501 - configs and code keep the shape real files have
"""A small Hugging Face-style model repository written for these tests.

The field layout follows what transformers, tokenizers and PEFT write (config.json,
generation_config.json, tokenizer_config.json with added_tokens_decoder and a chat template,
special_tokens_map.json, adapter_config.json, tokenizer.json, vocab.json, merges.txt); the
model ("tinyllm") and every value are made up. modeling_tinyllm.py is an honest remote-code
model of the usual shape: nn.Module subclasses, transformers imports, math, optional
flash-attention import, logging, torch.utils.checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.scanners._gguf_templates import HONEST_TEMPLATES

CONFIG = {
    "_name_or_path": "acme/tinyllm-1b",
    "architectures": ["TinyLlmForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 5632,
    "max_position_embeddings": 4096,
    "model_type": "tinyllm",
    "num_attention_heads": 32,
    "num_hidden_layers": 22,
    "num_key_value_heads": 4,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.44.2",
    "use_cache": True,
    "vocab_size": 32000,
}

AUTO_MAP = {
    "AutoConfig": "configuration_tinyllm.TinyLlmConfig",
    "AutoModel": "modeling_tinyllm.TinyLlmModel",
    "AutoModelForCausalLM": "modeling_tinyllm.TinyLlmForCausalLM",
}

GENERATION_CONFIG = {
    "_from_model_config": True,
    "bos_token_id": 1,
    "do_sample": True,
    "eos_token_id": [2, 32001],
    "max_length": 4096,
    "temperature": 0.6,
    "top_p": 0.9,
    "transformers_version": "4.44.2",
}


def _added_token(content: str) -> dict:
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
            "special": True}


TOKENIZER_CONFIG = {
    "add_bos_token": True,
    "add_eos_token": False,
    "add_prefix_space": None,
    "added_tokens_decoder": {str(i): _added_token(t) for i, t in
                             enumerate(["<unk>", "<s>", "</s>"] + [f"<|reserved_{k}|>" for k in range(200)])},
    "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
    "bos_token": "<s>",
    "chat_template": HONEST_TEMPLATES["chatml"],
    "clean_up_tokenization_spaces": False,
    "eos_token": "</s>",
    "legacy": False,
    "model_max_length": 4096,
    "pad_token": "</s>",
    "padding_side": "right",
    "sp_model_kwargs": {},
    "tokenizer_class": "LlamaTokenizer",
    "unk_token": "<unk>",
    "use_default_system_prompt": False,
}

SPECIAL_TOKENS_MAP = {
    "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
    "bos_token": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
    "eos_token": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
    "pad_token": "</s>",
    "unk_token": {"content": "<unk>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
}

ADAPTER_CONFIG = {
    "alpha_pattern": {},
    "auto_mapping": None,
    "base_model_name_or_path": "acme/tinyllm-1b",
    "bias": "none",
    "fan_in_fan_out": False,
    "inference_mode": True,
    "init_lora_weights": True,
    "layers_pattern": None,
    "layers_to_transform": None,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "modules_to_save": None,
    "peft_type": "LORA",
    "r": 8,
    "rank_pattern": {},
    "revision": None,
    "target_modules": ["q_proj", "v_proj"],
    "task_type": "CAUSAL_LM",
    "use_dora": False,
    "use_rslora": False,
}

PREPROCESSOR_CONFIG = {
    "crop_size": {"height": 224, "width": 224},
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_processor_type": "ViTImageProcessor",
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "size": {"shortest_edge": 256},
}

# tokens that look like code or URLs are ordinary vocabulary entries
_ODD_TOKENS = ["import", "Ġimport", "eval(", "Ġeval", "os.system", "__import__", "exec(", "subprocess", "http://",
               "https://example.com/download", "www.", "curl", "Ġwget", "rm -rf", "/bin/sh", "{{", "}}", "__class__",
               "<script>", "hf_", "AKIA", "sk-"]


def vocab(size: int = 5000) -> dict[str, int]:
    words = _ODD_TOKENS + [f"https://site{i}.example.org/p?q={i}" for i in range(200)] + \
        [f"Ġtok{i}" for i in range(size)]
    return {w: i for i, w in enumerate(words)}


def tokenizer_json(size: int = 5000) -> dict:
    merges = [f"Ġ t{i}" for i in range(size)] + ["h ttp", "ht tps", "ev al(", "im port"]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": 0, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab(size), "merges": merges},
    }


CONFIGURATION_PY = '''# coding=utf-8
"""TinyLlm model configuration"""

from transformers.configuration_utils import PretrainedConfig
from transformers.utils import logging

logger = logging.get_logger(__name__)


class TinyLlmConfig(PretrainedConfig):
    model_type = "tinyllm"
    keys_to_ignore_at_inference = ["past_key_values"]

    def __init__(
        self,
        vocab_size=32000,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=22,
        num_attention_heads=32,
        num_key_value_heads=None,
        hidden_act="silu",
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        if num_key_value_heads is None:
            num_key_value_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.rms_norm_eps = rms_norm_eps
        self.rope_theta = rope_theta
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
'''

MODELING_PY = '''# coding=utf-8
# Copyright 2024 The TinyLlm authors. Licensed under the Apache License, Version 2.0.
"""PyTorch TinyLlm model."""

import math
import os
import warnings
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn
from torch.nn import CrossEntropyLoss

from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import is_flash_attn_2_available, logging

from .configuration_tinyllm import TinyLlmConfig

if is_flash_attn_2_available():
    from flash_attn import flash_attn_func, flash_attn_varlen_func  # noqa: F401

logger = logging.get_logger(__name__)
_CONFIG_FOR_DOC = "TinyLlmConfig"
_DEBUG = os.environ.get("TINYLLM_DEBUG", "0") == "1"


class TinyLlmRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class TinyLlmRotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000, device=None):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.max_seq_len_cached = max_position_embeddings

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded @ position_ids_expanded).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype=x.dtype), emb.sin().to(dtype=x.dtype)


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


class TinyLlmMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class TinyLlmAttention(nn.Module):
    def __init__(self, config: TinyLlmConfig, layer_idx: Optional[int] = None):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        if layer_idx is None:
            warnings.warn(f"Instantiating {self.__class__.__name__} without passing a `layer_idx` is not recommended")
        self.hidden_size = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.hidden_size // self.num_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.q_proj = nn.Linear(self.hidden_size, self.num_heads * self.head_dim, bias=config.attention_bias)
        self.k_proj = nn.Linear(self.hidden_size, self.num_key_value_heads * self.head_dim, bias=config.attention_bias)
        self.v_proj = nn.Linear(self.hidden_size, self.num_key_value_heads * self.head_dim, bias=config.attention_bias)
        self.o_proj = nn.Linear(self.hidden_size, self.hidden_size, bias=config.attention_bias)
        self.rotary_emb = TinyLlmRotaryEmbedding(self.head_dim, config.max_position_embeddings, config.rope_theta)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.LongTensor] = None,
        past_key_value: Optional[Cache] = None,
        output_attentions: bool = False,
        use_cache: bool = False,
        **kwargs,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[Tuple[torch.Tensor]]]:
        bsz, q_len, _ = hidden_states.size()
        query_states = self.q_proj(hidden_states).view(bsz, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        cos, sin = self.rotary_emb(value_states, position_ids)
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
        if past_key_value is not None:
            key_states, value_states = past_key_value.update(key_states, value_states, self.layer_idx, {"sin": sin, "cos": cos})
        key_states = key_states.repeat_interleave(self.num_key_value_groups, dim=1)
        value_states = value_states.repeat_interleave(self.num_key_value_groups, dim=1)
        attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) / math.sqrt(self.head_dim)
        if attention_mask is not None:
            attn_weights = attn_weights + attention_mask[:, :, :, : key_states.shape[-2]]
        attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
        attn_output = torch.matmul(attn_weights, value_states)
        attn_output = attn_output.transpose(1, 2).contiguous().reshape(bsz, q_len, self.hidden_size)
        attn_output = self.o_proj(attn_output)
        if _DEBUG:
            logger.info("attention %s: %s", self.layer_idx, attn_output.shape)
        return attn_output, (attn_weights if output_attentions else None), past_key_value


class TinyLlmDecoderLayer(nn.Module):
    def __init__(self, config: TinyLlmConfig, layer_idx: int):
        super().__init__()
        self.self_attn = TinyLlmAttention(config=config, layer_idx=layer_idx)
        self.mlp = TinyLlmMLP(config)
        self.input_layernorm = TinyLlmRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = TinyLlmRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, hidden_states, attention_mask=None, position_ids=None, past_key_value=None, **kwargs):
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, _, present = self.self_attn(hidden_states, attention_mask, position_ids, past_key_value)
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.mlp(self.post_attention_layernorm(hidden_states))
        return residual + hidden_states, present


class TinyLlmPreTrainedModel(PreTrainedModel):
    config_class = TinyLlmConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["TinyLlmDecoderLayer"]
    _supports_flash_attn_2 = True

    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(mean=0.0, std=std)
            if module.bias is not None:
                module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(mean=0.0, std=std)


class TinyLlmModel(TinyLlmPreTrainedModel):
    def __init__(self, config: TinyLlmConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([TinyLlmDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = TinyLlmRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, use_cache=None,
                return_dict=None, **kwargs) -> Union[Tuple, BaseModelOutputWithPast]:
        hidden_states = self.embed_tokens(input_ids)
        if position_ids is None:
            position_ids = torch.arange(hidden_states.shape[1], device=hidden_states.device).unsqueeze(0)
        if use_cache and not isinstance(past_key_values, Cache):
            past_key_values = DynamicCache.from_legacy_cache(past_key_values)
        for decoder_layer in self.layers:
            if self.gradient_checkpointing and self.training:
                hidden_states, _ = torch.utils.checkpoint.checkpoint(decoder_layer.__call__, hidden_states,
                                                                     attention_mask, position_ids, None,
                                                                     use_reentrant=False)
            else:
                hidden_states, _ = decoder_layer(hidden_states, attention_mask, position_ids, past_key_values)
        hidden_states = self.norm(hidden_states)
        return BaseModelOutputWithPast(last_hidden_state=hidden_states, past_key_values=past_key_values)


class TinyLlmForCausalLM(TinyLlmPreTrainedModel):
    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.model = TinyLlmModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def forward(self, input_ids=None, attention_mask=None, labels=None, **kwargs) -> Union[Tuple, CausalLMOutputWithPast]:
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        logits = self.lm_head(outputs.last_hidden_state).float()
        loss = None
        if labels is not None:
            shift_logits = logits[..., :-1, :].contiguous().view(-1, self.config.vocab_size)
            shift_labels = labels[..., 1:].contiguous().view(-1).to(shift_logits.device)
            loss = CrossEntropyLoss()(shift_logits, shift_labels)
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=outputs.past_key_values)

    @torch.no_grad()
    def score(self, texts: List[str], tokenizer) -> List[float]:
        self.eval()
        scores = []
        for text in texts:
            ids = tokenizer(text, return_tensors="pt").input_ids
            out = self(input_ids=ids, labels=ids)
            scores.append(math.exp(out.loss.item()))
        return scores
'''

# a remote tokenizer in the tiktoken style: base64-decoded ranks, files written on save_pretrained
TOKENIZATION_PY = '''"""Tokenization classes for TinyLlm (tiktoken-style BPE ranks)."""

import base64
import json
import os
import re
import unicodedata
from typing import Dict, List, Optional

from transformers import PreTrainedTokenizer

VOCAB_FILES_NAMES = {"vocab_file": "tinyllm.tiktoken"}
PAT_STR = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s+"""
SPECIAL_PATTERN = re.compile(r"<\\|[a-z_]+\\|>")


def _load_tiktoken_bpe(tiktoken_bpe_file: str) -> Dict[bytes, int]:
    with open(tiktoken_bpe_file, "rb") as f:
        contents = f.read()
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in contents.splitlines() if line)}


class TinyLlmTokenizer(PreTrainedTokenizer):
    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file, errors="replace", **kwargs):
        self.mergeable_ranks = _load_tiktoken_bpe(vocab_file)
        self.decoder = {v: k for k, v in self.mergeable_ranks.items()}
        self.errors = errors
        super().__init__(**kwargs)

    @property
    def vocab_size(self):
        return len(self.mergeable_ranks)

    def get_vocab(self) -> Dict[bytes, int]:
        return dict(self.mergeable_ranks)

    def _tokenize(self, text, **kwargs):
        text = unicodedata.normalize("NFC", text)
        return [t for t in re.findall(r"\\S+|\\s+", text)]

    def _convert_token_to_id(self, token):
        return self.mergeable_ranks.get(token.encode("utf-8"), 0)

    def _convert_id_to_token(self, index):
        return self.decoder.get(index, b"").decode("utf-8", errors=self.errors)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> List[str]:
        file_path = os.path.join(save_directory, (filename_prefix or "") + "tinyllm.tiktoken")
        with open(file_path, "w", encoding="utf8") as w:
            for k, v in self.mergeable_ranks.items():
                w.write(base64.b64encode(k).decode("utf8") + " " + str(v) + "\\n")
        with open(os.path.join(save_directory, "tokenizer_meta.json"), "w") as meta:
            json.dump({"size": self.vocab_size}, meta)
        return [file_path]
'''


def write_repo(root: Path, *, auto_map: bool = False, with_code: bool = True) -> Path:
    """Write the honest repository into `root`; returns root."""
    root.mkdir(parents=True, exist_ok=True)
    config = dict(CONFIG, auto_map=AUTO_MAP) if auto_map else CONFIG
    files = {
        "config.json": config, "generation_config.json": GENERATION_CONFIG,
        "tokenizer_config.json": TOKENIZER_CONFIG, "special_tokens_map.json": SPECIAL_TOKENS_MAP,
        "adapter_config.json": ADAPTER_CONFIG, "preprocessor_config.json": PREPROCESSOR_CONFIG,
        "tokenizer.json": tokenizer_json(), "vocab.json": vocab(),
    }
    for name, value in files.items():
        (root / name).write_text(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    (root / "merges.txt").write_text("#version: 0.2\n" + "\n".join(tokenizer_json()["model"]["merges"]) + "\n")
    (root / "README.md").write_text("---\nlicense: apache-2.0\n---\n# tinyllm\n\n```python\nimport os\n"
                                    "os.system('pip install tinyllm')\n```\nSee https://example.com.\n")
    if with_code:
        (root / "configuration_tinyllm.py").write_text(CONFIGURATION_PY)
        (root / "modeling_tinyllm.py").write_text(MODELING_PY)
        (root / "tokenization_tinyllm.py").write_text(TOKENIZATION_PY)
    return root
