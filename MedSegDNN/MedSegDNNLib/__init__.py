"""Panel and self-test of the MedSegDNN module (kept apart to keep each file small)."""
