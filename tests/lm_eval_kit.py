"""Shared by the lm-eval and simulator tests: a small real tokenizer, answer files, scores."""

from __future__ import annotations

import json
from pathlib import Path

from vec_inf_flows.evals.task_files import bundled_source

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def bundled_docs(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (bundled_source() / name).read_text().splitlines()]


def build_tokenizer(folder: Path) -> Path:
    """A byte-level BPE trained on the bundled questions, saved the way Hugging Face models ship
    it (tokenizer.json + tokenizer_config.json), so lm-eval loads it like a weights dir."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = [json.dumps(d) for name in ("qa_gen.jsonl", "qa_mc.jsonl") for d in bundled_docs(name)]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": "<|endoftext|>",
        "unk_token": "<unk>",
        "model_max_length": 2048,
        "chat_template": CHATML,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


def write_answers(path: Path, wrong_gen: set[int], wrong_mc: set[int]) -> tuple[float, float]:
    """An answer file for the bundled tasks, right except the given doc indexes; returns the
    exact scores lm-eval must report (generation exact_match, multiple-choice acc)."""
    gen, mc = bundled_docs("qa_gen.jsonl"), bundled_docs("qa_mc.jsonl")
    lines = []
    for i, doc in enumerate(gen):
        lines.append(
            {"prompt": doc["question"], "answer": "Wrong" if i in wrong_gen else doc["answer"]}
        )
    for i, doc in enumerate(mc):
        choices, label = doc["choices"], doc["label"]
        assert isinstance(choices, list) and isinstance(label, int)
        pick = (label + 1) % len(choices) if i in wrong_mc else label
        lines.append({"prompt": doc["question"], "answer": choices[pick]})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return (len(gen) - len(wrong_gen)) / len(gen), (len(mc) - len(wrong_mc)) / len(mc)


def missing_data_task(name: str, data_file: str) -> str:
    """A generation task YAML whose data file does not exist: lm-eval fails it when it loads."""
    return (
        f"task: {name}\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data_file}\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        "doc_to_text: '{{question}}'\n"
        "doc_to_target: '{{answer}}'\n"
        "metric_list:\n  - metric: exact_match\n"
    )
