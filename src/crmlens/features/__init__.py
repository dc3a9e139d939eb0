"""Customer features as of a date, computed as SQL in the engine."""
