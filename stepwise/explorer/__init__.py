"""The explorer: one self-contained HTML page over any of the results, which opens from disk, offline.

:func:`report` writes the page of results held as Python objects; ``stepwise report FOLDER`` writes the page of a
folder of results (:func:`folder_views`). One tab per kind of result (``[data-tab]``): dependency graphs,
perturbation rankings, decision paths, inference graphs, the activation sorter. Every neuron, word or cluster drawn
or listed carries ``data-key="level:index"``; clicking it shows its details in the ``#details`` panel. All data sit
in ``<script type="application/json" id="stepwise-data">``; plotly's JavaScript is inlined once.
"""

from stepwise.explorer.folder import folder_views
from stepwise.explorer.page import View, write_page
from stepwise.explorer.report import report

__all__ = ["View", "folder_views", "report", "write_page"]
