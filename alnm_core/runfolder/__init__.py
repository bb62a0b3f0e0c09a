"""The run folder, a low-level package: where every artifact lives (``paths``), the run's record
``run.json`` and its one writer (``record``), and who owns the folder (``lock``).

It imports nothing above the configuration and storage layers, so the report, the steps, the
pipeline and the CLI may all use it (``docs/architecture.md``).
"""
