"""Running a study on Ray Tune and Optuna: the local Ray session, the tuning loop, the trainable each
trial runs, the Optuna searcher, the recorder that writes each result into the run folder, the live
progress block, and the Optuna internals relied on. It imports :mod:`orchestrator.study_file` and
:mod:`orchestrator.run_folder`; never ``report`` or the commands. Ray is imported by its modules, not here.
"""
