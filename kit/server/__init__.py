"""The classroom server behind ``kit serve`` (DESIGN.md section 8).

:mod:`kit.server.db` is the SQLite system of record, :mod:`kit.server.app` the FastAPI
app, :mod:`kit.server.standings` the ranking and its exports.
"""
