"""The model's sampling defaults (generation_config.json, or the embedded model's recommended
settings) apply to the fields a request leaves unset; what the request sets wins."""

from __future__ import annotations

from types import SimpleNamespace

from vllm.engine.processing import sampling_defaults
from vllm.entrypoints.openai.protocol import ChatCompletionRequest, CompletionRequest


def test_sampling_defaults_from_generation_config() -> None:
    gen = {"temperature": 0.6, "top_p": 0.9, "top_k": 20, "do_sample": True, "eos_token_id": 2,
           "repetition_penalty": True}  # a bool is not a value
    assert sampling_defaults(SimpleNamespace(generation_config=gen)) == {
        "temperature": 0.6, "top_p": 0.9, "top_k": 20}
    assert sampling_defaults(SimpleNamespace(generation_config={})) == {}
    assert sampling_defaults(None) == {}


def test_request_fields_win_over_defaults() -> None:
    defaults = {"temperature": 0.2, "top_p": 0.9}
    chat = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    p = chat.sampling_params(8, None, 20, defaults=defaults)
    assert (p.temperature, p.top_p) == (0.2, 0.9)
    chat = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}],
                                 temperature=1.0)
    p = chat.sampling_params(8, None, 20, defaults=defaults)
    assert (p.temperature, p.top_p) == (1.0, 0.9)
    p = CompletionRequest(model="m", prompt="hi", top_p=0.5).sampling_params(
        8, None, 20, defaults=defaults)
    assert (p.temperature, p.top_p) == (0.2, 0.5)
    assert CompletionRequest(model="m", prompt="hi").sampling_params(8, None, 20).temperature == 1.0


def test_embedded_model_has_sampling_defaults(smollm2_gguf: str) -> None:
    from vllm.config import ModelConfig
    from vllm.model_executor.model_loader import resolve_model
    from vllm.model_executor.model_loader.resolve import DEFAULT_MODEL_SAMPLING

    resolved = resolve_model(ModelConfig(model=""))
    assert sampling_defaults(resolved) == DEFAULT_MODEL_SAMPLING
    # the same file passed by path is an ordinary GGUF: no invented defaults
    assert sampling_defaults(resolve_model(ModelConfig(model=smollm2_gguf))) == {}
