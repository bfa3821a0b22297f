"""Quality and performance measurement. Uses only public APIs of tutor/ and ingest/; nothing imports eval."""
