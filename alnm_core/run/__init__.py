"""The run layer: the run folder (paths, record, ownership), the study's steps, the executors
of the training grid and the pipeline that runs the steps and renders the report.

Layering (``docs/architecture.md``): ``paths`` and ``record`` know the folder; ``steps`` call the
domain modules (``cohort``, ``roi``, ``training``, ``ensemble``, ``evaluation``...) and never the
reverse; ``executor`` runs ``steps.train_unit`` (in process, or as Ray tasks); ``pipeline``
calls the steps and papermill.
"""
