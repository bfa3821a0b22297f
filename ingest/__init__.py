"""The write side: corpus markdown -> chunks -> embeddings -> Chroma (see `ingest.pipeline`)."""
