"""Build a tiny random-weight Llama (byte-level tokenizer, chat template) into a directory.

Enough for vLLM to load and serve over its OpenAI-compatible API, so that tests exercise the
real protocol (structured output, finish reasons, errors) in a few seconds on a CPU; its text
is meaningless by design. Nothing is downloaded. Run with the vLLM venv's Python (it needs
torch, transformers and tokenizers):

    var/llm/vllm-venv/bin/python scripts/llm/tiny_model.py var/llm/models/tiny-llama

The transformer layers keep their random initialisation; the embeddings and the output head
are shaped so that greedy decoding ends: a random model left alone emits endless whitespace or
one repeated letter inside grammar-valid JSON (until max_tokens). Dimension 0 of every
embedding is a constant and column 0 of the head scores each token by its class (whitespace
and non-ASCII down, JSON closers up); the other dimensions hold random token vectors, and the
head maps each token of a fixed, seeded shuffle of the letters to the next one, the last to
'"'. A string therefore reads as random letters and closes by itself, and each array closes
after one item: about 130 tokens of schema-valid nonsense for the rationale schema.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<s>", "</s>")
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
HIDDEN = 128
SEED = 1234
#: How strongly the head prefers the successor of the last token (dot product scale).
CHAIN_GAIN = 0.1


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """One token per byte (GPT-2 byte-to-unicode alphabet), no merges, three specials."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    for ch in sorted(alphabet):
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def token_bias(tokenizer: PreTrainedTokenizerFast) -> torch.Tensor:
    """A score per token id for column 0 of the head: whitespace and non-ASCII down, JSON
    closers up (so an array or object ends after its first item)."""
    bias = torch.zeros(len(tokenizer))
    for tid in range(len(tokenizer)):
        text = tokenizer.decode([tid])
        if tid == tokenizer.eos_token_id or text in ("]", "}"):
            bias[tid] = 6.0
        elif len(text) != 1 or not text.isascii() or text.isspace() or not text.isprintable():
            bias[tid] = -4.0
        elif text.isalpha():
            bias[tid] = 1.0
    return bias


def letter_chain(tokenizer: PreTrainedTokenizerFast, rng: torch.Generator) -> list[int]:
    """Token ids of the letters (and one space) in a seeded random order, then '"'."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    letters += [c.upper() for c in letters]
    order = [letters[i] for i in torch.randperm(len(letters), generator=rng).tolist()]
    order.insert(len(order) // 2, " ")
    return [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(c))[0] for c in [*order, '"']]


def build(out: Path) -> None:
    torch.manual_seed(SEED)
    rng = torch.Generator().manual_seed(SEED)
    tokenizer = byte_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=256,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=8192, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, torch_dtype="float32",
    )
    model = LlamaForCausalLM(config).eval()
    vectors = torch.randn(len(tokenizer), HIDDEN, generator=rng)
    vectors[:, 0] = 1.0
    chain = letter_chain(tokenizer, rng)
    head = torch.zeros(len(tokenizer), HIDDEN)
    for prev, nxt in zip([chain[-1], *chain[:-1]], chain, strict=True):
        head[nxt] = CHAIN_GAIN * vectors[prev]
    head[:, 0] = token_bias(tokenizer)
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(vectors)
        model.lm_head.weight.copy_(head)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "hypermarker-tiny-model.json").write_text(
        json.dumps({"seed": SEED, "hidden_size": HIDDEN, "vocab_size": len(tokenizer)}) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="directory to write the model into")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
