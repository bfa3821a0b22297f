"""Evaluation of the tutor: retrieval quality, generation quality and grader agreement.

Uses only public APIs of `tutor` and `ingest`; nothing imports `eval`. Entry point: `python -m eval`
(or `tutor eval`); see eval/README.md.
"""
