"""iter_weights over safetensors (single, sharded), pickle policy, corrupt files, check_and_copy."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file

from vllm.config import ModelConfig
from vllm.model_executor.model_loader import check_and_copy, iter_weights, resolve_model


def _state(folder: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".safetensors"):
            out.update(load_file(os.path.join(folder, name)))
    return out


@pytest.mark.parametrize("fixture", ["tiny_llama_dir", "tiny_llama_sharded_dir",
                                     "tiny_llama_untied_dir", "tiny_qwen3_moe_dir"])
def test_iter_weights_yields_every_tensor(fixture: str, request) -> None:
    folder = request.getfixturevalue(fixture)
    expected = _state(folder)
    got = dict(iter_weights(resolve_model(ModelConfig(model=folder))))
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_sharded_reads_index(tiny_llama_sharded_dir: str) -> None:
    index = json.load(open(os.path.join(tiny_llama_sharded_dir, "model.safetensors.index.json")))
    assert len(set(index["weight_map"].values())) >= 2
    names = [n for n, _ in iter_weights(resolve_model(ModelConfig(model=tiny_llama_sharded_dir)))]
    assert sorted(names) == sorted(index["weight_map"])


def test_weights_are_lazy_and_uncast(make_tiny) -> None:
    folder = make_tiny("llama", dtype=torch.bfloat16)
    resolved = resolve_model(ModelConfig(model=folder, dtype="float32"))
    it = iter_weights(resolved)
    name, tensor = next(it)  # a generator: one tensor at a time
    assert tensor.dtype == torch.bfloat16  # cast only when copied into the parameter
    it.close()


def test_consolidated_file_ignored(tiny_llama_dir: str, tmp_path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_llama_dir, folder)
    shutil.copy(folder / "model.safetensors", folder / "consolidated.safetensors")
    names = [n for n, _ in iter_weights(resolve_model(ModelConfig(model=str(folder))))]
    assert sorted(names) == sorted(_state(tiny_llama_dir))


def test_missing_shard(tiny_llama_sharded_dir: str, tmp_path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_llama_sharded_dir, folder)
    first = sorted(p for p in os.listdir(folder) if p.endswith(".safetensors"))[0]
    os.remove(folder / first)
    with pytest.raises(ValueError, match=f"missing files: {first}"):
        list(iter_weights(resolve_model(ModelConfig(model=str(folder)))))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bad_header"])
def test_corrupt_safetensors(damage: str, tiny_llama_dir: str, tmp_path) -> None:
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_llama_dir, folder)
    path = folder / "model.safetensors"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"\x00\x01garbage" * 10)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(len(b"{nope").to_bytes(8, "little") + b"{nope" + data[100:])
    resolved = resolve_model(ModelConfig(model=str(folder)))
    with pytest.raises(ValueError, match="corrupt safetensors file .*model.safetensors"):
        list(iter_weights(resolved))


def _to_pickle(src: str, dst, name: str = "pytorch_model.bin", legacy: bool = False) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.safetensors", "*.index.json"))
    torch.save(_state(src), os.path.join(dst, name), _use_new_zipfile_serialization=not legacy)


def test_pickle_refused_by_default(tiny_llama_dir: str, tmp_path) -> None:
    _to_pickle(tiny_llama_dir, tmp_path / "pkl")
    with pytest.raises(ValueError, match="allow_pickle_weights=True"):
        resolve_model(ModelConfig(model=str(tmp_path / "pkl")))


@pytest.mark.parametrize("name,legacy", [("pytorch_model.bin", False), ("model.pt", False),
                                         ("pytorch_model.bin", True)])
def test_pickle_allowed(name: str, legacy: bool, tiny_llama_dir: str, tmp_path) -> None:
    _to_pickle(tiny_llama_dir, tmp_path / "pkl", name, legacy)
    resolved = resolve_model(ModelConfig(model=str(tmp_path / "pkl"), allow_pickle_weights=True))
    got = dict(iter_weights(resolved))
    expected = _state(tiny_llama_dir)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_pickle_with_code_is_rejected(tiny_llama_dir: str, tmp_path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    folder = tmp_path / "evil"
    shutil.copytree(tiny_llama_dir, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"x": Evil()}, f)
    resolved = resolve_model(ModelConfig(model=str(folder), allow_pickle_weights=True))
    with pytest.raises(ValueError, match="cannot load pickle checkpoint"):
        list(iter_weights(resolved))


def test_check_and_copy() -> None:
    param = torch.nn.Parameter(torch.zeros(4, 3, dtype=torch.bfloat16))
    check_and_copy("layer.weight", param, torch.arange(12, dtype=torch.float32).reshape(4, 3))
    assert param.dtype == torch.bfloat16 and param[3, 2].item() == 11
    with pytest.raises(ValueError, match=r"'layer.weight'.*\(3, 4\).*\(4, 3\)"):
        check_and_copy("layer.weight", param, torch.zeros(3, 4))
