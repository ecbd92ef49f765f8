"""Peer measurement: Hugging Face transformers `generate` on the same checkpoint and workload as
`vllm bench throughput` (random prompts of --input-len tokens, exactly --output-len new tokens,
EOS ignored). Prints and optionally writes JSON with output tok/s and load time."""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--num-prompts", type=int, default=64)
    p.add_argument("--input-len", type=int, default=128)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=0, help="0: all prompts in one batch")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--output-json")
    a = p.parse_args()
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype)).to(a.device)
    model.eval()
    load_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(0)
    vocab = min(model.config.vocab_size, 600)
    prompts = torch.randint(3, vocab, (a.num_prompts, a.input_len), generator=gen)
    bs = a.batch_size or a.num_prompts
    start = time.perf_counter()
    produced = 0
    with torch.inference_mode():
        for i in range(0, a.num_prompts, bs):
            ids = prompts[i : i + bs].to(a.device)
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), do_sample=False,
                max_new_tokens=a.output_len, min_new_tokens=a.output_len, pad_token_id=0,
            )
            produced += (out.shape[1] - ids.shape[1]) * ids.shape[0]
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    result = {
        "peer": f"transformers {__import__('transformers').__version__}",
        "model": a.model, "dtype": a.dtype, "device": a.device, "batch_size": bs,
        "num_prompts": a.num_prompts, "input_len": a.input_len, "output_len": a.output_len,
        "elapsed_s": elapsed, "output_tok_s": produced / elapsed, "load_s": load_s,
    }
    print(json.dumps(result))
    if a.output_json:
        with open(a.output_json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
