"""A competition folder: ``kit prepare`` builds it, :func:`kit.competition.folder.load_competition` reads it."""
