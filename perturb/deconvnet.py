"""Where in the input a neuron looks: deconvnet patches (paper, section 4.3) and their figure (paper, Fig. 4).

A neuron's patch is found by deconvolution (Zeiler and Fergus) from the position of its channel's maximum on
the clean input, with captum's ``NeuronDeconvolution``: the patch is the bounding box of the input pixels whose
attribution is not zero. Deconvolution overrides the backward pass of ``nn.ReLU`` modules only; ReLUs applied
as functions inside ``forward`` are differentiated as usual.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from stepwise.core.capture import capture
from stepwise.core.hooks import analysis_mode
from stepwise.core.inputs import KeywordInputs, single_input
from stepwise.core.levels import INPUT, OUTPUT, SOFTMAX, resolve_levels
from stepwise.core.typing import Neurons
from stepwise.core.validation import check_int, check_neurons, check_option

from .ranking import METRICS, NeuronRanking

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Patch", "patches", "plot_patches", "top_patches"]


@dataclass(frozen=True, repr=False)
class Patch:
    """The input region one neuron responds to.

    Attributes
    ----------
    level : str
    neuron : int
        The channel (or unit) index within the level.
    location : tuple of int
        The position of the channel's maximum on the clean input, one index per spatial dimension of the
        level (empty for a unit); the deconvolution starts there.
    box : tuple of int (y0, x0, y1, x1), or None
        The bounding box of the non-zero attribution in input pixels: rows ``y0:y1`` and columns ``x0:x1``
        (ends exclusive, as in slicing). ``None`` when the attribution is zero everywhere.
    crop : Tensor of shape (C, y1 - y0, x1 - x0)
        ``image[:, y0:y1, x0:x1]``; shape (C, 0, 0) when ``box`` is None.
    """

    level: str
    neuron: int
    location: tuple[int, ...]
    box: tuple[int, int, int, int] | None
    crop: Tensor

    def __repr__(self) -> str:
        return f"Patch(level={self.level!r}, neuron={self.neuron}, location={self.location}, box={self.box})"


def patches(model: nn.Module, image: Tensor, level: str, neurons: Neurons) -> list[Patch]:
    """Deconvnet patches of some neurons of one level on one image.

    For each neuron (channel) the deconvolution starts at the position of the channel's maximum activation on
    ``image`` (the first one in row-major order on ties) and runs down to the input pixels; the patch is the
    bounding box of the pixels with a non-zero attribution in any input channel. All neurons share one
    batched backward pass.

    Parameters
    ----------
    model : torch.nn.Module
        Analysed in eval mode with frozen parameters; both are restored afterwards.
    image : Tensor of shape (C, H, W) or (1, C, H, W)
    level : str
        A level computed by a module (as in ``model.named_modules()``; not ``input``, ``softmax`` or
        ``output``).
    neurons : int or sequence of int
        Channels (or units) of ``level``.

    Returns
    -------
    list of Patch
        One per neuron, in the order given.

    Raises
    ------
    ValueError
        For an image that is not one (C, H, W) input, an unknown level or one not produced by a module, or a
        neuron out of range.

    Examples
    --------
    >>> import torch, perturb
    >>> conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1)).eval()
    >>> with torch.no_grad():
    ...     _ = conv[0].weight.fill_(1.0)
    >>> image = torch.zeros(1, 8, 8)
    >>> image[0, 4, 5] = 1.0
    >>> perturb.patches(conv, image, "0", 0)[0].box   # the 3x3 kernel around the maximum at (3, 4)
    (2, 3, 5, 6)
    """
    from captum.attr import NeuronDeconvolution

    owner = "perturb.patches"
    if isinstance(image, (Mapping, KeywordInputs)):
        raise TypeError(
            f"{owner} draws boxes in image pixels; a sentence (a dict of token ids) has none. Its ranking's neurons "
            "are token-averaged units: read their scores with ranking.table()."
        )
    x = single_input(image, owner, model)
    if x.dim() != 4:
        raise ValueError(
            f"{owner} draws boxes in image pixels, so 'image' must be one image shaped (C, H, W) or (1, C, H, W); "
            f"got shape {tuple(image.shape)}."
        )
    if not isinstance(level, str):
        raise TypeError(f"The 'level' parameter of {owner} must be a level name (str). Got {level!r} instead.")
    if level in (INPUT, SOFTMAX, OUTPUT):
        raise ValueError(
            f"{owner} deconvolves from a module's output, and {level!r} is not one: name a module level such as a "
            "convolution's ReLU (see stepwise.list_levels(model, example_input))."
        )
    with analysis_mode(model, owner=owner):
        info = resolve_levels(model, x, [INPUT, level])[1]
        chosen = check_neurons(neurons, info.n_neurons, level=level, owner=owner)
        activation = capture(model, x, [info])[level].movedim(info.channel_dim, 1)[0]
        maps = activation[chosen].reshape(len(chosen), -1)
        spatial = tuple(activation.shape[1:])
        flat = maps.argmax(dim=1)
        coords = torch.unravel_index(flat, spatial) if spatial else ()
        index = (torch.arange(len(chosen)), torch.tensor(chosen), *coords)

        def selector(layer_output: Tensor) -> Tensor:
            return layer_output.movedim(info.channel_dim, 1)[index]

        inputs = x.expand(len(chosen), *x.shape[1:]).clone().requires_grad_(True)
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU activations")
            attribution = NeuronDeconvolution(model, info.module).attribute(inputs, selector)
    nonzero = attribution.detach().ne(0).any(dim=1)  # (k, H, W)
    found = []
    for row, neuron in enumerate(chosen):
        location = tuple(int(c[row]) for c in coords)
        rows = torch.nonzero(nonzero[row].any(dim=1)).flatten()
        cols = torch.nonzero(nonzero[row].any(dim=0)).flatten()
        if len(rows) == 0:
            found.append(Patch(level, neuron, location, None, x[0, :, :0, :0].clone()))
            continue
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        found.append(Patch(level, neuron, location, (y0, x0, y1, x1), x[0, :, y0:y1, x0:x1].clone()))
    return found


def top_patches(
    ranking: NeuronRanking, k: int = 5, *, metric: str = "correlation", levels: Sequence[str] | None = None
) -> dict[str, list[Patch]]:
    """The deconvnet patches of each level's top ``k`` neurons on the image the ranking was computed on.

    Parameters
    ----------
    ranking : NeuronRanking
        From :func:`rank_neurons`; its model is deconvolved.
    k : int, default=5
        Neurons per level (see :meth:`NeuronRanking.top`).
    metric : str, default='correlation'
        The metric that chooses the neurons, one of :data:`perturb.METRICS`.
    levels : list of str, optional
        By default every ranked level with a two-dimensional activation map (C, H', W').

    Returns
    -------
    dict of str to list of Patch
        Per level, bottom to top, its top neurons' patches, best first.
    """
    owner = "perturb.top_patches"
    if not isinstance(ranking, NeuronRanking):
        raise TypeError(
            f"The 'ranking' parameter of {owner} must be a NeuronRanking (from perturb.rank_neurons). "
            f"Got {type(ranking).__name__} instead."
        )
    metric = check_option(metric, "metric", owner, METRICS)
    k = check_int(k, "k", owner, low=1)
    if levels is None:
        drawn = [name for name in ranking.levels if name not in (INPUT, SOFTMAX, OUTPUT)
                 and len(ranking.shapes[name]) == 3]  # fmt: skip
    else:
        if isinstance(levels, str) or not isinstance(levels, Sequence):
            raise TypeError(f"levels must be a list of level names or None; got {type(levels).__name__}.")
        drawn = list(levels)
        unknown = [name for name in drawn if name not in ranking.levels]
        if unknown:
            raise ValueError(f"levels {unknown} are not in the ranking, whose levels are {ranking.levels}.")
    if drawn and ranking.image.dim() != 4:
        raise ValueError(
            f"{owner} draws boxes in image pixels, but this ranking's input has shape {tuple(ranking.image.shape)}, "
            "not an image (1, C, H, W) (for a sentence, the output of its input_level): there are no patches."
        )
    top = ranking.top(metric, k)
    return {name: patches(ranking.model, ranking.image, name, top[name]) if top[name] else [] for name in drawn}


def plot_patches(
    image: Tensor,
    ranking: NeuronRanking,
    k: int = 5,
    *,
    metric: str = "correlation",
    levels: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Draw the patches of each level's top neurons on the image, one colour per level (paper, Fig. 4).

    Parameters
    ----------
    image : Tensor of shape (C, H, W) or (1, C, H, W)
        The image the ranking was computed on. It is shown min-max scaled to [0, 1] (grey for one channel,
        RGB for three, the channel mean otherwise).
    ranking : NeuronRanking
        From :func:`rank_neurons` on this image; its model is deconvolved.
    k : int, default=5
        Neurons per level (see :meth:`NeuronRanking.top`).
    metric : str, default='correlation'
        The metric that chooses the neurons, one of :data:`perturb.METRICS`.
    levels : list of str, optional
        Levels to draw; by default every ranked level with a two-dimensional activation map (C, H', W').
        Colours run from red (bottom) to violet (top).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    owner = "perturb.plot_patches"
    if not isinstance(ranking, NeuronRanking):
        raise TypeError(
            f"The 'ranking' parameter of {owner} must be a NeuronRanking (from perturb.rank_neurons). "
            f"Got {type(ranking).__name__} instead."
        )
    x = single_input(image, owner, ranking.model)
    if x.shape != ranking.image.shape or not torch.equal(x, ranking.image.to(x.device)):
        raise ValueError(
            f"{owner} draws a ranking on the image it was computed on, but 'image' (shape {tuple(image.shape)}) "
            f"differs from the ranking's (shape {tuple(ranking.image.shape[1:])}): pass that image."
        )
    metric = check_option(metric, "metric", owner, METRICS)
    k = check_int(k, "k", owner, low=1)
    found = top_patches(ranking, k, metric=metric, levels=levels)
    drawn = list(found)

    fig, ax = plt.subplots(figsize=(8, 6), layout="constrained") if ax is None else (ax.figure, ax)
    shown = x[0].detach().cpu().to(torch.float64)
    shown = (shown - shown.min()) / (shown.max() - shown.min()).clamp(min=1e-12)
    if shown.shape[0] == 3:
        ax.imshow(shown.permute(1, 2, 0).numpy())
    else:
        ax.imshow(shown.mean(0).numpy(), cmap="gray", vmin=0.0, vmax=1.0)
    colours = matplotlib.colormaps["rainbow_r"]
    for position, name in enumerate(drawn):
        colour = colours(position / max(len(drawn) - 1, 1))
        label: str | None = name
        for patch in found[name]:
            if patch.box is None:
                continue
            y0, x0, y1, x1 = patch.box
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=colour,
                                   linewidth=1.5, label=label))  # fmt: skip
            label = None
    if drawn:
        ax.legend(title="level", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    ax.set_title(f"top {k} neurons per level by {metric} (target {ranking.target})")
    ax.set_axis_off()
    return fig
