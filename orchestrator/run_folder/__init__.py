"""The run folder and where it lives: its files and columns (layout), its tables (``results.csv``,
``curves.csv``), each trial's folder, setting it up, locking it, a run folder at a storage URI
(remote), a shared folder every node reaches, a full disk, and the environment a run records.
It imports only :mod:`orchestrator.study_file` (for ``StudyError``) below it, never ``running``,
``report`` or the commands.
"""
