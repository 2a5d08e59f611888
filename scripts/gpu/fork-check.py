"""n choices sharing one prefill (a KV fork) against the same choices run as requests of their own.

  fork-check.py make PROMPTS.jsonl FORKED.jsonl SEPARATE.jsonl
      FORKED: per prompt a greedy request of n=4 and a seeded one (temperature 0.8, seed s) of n=4;
      SEPARATE: the same 8 choices as requests of one: greedy, and seeds s, s+1, s+2, s+3 (the engine's choice seeds).
  fork-check.py compare FORKED_OUT.jsonl SEPARATE_OUT.jsonl --label NAME
      generate --json outputs of the two: every choice's ids against its separate request's; prints one summary line last.
"""
import argparse
import json

N = 4


def make(prompts, forked, separate):
    with open(prompts) as f, open(forked, "w") as fo, open(separate, "w") as so:
        for i, line in enumerate(l for l in f if l.strip()):
            p = json.loads(line)
            base = {"prompt_ids": p["prompt_ids"], "max_tokens": p.get("max_tokens", 12)}
            seed = 100 + 10 * i
            fo.write(json.dumps({"id": f"g{i}", **base, "n": N}) + "\n")
            fo.write(json.dumps({"id": f"s{i}", **base, "n": N, "temperature": 0.8, "seed": seed}) + "\n")
            for c in range(N):
                so.write(json.dumps({"id": f"g{i}#{c}", **base}) + "\n")
                so.write(json.dumps({"id": f"s{i}#{c}", **base, "temperature": 0.8, "seed": seed + c}) + "\n")


def read(path, forked):
    out = {}
    for line in open(path):
        if not line.strip():
            continue
        d = json.loads(line)
        key = f"{d['id']}#{d.get('choice', 0)}" if forked else d["id"]
        out[key] = d
    return out


def compare(forked_path, separate_path, label):
    forked, separate = read(forked_path, True), read(separate_path, False)
    equal = {"g": 0, "s": 0}
    total = {"g": 0, "s": 0}
    for key, sep in sorted(separate.items()):
        kind = key[0]
        total[kind] += 1
        got = forked.get(key)
        if got is None:
            print(f"{key}: missing from the forked run")
            continue
        if got.get("error") or sep.get("error"):
            print(f"{key}: error forked={got.get('error')} separate={sep.get('error')}")
            continue
        if got["ids"] == sep["ids"]:
            equal[kind] += 1
        else:
            at = next((i for i, (a, b) in enumerate(zip(got["ids"], sep["ids"])) if a != b), min(len(got["ids"]), len(sep["ids"])))
            print(f"{key}: differs from token {at}: forked {got['ids']} separate {sep['ids']}")
    groups = {}
    for key, d in forked.items():
        if key.startswith("s"):
            groups.setdefault(key.split("#")[0], set()).add(tuple(d["ids"]))
    distinct = sum(len(g) for g in groups.values())
    print(f"{label}: greedy {equal['g']}/{total['g']} choices equal their separate request, "
          f"sampled {equal['s']}/{total['s']} ({distinct} distinct outputs among {sum(1 for k in forked if k.startswith('s'))} sampled choices)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["make", "compare"])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--label", default="fork check")
    args = parser.parse_args()
    if args.mode == "make":
        make(*args.paths)
    else:
        compare(*args.paths, args.label)
