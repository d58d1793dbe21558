"""Offline training of the nlp service's sentiment model (torch; not needed at run time).

``setup_env.sh`` builds the training environment, ``train.py`` writes ``services/nlp/model/``.
Only ``sources``, ``data`` and ``metrics`` import without torch (the benchmark uses them).
"""
