"""The toy tokenizer and generator are deterministic and honour max_tokens, stop and EOS."""

from __future__ import annotations

import math

from vec_inf_flows.sim import tokens


def test_same_seed_and_prompt_give_the_same_text() -> None:
    a = tokens.generate(0, "prompt", 50)
    assert a == tokens.generate(0, "prompt", 50)
    assert a != tokens.generate(1, "prompt", 50)


def test_ignore_eos_runs_to_max_tokens() -> None:
    gen = tokens.generate(0, "p", 500, ignore_eos=True)
    assert (len(gen.tokens), gen.finish_reason) == (500, "length")


def test_natural_end_is_a_stop_with_a_hidden_eos_token() -> None:
    gen = tokens.generate(0, "p", 1000)
    assert gen.finish_reason == "stop" and gen.stop_reason is None
    assert gen.tokens[-1] == "" and len(gen.tokens) < 1000


def test_stop_string_cuts_text_and_is_reported() -> None:
    full = tokens.generate(0, "p", 40, ignore_eos=True).text
    word = full.split()[5]
    gen = tokens.generate(0, "p", 40, ignore_eos=True, stop=(word,))
    assert (gen.finish_reason, gen.stop_reason) == ("stop", word)
    assert gen.text == full[: full.index(word)]


def test_chat_template_tokens_count_once() -> None:
    text = tokens.render_chat([{"role": "user", "content": "Hi"}])
    assert tokens.pieces(text)[:3] == ["<|im_start|>", "user", "\n"]
    assert tokens.count_tokens("Hello world") == 2


def test_embeddings_are_unit_vectors_of_the_asked_size() -> None:
    vector = tokens.embed(0, "a cat", 64)
    assert len(vector) == 64
    assert math.isclose(sum(v * v for v in vector), 1.0)
