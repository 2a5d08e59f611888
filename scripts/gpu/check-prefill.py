"""Compares two `vicuna-batch generate --json --logits` outputs of the same requests (batched vs one slot): per request,
greedy ids equal? and max |delta logit| over the steps where both still agree. Prints one line per request and a total."""
import json
import sys


def load(path):
    return {r["id"]: r for r in map(json.loads, open(path))}


a, b = load(sys.argv[1]), load(sys.argv[2])
worst, agree = 0.0, 0
for key in sorted(a):
    x, y = a[key], b[key]
    same = x["ids"] == y["ids"]
    agree += same
    n = next((i for i, (p, q) in enumerate(zip(x["ids"], y["ids"])) if p != q), min(len(x["ids"]), len(y["ids"])))
    delta = max((abs(p - q) for s in range(min(n + 1, len(x["logits"]), len(y["logits"])))
                 for p, q in zip(x["logits"][s], y["logits"][s])), default=0.0)
    worst = max(worst, delta)
    print(f"{key}: ids {'agree' if same else 'differ at ' + str(n)}, max |delta logit| {delta:.3g}")
print(f"prefill check: {agree}/{len(a)} agree, max |delta logit| {worst:.3g}")
