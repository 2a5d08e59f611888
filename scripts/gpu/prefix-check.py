"""Requests sharing a long prefix, for the prefix-check step of bench-h100.sh (--prefix-cache on against off).

  prefix-check.py IDS.jsonl TEXT.jsonl
      IDS: `generate --requests` lines: 12 prompts of one 600-token prefix and 5 to 38 tokens of their own, the same
      prompt again (every whole block of it cached), and the prefix's first 512 tokens alone (a prompt of whole blocks:
      its last block is computed again for its logits); 12 greedy tokens each. Token ids from a fixed seed.
      TEXT: `bench --workload` lines: 16 text prompts of the first 3,000 characters of model-export/tiny-corpus.txt and
      a question of their own, 16 tokens each.
"""
import json
import random
import sys


def make(ids_path, text_path):
    rng = random.Random(28)
    prefix = [1] + [rng.randrange(3, 32000) for _ in range(599)]
    with open(ids_path, "w") as f:
        prompts = [prefix + [rng.randrange(3, 32000) for _ in range(5 + 3 * i)] for i in range(12)]
        prompts += [prompts[3], prefix[:512]]
        for i, prompt in enumerate(prompts):
            f.write(json.dumps({"id": f"p{i}", "prompt_ids": prompt, "max_tokens": 12}) + "\n")
    text = open("model-export/tiny-corpus.txt").read()[:3000]
    with open(text_path, "w") as f:
        for i in range(16):
            f.write(json.dumps({"custom_id": f"q{i}", "prompt": f"{text}\nQuestion {i}: what does line {i * 7} say?", "max_tokens": 16}) + "\n")


if __name__ == "__main__":
    make(*sys.argv[1:3])
