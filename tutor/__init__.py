"""LLM interview tutor: the read side (retrieval, chat, grading, interview, UI) over the corpus."""

__version__ = "0.1.0"
