"""The ``stepwise`` command: every method of the library on a trained classifier, as files.

Subcommands (``stepwise COMMAND --help`` explains every option):

- ``demo``: the shipped digits CNN (:mod:`stepwise.models`) end to end, offline: a dependency graph per class,
  their bag-of-nodes clustering, a perturbation ranking of one image per class, and the decision paths, inference
  graphs and activation sorter of the same inputs;
- ``analyse``: the same dependency graphs and clustering for your model and data (``--workers N`` on Dask);
- ``perturb``: perturbation neuron rankings (:mod:`perturb`) of some of your inputs;
- ``paths``: decision paths (:mod:`stepwise.paths`): clusters per level, flows, paths, Sankey diagrams;
- ``inference``: inference graphs (:mod:`stepwise.inference`): visual words per level, one graph per class;
- ``sort``: the activation sorter (:mod:`stepwise.sorter`): layer summaries, neuron kinds, neuron views;
- ``levels``: the levels of a model, those :func:`stepwise.default_levels` proposes marked;
- ``report``: one offline HTML page (:mod:`stepwise.explorer`) over a folder the other commands wrote.

Bad arguments (a missing file, a module without the factory, a level typo, data the model rejects, weights that
do not fit the architecture) stop the command before any long computation with a message and exit status 2.
Every file is written atomically (a temporary file, then a rename), so an interrupted run never leaves a
half-written file; with ``--checkpoint DIR``, ``demo`` and ``analyse`` record each finished step of each class's
traversal, and the same command run again resumes where it stopped.

The package
-----------
``main`` (:func:`main`, exit statuses, :func:`build_parser`), ``options`` (the usage error, argument types and
option groups every command shares), ``loading`` (model, weights, data, and their checks), ``selection`` (which
inputs explain each class), ``progress`` (bars, notes, warnings, stage timings), ``summary`` (``summary.md``,
``summary.json``, ``timings.json``), ``distributed`` (``--workers``, ``--scheduler``), and one module per command:
``demo``, ``analyse``, ``perturb``, ``paths``, ``inference``, ``sort``, ``levels``, ``report``.

Adding a command
----------------
Write ``stepwise/cli/NAME.py`` with a function ``register(commands)`` that adds the command's sub-parser to
``commands`` (the parser's sub-parsers action) and returns it, and a ``run(args, progress)`` that does the work::

    def register(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
        parser = commands.add_parser("NAME", formatter_class=Formatter, help="...", description="...")
        add_model_options(parser)                  # the shared groups of stepwise.cli.options
        add_common_options(parser, "results/NAME")
        parser.set_defaults(run=run, parser=parser)
        return parser

    def run(args: argparse.Namespace, progress: Progress) -> Path | None:
        ...                                        # raise UsageError for a bad argument, before the long work
        return out                                 # the folder written, or None

then add ``"NAME"`` to the list ``COMMANDS`` in ``stepwise/cli/main.py``: that one line is the whole change
outside the new module. Keep heavy imports (matplotlib, pandas, scipy, captum, the method packages) inside
``run`` and the functions it calls, so that ``stepwise --help`` stays fast; a ``UsageError`` is reported by the
command's parser with exit status 2, ``ValueError``, ``TypeError``, ``RuntimeError`` and ``OSError`` with status 1.
"""

from stepwise.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
