"""What every method shares, and nothing method-specific.

- :mod:`~stepwise.core.levels`: level names, the defaults, their resolution against one probing pass
  (:class:`~stepwise.core.levels.LevelInfo`);
- :mod:`~stepwise.core.hooks`: hooks removed in ``finally``, :func:`~stepwise.core.hooks.analysis_mode`, forward
  passes that end early, finiteness checks;
- :mod:`~stepwise.core.capture`: the activations of levels in one pass without gradients;
- :mod:`~stepwise.core.validation`: one error template for arguments, the one neuron check, seeds, single inputs;
- :mod:`~stepwise.core.selection`: which inputs explain a class (:func:`~stepwise.core.selection.select_inputs`);
- :mod:`~stepwise.core.io`: atomic writes of files and figures;
- :mod:`~stepwise.core.typing`: the aliases of the public signatures.

Import the modules themselves: this package imports nothing, so ``stepwise.core.io`` stays free of torch.
"""
