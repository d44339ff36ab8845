"""The run folder: its layout, its checkpoint file format, creating and claiming it.

The one place that knows what a run folder holds, below the training layer (which writes run folders)
and the predictors layer (which loads them):

- :mod:`~cellgi.runfolder.runs`: the file names of a run folder, a seed series' parent and a stacked
  folder; creating, claiming and releasing a run folder; ``run.json`` status; JSON and spec writing.
- :mod:`~cellgi.runfolder.checkpoint`: the checkpoint file format (weights-only, self-describing, with a
  digest): writing, safe reading, finding a run folder's checkpoint.
- :mod:`~cellgi.runfolder.layout`: what a path is (:func:`~cellgi.runfolder.layout.kind_of`).
- :mod:`~cellgi.runfolder.pretrained`: which folder a pretrained name resolves to.

Nothing is imported here (the checkpoint module imports torch and Lightning).
"""

__all__: list[str] = []
