"""Declared: the merged values a stack is deployed with (chart defaults, then files in order)."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.declared import Declared, merge
from harness.paths import values_file

pytestmark = pytest.mark.unit


def test_local_values_declare_the_simulator_model_embeddings_and_key_pools() -> None:
    declared = Declared.from_files([values_file("local")])
    assert declared.served_models == ["simulated-model"]
    assert declared.embedding_model == "intfloat/multilingual-e5-small"
    assert declared.embedding_dimension == 384
    assert declared.vector_store_provider == "pgvector"
    assert declared.key_counts()["premium"] >= 2


def test_later_files_win_and_disabled_sections_declare_nothing(tmp_path: Path) -> None:
    overlay = tmp_path / "o.yaml"
    overlay.write_text("vllm-gpu: {simulator: {model: other}}\nllama-stack: {embeddings: {enabled: false}}\n")
    declared = Declared.from_files([values_file("local"), overlay])
    assert declared.served_models == ["other"]
    assert declared.embedding_model == ""
    overlay.write_text("vllm-gpu: {enabled: false}\n")
    assert Declared.from_files([values_file("local"), overlay]).served_models == []


def test_merge_replaces_lists_and_merges_maps() -> None:
    assert merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}
