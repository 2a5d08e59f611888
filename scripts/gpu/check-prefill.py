"""Compares two `vicuna-batch generate --json --logits` outputs of the same requests (batched vs one slot, or variant A vs
variant B): per request, greedy ids equal? and max |delta logit| over the steps where both still agree. Prints one line
per request and a total.

  check-prefill.py A.jsonl B.jsonl [--label NAME] [--tolerance T]

With --tolerance, exits 1 unless every request's ids agree and the max |delta logit| is at most T."""
import json
import sys


def load(path):
    # a run without --logits compares ids only
    return {r["id"]: {"logits": [], **r} for r in map(json.loads, open(path))}


args = sys.argv[1:]
label, tolerance = "prefill check", None
if "--label" in args:
    i = args.index("--label"); label = args[i + 1]; del args[i:i + 2]
if "--tolerance" in args:
    i = args.index("--tolerance"); tolerance = float(args[i + 1]); del args[i:i + 2]
a, b = load(args[0]), load(args[1])
if sorted(a) != sorted(b):
    print(f"{label}: FAIL, the outputs hold different requests: {sorted(a)} vs {sorted(b)}")
    sys.exit(1)
worst, agree = 0.0, 0
for key in sorted(a):
    x, y = a[key], b[key]
    same = x["ids"] == y["ids"]
    agree += same
    n = next((i for i, (p, q) in enumerate(zip(x["ids"], y["ids"])) if p != q), min(len(x["ids"]), len(y["ids"])))
    delta = max((abs(p - q) for s in range(min(n + 1, len(x["logits"]), len(y["logits"])))
                 for p, q in zip(x["logits"][s], y["logits"][s])), default=0.0)
    worst = max(worst, delta)
    why = ""
    if not same and n < min(len(x["ids"]), len(y["ids"]), len(x["logits"]), len(y["logits"])):
        # the first step where they part: how far apart the two picks were in each run's own logits (a margin
        # below the logit error there is a near tie that float16 rounding can flip, not a wrong kernel)
        p, q = x["ids"][n], y["ids"][n]
        step_delta = max(abs(u - v) for u, v in zip(x["logits"][n], y["logits"][n]))
        why = (f" (token {p} vs {q}: margin {x['logits'][n][p] - x['logits'][n][q]:.3g} in the first run,"
               f" {y['logits'][n][q] - y['logits'][n][p]:.3g} in the second; |delta logit| at that step {step_delta:.3g})")
    print(f"{key}: ids {'agree' if same else 'differ at ' + str(n)}, max |delta logit| {delta:.3g}{why}")
verdict = "" if tolerance is None else (" PASS" if agree == len(a) and worst <= tolerance else " FAIL") + f" (tolerance {tolerance:g})"
print(f"{label}: {agree}/{len(a)} agree, max |delta logit| {worst:.3g}{verdict}")
if tolerance is not None and not (agree == len(a) and worst <= tolerance):
    sys.exit(1)
