"""Infrastructure without HTTP or domain knowledge: the database handle and its reads, the status
cache, token encryption, the clock, timestamps, metrics, local secrets, race-safe inserts."""
