"""`vllm serve` with no model serves the embedded SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

import openai
import pytest
from server_utils import RemoteServer


@pytest.mark.slow
def test_default_model_knows_paris(smollm2_gguf: str) -> None:
    srv = RemoteServer(["--max-model-len", "512", "--num-kv-blocks-override", "128"])
    try:
        client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="x", max_retries=0)
        model = client.models.list().data[0].id
        assert "SmolLM2" in model
        out = client.chat.completions.create(
            model=model, temperature=0, max_tokens=24,
            messages=[{"role": "user", "content": "What is the capital of France?"}])
        assert "Paris" in out.choices[0].message.content
        assert srv.terminate() == 0
    finally:
        srv.stop()
