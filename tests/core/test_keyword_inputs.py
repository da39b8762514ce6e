"""Keyword inputs (stepwise.core.inputs.KeywordInputs): slicing, moving, the token mask and its means."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stepwise.core.hooks import run_model
from stepwise.core.inputs import KeywordInputs, input_signature, stack_inputs, token_mean


def encoded(n: int = 4, width: int = 5) -> dict[str, torch.Tensor]:
    lengths = torch.arange(n) % width + 1
    mask = (torch.arange(width) < lengths[:, None]).to(torch.int64)
    return {"input_ids": (torch.arange(n * width).view(n, width) + 1) * mask, "attention_mask": mask}


class Summing(nn.Module):
    """Token ids (N, T) -> (N, T, 3) embeddings -> the sum of each input's real-token embeddings (N, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(40, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (self.embed(input_ids) * attention_mask[..., None]).sum(dim=1)


def test_slices_and_index_tensors_select_every_tensor_and_the_mask() -> None:
    batch = KeywordInputs(encoded())
    part = batch[torch.tensor([3, 1])]
    assert len(part) == 2 and part.shape == (2, 5)
    assert torch.equal(part.tensors["input_ids"], encoded()["input_ids"][[3, 1]])
    assert torch.equal(part.mask, encoded()["attention_mask"][[3, 1]])
    assert torch.equal(batch[1:3].mask, batch.mask[1:3]) and len(batch[2]) == 1


def test_the_token_mean_ignores_padding() -> None:
    batch = KeywordInputs(encoded())
    activation = torch.randn(4, 5, 3, dtype=torch.float64)
    means = token_mean(activation, 2, batch.mask)
    for i, length in enumerate(batch.mask.sum(dim=1).tolist()):
        assert torch.allclose(means[i], activation[i, :length].mean(dim=0), rtol=1e-12, atol=0)
    assert torch.allclose(token_mean(activation, 2, None), activation.mean(dim=1), rtol=1e-12, atol=0)


def test_run_model_passes_keywords_and_replaces_a_module_output() -> None:
    model = Summing()
    batch = KeywordInputs(encoded())
    assert torch.equal(run_model(model, batch), model(**encoded()))
    one = batch[3:4].without_padding()
    assert one.shape == (1, 4) and int(one.mask.sum()) == 4
    replacement = torch.ones(6, 4, 3)
    out = run_model(model, one.replacing(model.embed, replacement))
    assert out.shape == (6, 3) and torch.equal(out, torch.full((6, 3), 4.0))
    assert not model.embed._forward_hooks


def test_a_mask_of_its_own_and_the_signature() -> None:
    own = torch.ones(4, 5, dtype=torch.int64)
    batch = KeywordInputs(encoded(), token_mask=own)
    assert torch.equal(batch.mask, own) and set(batch.tensors) == {"input_ids", "attention_mask"}
    assert input_signature(batch) == input_signature(KeywordInputs(encoded(2, 9)))
    assert input_signature(batch) != input_signature(KeywordInputs({"input_ids": encoded()["input_ids"]}))
    assert KeywordInputs({"input_ids": encoded()["input_ids"]}).mask is None


def test_stack_inputs_joins_dicts_and_refuses_mixtures() -> None:
    joined = stack_inputs([encoded(2), encoded(3)])
    assert isinstance(joined, KeywordInputs) and len(joined) == 5
    with pytest.raises(ValueError, match="both dicts and tensors"):
        stack_inputs([encoded(2), torch.zeros(2, 5)])
    with pytest.raises(ValueError, match="different keys"):
        stack_inputs([encoded(2), {"input_ids": encoded(2)["input_ids"]}])
    with pytest.raises(ValueError, match="pad every batch of token ids to one length"):
        stack_inputs([encoded(2, 5), encoded(2, 6)])
