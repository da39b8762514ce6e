"""What every method shares, and nothing method-specific.

- :mod:`~stepwise.core.levels`: level names, the defaults, their resolution against one probing pass
  (:class:`~stepwise.core.levels.LevelInfo`);
- :mod:`~stepwise.core.dataflow`: which activations depend on which, and residual blocks, read from the autograd
  graph of the probing pass;
- :mod:`~stepwise.core.hooks`: hooks removed in ``finally``, :func:`~stepwise.core.hooks.analysis_mode`, forward
  passes that end early, finiteness checks;
- :mod:`~stepwise.core.capture`: the activations of levels in one pass without gradients;
- :mod:`~stepwise.core.validation`: one error template for arguments and the one neuron check (no torch);
- :mod:`~stepwise.core.inputs`: inputs stacked into a batch, one input as a batch of one, generators from seeds;
- :mod:`~stepwise.core.selection`: which inputs explain a class (:func:`~stepwise.core.selection.select_inputs`);
- :mod:`~stepwise.core.executors`: per-class and per-input jobs in this process, a process pool or on Dask;
- :mod:`~stepwise.core.io`: atomic writes of files and figures;
- :mod:`~stepwise.core.typing`: the aliases of the public signatures.

Import the modules themselves: this package imports nothing, so ``stepwise.core.io`` stays free of torch.
"""
