#!/usr/bin/env python3
"""Trains the weights of models/tiny on model-export/tiny-corpus.txt (PyTorch on the CPU, seeded) and writes them as a
Hugging Face LlamaForCausalLM folder (config.json + model.safetensors), which export.py --from-hf turns into an ordinary
package. make_tiny.sh runs it; see models/tiny/README.md for the shape, the loss curve and the training time.

Two kinds of training sequence, half each:
- corpus: BOS + a paragraph of the corpus from one of its sentences on, then EOS (a completion prompt continues the
  corpus and stops at the end of a paragraph);
- chat: the Vicuna v1.1 template exactly as the engine encodes it (VicunaChatTemplate.EncodePrompt): BOS, the system
  prompt, " USER: " + question + " ASSISTANT:", then the answer and EOS; one turn in ten has an earlier turn before it.
  Questions are made from the corpus's prose itself (a sentence's subject, a section's heading); the answer is that
  sentence and the next. The loss counts only the answer and its EOS.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_file import write_safetensors  # noqa: E402

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the user's questions.")
SHORT_SYSTEM = "Answer in one short sentence."
SUBJECT = re.compile(r"^(A|An|The) ([a-z][a-z-]+)\b")


# ---------------------------------------------------------------------------------------------------------------
# data

def paragraphs(corpus: str) -> list[tuple[str, str]]:
    """(heading, paragraph) for every block between blank lines; headings themselves are not paragraphs."""
    heading, out = "", []
    for block in re.split(r"\n\s*\n", corpus):
        block = block.strip()
        if not block:
            continue
        if block.startswith("#"):
            lines = block.split("\n")
            heading = lines[0].lstrip("#").strip()
            block = "\n".join(lines[1:]).strip()
            if not block:
                continue
        out.append((heading, block))
    return out


def is_prose(paragraph: str) -> bool:
    letters = sum(c.isalpha() or c.isspace() for c in paragraph)
    return letters / max(1, len(paragraph)) > 0.9 and paragraph.rstrip().endswith((".", "!", "?"))


def sentences(paragraph: str) -> list[str]:
    """A paragraph's sentences: split after ".", "!" or "?" before a space (not inside "3.14" or "e.g.x")."""
    return [s for s in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())) if s]


def qa_pairs(paras: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Questions from the prose: 'What is a tokenizer?' for a sentence that starts 'A tokenizer ...', 'Tell me about
    weather.' for a section's first paragraph; the answer is the sentence and the one after it."""
    pairs = []
    seen_heading = set()
    for heading, paragraph in paras:
        if not is_prose(paragraph):
            continue
        ss = sentences(paragraph)
        if heading and heading not in seen_heading:
            seen_heading.add(heading)
            answer = " ".join(ss[:2])
            pairs.append((f"Tell me about {heading.lower()}.", answer))
            pairs.append((f"What do you know about {heading.lower()}?", answer))
        for i, s in enumerate(ss):
            m = SUBJECT.match(s)
            answer = " ".join(ss[i:i + 2])
            if m:
                article = "an" if m.group(2)[0] in "aeiou" else "a"
                pairs.append((f"What is {article} {m.group(2)}?", answer))
                pairs.append((f"Tell me about the {m.group(2)}.", answer))
            else:
                words = [w.strip(",;:") for w in s.split()[:6]]
                pairs.append((f"Explain this: {' '.join(words)}", answer))
    return pairs


def answer_ids(sp, prompt_text: str, answer: str) -> list[int]:
    """The answer's ids as they follow the prompt's when the whole turn is one text (" ASSISTANT: " + answer)."""
    prompt, full = sp.encode(prompt_text), sp.encode(prompt_text + " " + answer)
    assert full[:len(prompt)] == prompt, "the answer's tokens do not continue the prompt's"
    return full[len(prompt):]


QUESTION_STARTS = ["What is", "What are", "Why do", "Why is", "How do I", "How long does", "How can I", "Name",
                   "Describe", "Explain", "Give me", "Write", "Suggest", "Summarize", "Tell me about", "Which is",
                   "What does", "Is it better to", "List", "When does"]


def synthetic_questions(sp, corpus: str, count: int, rng: random.Random) -> list[str]:
    """Questions the corpus does not answer (a question start and one to four words, some of them corpus words,
    some made of random tokenizer pieces, as a name the tokenizer never saw): any prompt gets corpus sentences."""
    words = sorted(set(re.findall(r"[A-Za-z]+", corpus)))
    pieces = [p for p in range(3, sp.get_piece_size()) if sp.id_to_piece(p).strip("▁").isalpha()]
    out = []
    for _ in range(count):
        body = []
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.7:
                body.append(rng.choice(words).lower())
            else:
                body.append(sp.decode([rng.choice(pieces) for _ in range(rng.randint(1, 3))]).strip())
        out.append(f"{rng.choice(QUESTION_STARTS)} {' '.join(body)}{rng.choice(['?', '?', '.', ''])}")
    return out


JSON_KEYS = ["custom_id", "prompt", "max_tokens", "model", "temperature", "name", "age", "kind", "x", "ok", "n", "city",
             "text", "id", "count", "steps", "day", "time", "price", "tokens"]
JSON_ASKS = ["Answer in JSON, request {n}:", "Reading {w} as JSON", "Write a JSON object with a {w} and a {v}.",
             "Give me the {w} as JSON.", "Return a JSON object for {w} {v}.", "Describe {w} in JSON."]


def json_pairs(corpus: str, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """Questions that ask for JSON, answered by a short JSON object (keys and words from the corpus, numbers, true,
    false, null, now and then a list): with response_format the grammar forces JSON, and the model should know how
    to close a string and an object."""
    words = sorted({w.lower() for w in re.findall(r"[A-Za-z]+", corpus) if len(w) > 2})
    out = []
    for _ in range(count):
        fields = []
        for key in rng.sample(JSON_KEYS, rng.randint(1, 4)):
            r = rng.random()
            if r < 0.35:
                value = json.dumps(" ".join(rng.choice(words) for _ in range(rng.randint(1, 3))))
            elif r < 0.65:
                value = str(rng.randint(0, 2000))
            elif r < 0.8:
                value = rng.choice(["true", "false"])
            elif r < 0.9:
                value = "null"
            else:
                value = json.dumps([rng.choice(words) for _ in range(rng.randint(1, 3))])
            fields.append(f"{json.dumps(key)}: {value}")
        ask = rng.choice(JSON_ASKS).format(n=rng.randint(0, 99), w=rng.choice(words), v=rng.choice(words))
        out.append((ask, "{" + ", ".join(fields) + "}"))
    return out


def build_dataset(sp, corpus: str, seed: int) -> dict:
    """Every training sequence's parts as token ids, exactly as the engine tokenizes its prompts: completion texts
    (BOS + text + EOS); question/answer turns from the corpus's prose (each question as the template's prompt text
    for a first turn with either system prompt, for a later turn, and bare as a completion prompt; the answer's ids,
    long and short); questions the corpus does not answer, in the same three forms, to pair with any answer; and
    questions asking for JSON with a JSON object as the answer."""
    paras = paragraphs(corpus)
    completions = []
    for _, p in paras:
        starts = [" ".join(sentences(p)[i:]) for i in range(len(sentences(p)))] if is_prose(p) else [p]
        completions.extend([sp.bos_id()] + sp.encode(s) + [sp.eos_id()] for s in starts)

    def forms(question: str) -> dict:
        return {"first": sp.encode(SYSTEM + " USER: " + question + " ASSISTANT:"),
                "first_short": sp.encode(SHORT_SYSTEM + " USER: " + question + " ASSISTANT:"),
                "later": sp.encode("USER: " + question + " ASSISTANT:"), "bare": sp.encode(question)}

    turns = []
    for question, answer in qa_pairs(paras):
        ids = answer_ids(sp, SYSTEM + " USER: " + question + " ASSISTANT:", answer)
        for context in ("USER: " + question + " ASSISTANT:", question):
            assert ids == answer_ids(sp, context, answer), "an answer tokenizes differently after another prompt"
        short = sentences(answer)[0]
        turns.append(forms(question) | {"answer": ids, "answer_short": answer_ids(sp, question, short)})
    others = [forms(q) for q in synthetic_questions(sp, corpus, len(turns), random.Random(seed))]
    json_turns = []
    for question, answer in json_pairs(corpus, len(turns) // 2, random.Random(seed + 1)):
        ids = answer_ids(sp, SYSTEM + " USER: " + question + " ASSISTANT:", answer)
        assert ids == answer_ids(sp, question, answer), "a JSON answer tokenizes differently after another prompt"
        json_turns.append(forms(question) | {"answer": ids, "answer_short": ids})
    return {"bos": sp.bos_id(), "eos": sp.eos_id(), "vocab": sp.get_piece_size(), "completions": completions,
            "turns": turns, "questions": others, "json": json_turns}


class Sequences:
    """Draws training sequences (ids, loss mask) from a dataset of token ids (build_dataset): a third continue the
    corpus, a third are chats (one in ten with an earlier turn, one in ten under a short system prompt), a third are
    bare questions followed by an answer; of the questions, json_share (15 %) ask for JSON and get a JSON object, the
    rest are half the answer's own question, half a question the corpus does not answer. The loss counts what the model is to write: the answer and its EOS, or a completion after its BOS."""

    def __init__(self, dataset: dict, length: int, rng: random.Random, json_share: float = 0.15):
        self.d, self.length, self.rng, self.json_share = dataset, length, rng, json_share

    def _question(self) -> tuple[dict, dict]:
        if self.json_share and self.rng.random() < self.json_share:  # 0: no draw, the sequence of the data without JSON
            turn = self.rng.choice(self.d["json"])
            return turn, turn
        turn = self.rng.choice(self.d["turns"])
        asked = turn if self.rng.random() < 0.5 else self.rng.choice(self.d["questions"])
        return asked, turn

    def _chat(self) -> tuple[list[int], list[int]]:
        short = self.rng.random() < 0.1
        turns = [self._question()]
        if self.rng.random() < 0.1:
            turns.insert(0, self._question())
        ids, mask = [self.d["bos"]], [0]
        for k, (asked, turn) in enumerate(turns):
            prompt = asked["later"] if k > 0 else asked["first_short"] if short else asked["first"]
            answer = turn["answer_short"] if short else turn["answer"]
            ids += prompt + answer + [self.d["eos"]]  # the EOS is the template's "</s>" after an assistant turn
            mask += [0] * len(prompt) + [1] * (len(answer) + 1)
        return ids, mask

    def _bare(self) -> tuple[list[int], list[int]]:
        asked, turn = self._question()
        prompt, answer = [self.d["bos"]] + asked["bare"], turn["answer"]
        return prompt + answer + [self.d["eos"]], [0] * len(prompt) + [1] * (len(answer) + 1)

    def _completion(self) -> tuple[list[int], list[int]]:
        ids = self.rng.choice(self.d["completions"])
        return ids, [0] + [1] * (len(ids) - 1)

    def batch(self, size: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.zeros(size, self.length, dtype=torch.long)
        y = torch.zeros(size, self.length, dtype=torch.long)
        m = torch.zeros(size, self.length)
        for b in range(size):
            ids, mask = self.rng.choice((self._completion, self._chat, self._bare))()
            ids, mask = ids[:self.length + 1], mask[:self.length + 1]
            n = len(ids) - 1
            x[b, :n] = torch.tensor(ids[:-1])
            y[b, :n] = torch.tensor(ids[1:])
            m[b, :n] = torch.tensor(mask[1:], dtype=torch.float32)
        return x.to(device), y.to(device), m.to(device)


# ---------------------------------------------------------------------------------------------------------------
# model: LlamaForCausalLM's layout and arithmetic (rotate-half rotary, RMSNorm, SwiGLU, grouped KV heads)

class Llama(torch.nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, eps: float, theta: float):
        super().__init__()
        self.heads, self.kv_heads, self.head = heads, kv_heads, hidden // heads
        self.eps = eps
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)  # noqa: E731
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.layers = torch.nn.ModuleList()
        for _ in range(layers):
            layer = torch.nn.Module()
            layer.ln1 = torch.nn.Parameter(torch.ones(hidden))
            layer.q, layer.k, layer.v = lin(hidden, hidden), lin(hidden, kv_heads * self.head), lin(hidden, kv_heads * self.head)
            layer.o = lin(hidden, hidden)
            layer.ln2 = torch.nn.Parameter(torch.ones(hidden))
            layer.gate, layer.up, layer.down = lin(hidden, ffn), lin(hidden, ffn), lin(ffn, hidden)
            self.layers.append(layer)
        self.norm = torch.nn.Parameter(torch.ones(hidden))
        self.lm_head = lin(hidden, vocab)
        inv = 1.0 / (theta ** (torch.arange(0, self.head, 2, dtype=torch.float64) / self.head))
        self.register_buffer("inv_freq", inv.float(), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, 0.0, 0.02)

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    @staticmethod
    def rotate_half(x):
        a, b = x.chunk(2, dim=-1)
        return torch.cat((-b, a), dim=-1)

    def forward(self, ids):
        bsz, t = ids.shape
        pos = torch.arange(t, dtype=torch.float32, device=ids.device)
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        h = self.embed(ids)
        for L in self.layers:
            x = self.rms(h, L.ln1)
            q = L.q(x).view(bsz, t, self.heads, self.head).transpose(1, 2)
            k = L.k(x).view(bsz, t, self.kv_heads, self.head).transpose(1, 2)
            v = L.v(x).view(bsz, t, self.kv_heads, self.head).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            rep = self.heads // self.kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.head)
            att = att.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool, device=ids.device), 1), float("-inf"))
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(bsz, t, -1)
            h = h + L.o(y)
            x = self.rms(h, L.ln2)
            h = h + L.down(F.silu(L.gate(x)) * L.up(x))
        return self.lm_head(self.rms(h, self.norm))

    def hf_parameters(self) -> dict[str, torch.Tensor]:
        """The parameters by their Hugging Face names."""
        t = {"model.embed_tokens.weight": self.embed.weight, "model.norm.weight": self.norm, "lm_head.weight": self.lm_head.weight}
        for i, L in enumerate(self.layers):
            p = f"model.layers.{i}."
            t.update({p + "input_layernorm.weight": L.ln1, p + "post_attention_layernorm.weight": L.ln2,
                      p + "self_attn.q_proj.weight": L.q.weight, p + "self_attn.k_proj.weight": L.k.weight,
                      p + "self_attn.v_proj.weight": L.v.weight, p + "self_attn.o_proj.weight": L.o.weight,
                      p + "mlp.gate_proj.weight": L.gate.weight, p + "mlp.up_proj.weight": L.up.weight,
                      p + "mlp.down_proj.weight": L.down.weight})
        return t

    def hf_tensors(self) -> dict[str, np.ndarray]:
        return {k: v.detach().float().numpy().copy() for k, v in self.hf_parameters().items()}

    def load_hf(self, path: str) -> None:
        """Sets every parameter from a model.safetensors of the same shape."""
        from safetensors_file import SafetensorsFile
        stored = SafetensorsFile(path)
        with torch.no_grad():
            for name, p in self.hf_parameters().items():
                p.copy_(torch.from_numpy(np.array(stored.tensor(name))))


# ---------------------------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="model-export/tiny-corpus.txt")
    ap.add_argument("--tokenizer", help="tokenizer.model: build the dataset from --corpus (needs sentencepiece)")
    ap.add_argument("--dataset", help="a dataset written by --write-dataset (torch and numpy only: e.g. a GPU host)")
    ap.add_argument("--write-dataset", help="only write the dataset of token ids to this file")
    ap.add_argument("--out", help="folder for config.json, model.safetensors and loss.tsv")
    ap.add_argument("--init", help="start from this folder's model.safetensors (one train_tiny.py wrote) instead of random weights")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=384)
    ap.add_argument("--context-length", type=int, default=2048, help="the package's context (training uses --seq)")
    ap.add_argument("--seq", type=int, default=192, help="training sequence length, tokens")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--json-share", type=float, default=0.15, help="share of the questions that ask for JSON")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads")
    args = ap.parse_args()

    if args.dataset:
        with open(args.dataset, encoding="utf-8") as f:
            dataset = json.load(f)
    else:
        if not args.tokenizer:
            ap.error("give --tokenizer (to build the dataset from --corpus) or --dataset")
        import sentencepiece as spm
        with open(args.corpus, encoding="utf-8") as f:
            dataset = build_dataset(spm.SentencePieceProcessor(model_file=args.tokenizer), f.read(), args.seed)
    if args.write_dataset:
        with open(args.write_dataset, "w", encoding="utf-8") as f:
            json.dump(dataset, f)
        print(f"{len(dataset['completions'])} completion texts, {len(dataset['turns'])} question/answer turns, "
              f"{len(dataset['questions'])} other questions -> {args.write_dataset}", file=sys.stderr)
        return
    if not args.out:
        ap.error("--out is required to train")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    data = Sequences(dataset, args.seq, random.Random(args.seed), args.json_share)
    vocab = dataset["vocab"]
    eps, theta = 1e-6, 10000.0
    model = Llama(vocab, args.hidden, args.layers, args.heads, args.kv_heads, args.ffn, eps, theta)
    if args.init:
        model.load_hf(os.path.join(args.init, "model.safetensors"))
    model = model.to(args.device)
    decay = [p for p in model.parameters() if p.dim() == 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warmup = max(1, args.steps // 20)
    os.makedirs(args.out, exist_ok=True)
    curve = open(os.path.join(args.out, "loss.tsv"), "w", encoding="utf-8")
    curve.write("step\tloss\tseconds\n")
    print(f"{len(dataset['completions'])} completion texts, {len(dataset['turns'])} question/answer turns, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters, {args.device}", file=sys.stderr)
    start, window = time.time(), []
    for step in range(1, args.steps + 1):
        lr = args.lr * min(step / warmup, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y, m = data.batch(args.batch, args.device)
        logits = model(x)
        loss = (F.cross_entropy(logits.view(-1, vocab), y.view(-1), reduction="none") * m.view(-1)).sum() / m.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        window.append(loss.item())
        if step % 100 == 0 or step == args.steps:
            mean = sum(window) / len(window)
            window = []
            elapsed = time.time() - start
            curve.write(f"{step}\t{mean:.4f}\t{elapsed:.1f}\n")
            curve.flush()
            print(f"step {step}/{args.steps}  loss {mean:.3f}  {elapsed:.0f} s", file=sys.stderr)
    curve.close()

    write_safetensors(os.path.join(args.out, "model.safetensors"), model.cpu().hf_tensors())
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float32",
        "vocab_size": vocab, "hidden_size": args.hidden, "intermediate_size": args.ffn,
        "num_hidden_layers": args.layers, "num_attention_heads": args.heads, "num_key_value_heads": args.kv_heads,
        "max_position_embeddings": args.context_length, "rms_norm_eps": eps, "rope_theta": theta,
        "tie_word_embeddings": False, "bos_token_id": dataset["bos"], "eos_token_id": dataset["eos"], "hidden_act": "silu",
    }
    with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    print(f"trained in {time.time() - start:.0f} s -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
