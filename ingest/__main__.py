"""`python -m ingest [--check]`: validate the corpus, or (re)build the vector index."""

import sys

from ingest.cli import main

if __name__ == "__main__":
    sys.exit(main())
