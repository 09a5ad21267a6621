"""Local generation with SmolLM2-135M-Instruct on the CPU, each figure beside a baseline measured in the same run.

1. Load: the dense copy cached in the state folder vs. converting the wheel's GGUF file again
   (what every start would cost without the cache).
2. Generation: ``LocalModel.generate`` (the path ``local serve`` and ``local ask`` take) vs. transformers'
   plain ``pipeline("text-generation")`` on the same model, prompt and greedy settings: decode tokens/s
   and first-token latency (for the pipeline: the time of a one-token generation).

Run: .venv/bin/python benchmarks/bench_inference_local.py [--threads N]   (about a minute on 2 cores;
``--threads 1`` on a busy machine, where several OpenMP threads spin against each other)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MESSAGES = [{"role": "system", "content": "Answer in two sentences."},
            {"role": "user", "content": "Why do large language models need a KV cache when generating text?"}]
NEW_TOKENS = 32
REPEAT = 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig, pipeline

    from lambdas.runtime.inference.local_model import gguf_path, load_local_model, prepare_cache
    from llmops.cli.local_serve import model_cache_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    cache = prepare_cache(model_cache_dir())  # the one-time conversion is not part of either figure
    started = time.perf_counter()
    model = load_local_model(cache)
    cached_load = time.perf_counter() - started
    source = gguf_path()
    started = time.perf_counter()
    AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name,
                                         quantization_config=GgufConfig(dequantize=True))
    gguf_load = time.perf_counter() - started

    model.generate(MESSAGES, max_new_tokens=4)  # warm-up: first-call allocations
    runs = [model.generate(MESSAGES, max_new_tokens=NEW_TOKENS) for _ in range(REPEAT)]
    ours_rate = statistics.median(r.tokens_per_s for r in runs)
    ours_first = statistics.median(r.first_token_latency_s for r in runs)

    generator = pipeline("text-generation", model=model.model, tokenizer=model.tokenizer)
    prompt = model.render(MESSAGES)
    options = {"do_sample": False, "return_full_text": False, "temperature": None, "top_p": None, "top_k": None}
    generator(prompt, max_new_tokens=4, **options)
    firsts, rates = [], []
    for _ in range(REPEAT):
        started = time.perf_counter()
        generator(prompt, max_new_tokens=1, **options)
        first = time.perf_counter() - started
        started = time.perf_counter()
        text = generator(prompt, max_new_tokens=NEW_TOKENS, **options)[0]["generated_text"]
        total = time.perf_counter() - started
        produced = len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
        firsts.append(first)
        rates.append((produced - 1) / max(total - first, 1e-9))
    base_rate, base_first = statistics.median(rates), statistics.median(firsts)

    print(f"SmolLM2-135M-Instruct, CPU, {torch.get_num_threads()} thread(s), prompt {runs[0].prompt_tokens} tokens, "
          f"{NEW_TOKENS} new tokens greedy, median of {REPEAT}")
    print(f"{'':34}{'local_model':>14}{'baseline':>14}")
    print(f"{'load (cached dense / GGUF)':34}{cached_load:>13.2f}s{gguf_load:>13.2f}s")
    print(f"{'decode tokens/s (/ pipeline)':34}{ours_rate:>14.1f}{base_rate:>14.1f}")
    print(f"{'first-token latency (/ pipeline)':34}{ours_first * 1000:>12.0f}ms{base_first * 1000:>12.0f}ms")
    print(f"answer: {runs[0].text[:100]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
