"""Compares the log probabilities of two `vicuna-batch generate --json --top-logprobs N` outputs of the same requests:
A taken on the host from copied logits rows (`--sampling host`), B by logprobs.onnx on the device (`--sampling graph`).
Per request, over the steps where both chose the same tokens so far: max |delta| of the chosen token's log probability
and of the top log probabilities, and the steps whose top ids differ in order — split into those that differ only
within runs of equal log probabilities (a tie the two sides may order apart; both should take the lower id first) and
the others. Prints one line per request and a total.

  check-logprobs.py A.jsonl B.jsonl [--label NAME] [--tolerance T]

With --tolerance, exits 1 unless every request's ids agree, every max |delta| is at most T and no top list differs
beyond ties."""
import json
import sys


def load(path):
    return {r["id"]: r for r in map(json.loads, open(path))}


def untied(top):
    # ids grouped by equal log probability, each group as a set: two lists equal up to the order within ties
    groups, last = [], None
    for token, logprob in top:
        if logprob != last:
            groups.append(set())
            last = logprob
        groups[-1].add(token)
    return groups


args = sys.argv[1:]
label, tolerance = "logprobs check", None
if "--label" in args:
    i = args.index("--label"); label = args[i + 1]; del args[i:i + 2]
if "--tolerance" in args:
    i = args.index("--tolerance"); tolerance = float(args[i + 1]); del args[i:i + 2]
a, b = load(args[0]), load(args[1])
if sorted(a) != sorted(b):
    print(f"{label}: FAIL, the outputs hold different requests: {sorted(a)} vs {sorted(b)}")
    sys.exit(1)
worst, agree, steps, tie_orders, other_orders = 0.0, 0, 0, 0, 0
for key in sorted(a):
    x, y = a[key], b[key]
    same = x["ids"] == y["ids"]
    agree += same
    n = next((i for i, (p, q) in enumerate(zip(x["ids"], y["ids"])) if p != q), min(len(x["ids"]), len(y["ids"])))
    delta, ties, others = 0.0, 0, 0
    for s in range(min(n + 1, len(x["logprobs"]), len(y["logprobs"]))):  # step n still shares its logits
        p, q = x["logprobs"][s], y["logprobs"][s]
        if s < n:
            delta = max(delta, abs(p["logprob"] - q["logprob"]))
        delta = max([delta] + [abs(u[1] - v[1]) for u, v in zip(p["top"], q["top"])])
        if [u[0] for u in p["top"]] != [v[0] for v in q["top"]]:
            if untied(p["top"]) == untied(q["top"]) or untied(p["top"])[:-1] == untied(q["top"])[:-1]:
                ties += 1  # the last group may be cut at the list's end: its members can differ
            else:
                others += 1
        steps += 1
    worst = max(worst, delta)
    tie_orders += ties
    other_orders += others
    print(f"{key}: ids {'equal' if same else f'part at step {n}'}, max |delta logprob| {delta:.3g}, "
          f"top ids reordered within ties at {ties} steps, otherwise at {others}")
ok = agree == len(a) and other_orders == 0 and (tolerance is None or worst <= tolerance)
print(f"{label}: {'PASS' if ok or tolerance is None else 'FAIL'}, {agree}/{len(a)} requests with equal ids, "
      f"max |delta logprob| {worst:.3g} over {steps} steps, top ids reordered within ties at {tie_orders}, otherwise at {other_orders}")
sys.exit(0 if ok or tolerance is None else 1)
