"""The classroom server behind ``kit serve``: a FastAPI app over one competition's store of record (:mod:`kit.board.store`)."""
